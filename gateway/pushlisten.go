package gateway

import (
	"net"
	"sync"
)

// pushListener is the push port's listener as the Kitex server sees it. It
// remembers the connections it accepted so that shutdown can close them:
// the callers are task instances holding pooled connections, which Kitex's
// graceful stop would otherwise wait out for its whole exit wait, and whose
// serving goroutines would linger until the idle timeout.
type pushListener struct {
	net.Listener

	mu     sync.Mutex
	conns  map[*pushConn]struct{}
	closed bool // closeConns ran; later connections are closed at once
}

func newPushListener(ln net.Listener) *pushListener {
	return &pushListener{Listener: ln, conns: make(map[*pushConn]struct{})}
}

func (l *pushListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	pc := &pushConn{Conn: c, l: l}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		_ = c.Close()
		return pc, nil // the server sees it fail on its first read
	}
	l.conns[pc] = struct{}{}
	return pc, nil
}

// closeConns closes every connection accepted so far and any accepted
// later. The listener itself is closed separately.
func (l *pushListener) closeConns() {
	l.mu.Lock()
	l.closed = true
	conns := l.conns
	l.conns = nil
	l.mu.Unlock()
	for c := range conns {
		_ = c.Conn.Close()
	}
}

func (l *pushListener) forget(c *pushConn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

// pushConn is a connection accepted on the push port.
type pushConn struct {
	net.Conn
	l *pushListener
}

func (c *pushConn) Close() error {
	c.l.forget(c)
	return c.Conn.Close()
}
