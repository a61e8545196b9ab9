package scenario

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// loginsPerSource is how many users chat registers and logs in from one
// source address in 127.0.0.0/8: logic allows a burst of 30 registrations
// and 30 password attempts per client address, then a trickle.
const loginsPerSource = 20

// chatConn is one chat user on a raw connection. Unlike client.Client it
// pipelines sends without a goroutine each and dials from a chosen source
// address, which the login limits per address make necessary.
type chatConn struct {
	*benchConn
	index int
	name  string
	id    int64

	writeMu sync.Mutex
	wbuf    []byte

	// readDone is closed when the run's reader of c has ended.
	readDone chan struct{}
	// ending is set by endRun: the reader's error is then the run's end.
	ending atomic.Bool

	mu      sync.Mutex
	pending map[uint32]time.Duration // request id -> due time of the send
	nextID  uint32
	// closedBy is the reason of the CLOSE that ended c, "" while open.
	closedBy string
}

// errSenderClosed refuses a send from a user whose connection the server
// closed.
var errSenderClosed = errors.New("sender's connection closed by the server")

// errSendGivenUp is a send whose write failed after the CLOSE of its
// sender was read: serverClosed has already counted it as not acked.
var errSendGivenUp = errors.New("send given up at the server's close")

// sources spreads connections over source addresses 127.o.x.y, where o is
// random per sources so that runs one after the other (whose budgets have not
// refilled yet) do not share addresses.
type sources struct{ octet byte }

func newSources() sources { return sources{octet: byte(1 + rand.IntN(254))} }

// ip returns the source address of connection index.
func (s sources) ip(index int) net.IP {
	n := index / loginsPerSource
	return net.IPv4(127, s.octet, byte(n/250), byte(2+n%250))
}

// dialFrom dials addr from src.
func dialFrom(ctx context.Context, addr string, src net.IP) (*benchConn, error) {
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: src},
		Control: bindNoPort}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &benchConn{conn: conn, r: newReader(conn)}, nil
}

// registerSpread registers n users named prefix0..prefix(n-1), each from the
// source address of its index, 16 at a time.
func registerSpread(ctx context.Context, addr, prefix string, n int) ([]credential, error) {
	src := newSources()
	creds := make([]credential, n)
	err := forEach(n, 16, func(i int) error {
		name := fmt.Sprintf("%s%d", prefix, i)
		creds[i] = credential{username: name, password: password(name)}
		c, err := dialFrom(ctx, addr, src.ip(i))
		if err != nil {
			return err
		}
		defer c.conn.Close()
		var reg protocol.RegisterResp
		err = c.request(protocol.Op_REGISTER, &protocol.RegisterReq{Username: name,
			Password: creds[i].password}, &reg)
		creds[i].id = reg.UserId
		return err
	})
	return creds, err
}

// dialChatUser registers and logs in user index from its source address.
func dialChatUser(ctx context.Context, addr, prefix string, index int,
	src sources) (*chatConn, error) {
	bc, err := dialFrom(ctx, addr, src.ip(index))
	if err != nil {
		return nil, err
	}
	conn := bc.conn
	c := &chatConn{benchConn: bc, index: index, readDone: make(chan struct{}),
		name: fmt.Sprintf("%s%d", prefix, index), pending: make(map[uint32]time.Duration)}
	cred := credential{username: c.name, password: password(c.name)}
	var reg protocol.RegisterResp
	err = c.request(protocol.Op_REGISTER, &protocol.RegisterReq{Username: cred.username,
		Password: cred.password}, &reg)
	if err == nil {
		err = c.login(cred, "bench")
	}
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("user %s: %w", c.name, err)
	}
	c.id = c.userID
	return c, nil
}

// dialChatUsers opens n users, 16 at a time; on error it closes them all.
func dialChatUsers(ctx context.Context, addr, prefix string, n int) ([]*chatConn, error) {
	users := make([]*chatConn, n)
	src := newSources()
	err := forEach(n, 16, func(i int) error {
		var err error
		users[i], err = dialChatUser(ctx, addr, prefix, i, src)
		return err
	})
	if err != nil {
		closeChatUsers(users)
		return nil, err
	}
	return users, nil
}

func closeChatUsers(users []*chatConn) {
	for _, u := range users {
		if u != nil {
			_ = u.conn.Close()
		}
	}
}

// endDrain bounds how long endRun leaves the reader of a connection to
// read what the server sent before it saw the run's end.
const endDrain = 2 * time.Second

// endRun begins the end of c at the end of a run: it stops writing, so
// that the server reads the end of the stream and closes its side, and
// leaves the reader up to endDrain to read what the server sent before
// then. A CLOSE on its way is so read and named; closing the socket
// outright dropped it unread, and counted what its receiver missed as lost.
// A connection that cannot stop writing alone is closed. The caller closes
// c once its reader has ended.
func (c *chatConn) endRun() {
	c.ending.Store(true)
	// A write in progress (a heartbeat) is cut short rather than waited
	// for: a server that reads nothing would hold it forever.
	_ = c.conn.SetWriteDeadline(time.Now())
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	hc, ok := c.conn.(interface{ CloseWrite() error })
	if !ok || hc.CloseWrite() != nil {
		_ = c.conn.Close()
		return
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(endDrain))
}

// endedByRun reports whether err, which ended c's reader, is the run's own
// end (closing c, or what followed endRun) rather than a failure.
func (c *chatConn) endedByRun(err error) bool {
	return errors.Is(err, net.ErrClosed) || c.ending.Load()
}

// request sends one request and reads its reply into resp; only while
// nothing else reads c.
func (c *benchConn) request(op protocol.Op, req codec.Body, resp codec.Readable) error {
	_ = c.conn.SetDeadline(time.Now().Add(30 * time.Second))
	defer c.conn.SetDeadline(time.Time{})
	if err := c.writeFrame(op, 1, req); err != nil {
		return err
	}
	h, body, err := c.readFrame()
	// A push may come before the reply (a group member's connection is
	// pushed its group's events): it is not this request's answer.
	for err == nil && h.Op == protocol.Op_PUSH {
		h, body, err = c.readFrame()
	}
	if err != nil {
		return err
	}
	if h.Flags&codec.FlagError != 0 {
		var e protocol.ErrorResp
		_ = codec.ReadBody(body, &e)
		return fmt.Errorf("%v: %v %s", op, e.Code, e.Message)
	}
	return codec.ReadBody(body, resp)
}

// send writes one SEND to user to, due at due (since the run started).
func (c *chatConn) send(to *chatConn, due time.Duration, clientMsgID string) error {
	return c.sendReq(due, &protocol.SendReq{ClientMsgId: clientMsgID, ToUserId: to.id,
		ContentType: common.ContentType_BINARY, Content: encodeChatPayload(due, c.index)})
}

// sendReq writes one SEND, due at due, whose ack acked will find; a send
// whose write failed is not pending. It fails with errSendGivenUp when a
// CLOSE read meanwhile already gave the send up (serverClosed).
func (c *chatConn) sendReq(due time.Duration, req *protocol.SendReq) error {
	c.mu.Lock()
	if c.closedBy != "" {
		c.mu.Unlock()
		return errSenderClosed
	}
	c.nextID++
	id := c.nextID
	c.pending[id] = due
	c.mu.Unlock()
	err := c.write(protocol.Op_SEND, id, req)
	if err == nil {
		return nil
	}
	if _, pending := c.acked(id); !pending {
		return fmt.Errorf("%w: %w", errSendGivenUp, err)
	}
	return err
}

// serverClosed records that a CLOSE for reason ended c and returns how
// many sends were waiting for their ack, which none will get; later sends
// fail with errSenderClosed.
func (c *chatConn) serverClosed(reason string) (unacked int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closedBy = reason
	unacked = len(c.pending)
	clear(c.pending)
	return unacked
}

// closedByServer reports whether a CLOSE ended c, after waiting up to wait
// for the reader to end: a write may fail on a connection the server
// closed before the reader has read its CLOSE.
func (c *chatConn) closedByServer(wait time.Duration) bool {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-c.readDone:
	case <-t.C:
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closedBy != ""
}

// write sends one frame; the scheduler and the heartbeat share the socket.
func (c *chatConn) write(op protocol.Op, id uint32, body codec.Body) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.wbuf = codec.AppendFrame(c.wbuf[:0], op, 0, id, body)
	_, err := c.conn.Write(c.wbuf)
	return err
}

// acked takes the due time of request id.
func (c *chatConn) acked(id uint32) (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	due, ok := c.pending[id]
	delete(c.pending, id)
	return due, ok
}

// readFrames reads c's frames until reading fails: each SEND_ACK goes to
// onAck, the message of each PUSH to onPush; a CLOSE ends it with an error.
func (c *chatConn) readFrames(onAck func(h codec.Header, body []byte),
	onPush func(*common.Message)) error {
	for {
		h, err := c.readHeader()
		if err != nil {
			return err
		}
		body, err := c.readBody(h)
		if err != nil {
			return err
		}
		switch h.Op {
		case protocol.Op_SEND_ACK:
			onAck(h, body)
		case protocol.Op_PUSH:
			var p protocol.PushMsg
			if err := codec.ReadBody(body, &p); err != nil || p.Message == nil {
				return fmt.Errorf("bad push: %v", err)
			}
			onPush(p.Message)
		case protocol.Op_CLOSE:
			return closeFrameErr(body) // read above: not again
		}
	}
}
