package clienttest

import (
	"net"
	"sync"
	"time"
)

// conn is one client connection of the fake. Frames go out through a
// bounded queue drained by one writer, so that pushes enqueued under the
// server lock keep their order without blocking the lock on a socket.
type conn struct {
	nc  net.Conn
	out chan []byte

	once sync.Once
	quit chan struct{}

	// userID is 0 until login; guarded by Server.mu, as the fields below.
	userID int64
	device string
	// failedLogins counts the LOGINs refused for their credentials.
	failedLogins int
	// tokenExpiry is when the access token of the login, or of the last
	// REFRESH or CHANGE_PASSWORD, expires; expiryTimer closes c then.
	tokenExpiry time.Time
	expiryTimer *time.Timer
}

func newConn(nc net.Conn) *conn {
	return &conn{nc: nc, out: make(chan []byte, outboundFrames), quit: make(chan struct{})}
}

// enqueue queues a frame; a full queue closes the connection (slow consumer).
func (c *conn) enqueue(frame []byte) {
	select {
	case c.out <- frame:
	default:
		c.close()
	}
}

// closeAfterFlush closes the socket once the frames queued so far are written.
func (c *conn) closeAfterFlush() {
	c.enqueue(nil)
}

func (c *conn) close() {
	c.once.Do(func() {
		close(c.quit)
		_ = c.nc.Close()
	})
}

func (c *conn) writeLoop() {
	for {
		select {
		case <-c.quit:
			return
		case f := <-c.out:
			if f == nil {
				c.close()
				return
			}
			if _, err := c.nc.Write(f); err != nil {
				c.close()
				return
			}
		}
	}
}
