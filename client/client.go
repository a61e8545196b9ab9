// Package client is the Go SDK of Resonance: it speaks the binary frame
// protocol of codec over one TCP connection to a gateway, correlates requests
// with their replies and hands server pushes to the application in order.
//
// A Client is safe for concurrent use. It runs one reader goroutine, plus one
// heartbeat goroutine after a successful Login. It does not reconnect: when
// Done is closed, Err says why. Session builds on it what most apps want: a
// presence that reconnects, resumes and hands over every message of the
// user's conversations exactly once and in order.
package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Options tunes a Client. Zero fields take their defaults.
type Options struct {
	// DialTimeout bounds the TCP connect and the TLS handshake; default 5s.
	// A deadline on the context given to Dial applies as well.
	DialTimeout time.Duration
	// RequestTimeout bounds each request from write to reply; default 10s.
	RequestTimeout time.Duration
	// MaxBody is the largest frame body accepted from the server, in bytes;
	// default 4 MiB. The server's frames are not bound by what it takes
	// from clients (SendLimit): a push carries one message of up to its
	// --max-content, which an operator may raise past 64 KiB, and a frame
	// over MaxBody ends the connection, every time that message comes.
	MaxBody int
	// SendLimit is the largest request body the server accepts, in bytes:
	// the gateway's frame body limit (--max-body); default
	// codec.DefaultMaxBody, the gateway's default. A request over it fails
	// with ErrTooLarge before anything is written, so the connection stays
	// up; a server whose limit is lower closes the connection instead
	// (FRAME_TOO_LARGE), and that request fails with ErrTooLarge as well.
	SendLimit int
	// PushBuffer is the capacity of the Messages channel; default 1024.
	PushBuffer int
	// TLS, when set, speaks TLS on the connection. The gateway itself speaks
	// plain TCP; in production a load balancer in front of it ends TLS
	// (docs/operations.md), and clients dial the balancer. An empty
	// ServerName is taken from the host of the address dialled.
	TLS *tls.Config
	// LocalIP, when set, is the source address to dial from, e.g. a
	// 127.x.y.z address so that load tests spread over the per-address limits
	// of a server on loopback. Empty lets the system choose.
	LocalIP string
	// OnNotify, when set, receives the server's ephemeral events (typing,
	// presence of watched users, read positions, clears on the user's other
	// devices; see notify.go). A Session applies a clear itself, then
	// passes every notify on to this one. It is
	// called on the connection's reader goroutine, in arrival order: it
	// must return quickly and must not wait on a request of this Client.
	// Unset, NOTIFY frames are discarded. NOTIFYs are not ordered with
	// each other: two devices reading at once may have their read
	// positions arrive lowest last, so keep the highest read_seq of each
	// conversation rather than the last one.
	OnNotify func(*protocol.Notify)

	// resolver, set by the package's tests only, looks host names up; nil
	// is the system's.
	resolver *net.Resolver
}

const (
	defaultDialTimeout    = 5 * time.Second
	defaultRequestTimeout = 10 * time.Second
	defaultPushBuffer     = 1024
	defaultMaxBody        = 4 << 20 // as the browser and Node clients
	readBufferSize        = 32 << 10
)

func (o Options) withDefaults() Options {
	if o.DialTimeout <= 0 {
		o.DialTimeout = defaultDialTimeout
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = defaultRequestTimeout
	}
	if o.MaxBody <= 0 {
		o.MaxBody = defaultMaxBody
	}
	if o.SendLimit <= 0 {
		o.SendLimit = codec.DefaultMaxBody
	}
	if o.PushBuffer <= 0 {
		o.PushBuffer = defaultPushBuffer
	}
	return o
}

// Client is one connection to a gateway.
type Client struct {
	conn net.Conn
	addr string // as given to Dial
	opts Options
	dec  codec.Decoder

	nextID atomic.Uint32

	// writeMu serializes writes so that frames never interleave; wbuf is
	// reused for every frame to avoid an allocation per request.
	writeMu sync.Mutex
	wbuf    []byte

	mu      sync.Mutex
	pending map[uint32]*call
	err     error // why the connection ended; set once
	// maxAnswered is the largest request body answered on this connection:
	// the server's frame limit is at least that (see blameTooLarge).
	maxAnswered int
	// answered holds the ops the server has replied to on this connection:
	// it knows them, so a PROTOCOL_ERROR close was not for one of those.
	answered map[protocol.Op]bool
	// device is the device logged in as, "" before Login.
	device string
	// limits are the server's, as the last Login's reply reported them.
	limits Limits

	// filePace paces the chunks of every upload and download on this
	// connection, together: a file's chunks go as fast as their answers
	// come back, and on a fast link a large file went over the gateway's
	// rate and got the connection closed (RATE_LIMITED). After a burst of
	// 3 MiB that is 3.2 MiB a second.
	filePace *Pacer

	msgs        chan *common.Message
	done        chan struct{}
	heartbeatOn atomic.Bool
	wg          sync.WaitGroup
}

// call is one request waiting for its reply. The reader decodes the reply
// straight into resp, so no reply body outlives the read buffer.
type call struct {
	op   protocol.Op
	size int // of the request body, in bytes
	// abandoned: the caller gave up waiting (abandon); nobody reads done.
	abandoned bool
	resp      codec.Readable
	done      chan error // buffered: the reader never blocks on a caller that left
}

// Dial connects to a gateway at addr (host:port) and starts the reader. The
// connection is not logged in yet: call Register or Login next.
func Dial(ctx context.Context, addr string, opts Options) (*Client, error) {
	opts = opts.withDefaults()
	d := net.Dialer{Timeout: opts.DialTimeout, Resolver: opts.resolver}
	if opts.LocalIP != "" {
		ip := net.ParseIP(opts.LocalIP)
		if ip == nil {
			return nil, errorf("dial %s: bad local IP %q", addr, opts.LocalIP)
		}
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	var conn net.Conn
	var err error
	if opts.TLS != nil {
		// The handshake runs under ctx and DialTimeout too.
		td := tls.Dialer{NetDialer: &d, Config: opts.TLS}
		if conn, err = td.DialContext(ctx, "tcp", addr); notTLS(err) {
			err = fmt.Errorf("%w: TLS handshake: %w", ErrNotTLS, err)
		}
	} else {
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, dialError(addr, err)
	}
	c := newClient(conn, opts)
	c.addr = addr
	return c, nil
}

// notTLS reports whether a TLS handshake's err says the server does not
// speak TLS: it closed the connection, or sent bytes that are no TLS record.
func notTLS(err error) bool {
	var rh tls.RecordHeaderError
	return errors.As(err, &rh) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF)
}

// dialError names addr, as given, in a failed dial's error once. The
// dialer's error names the address it dialled, "dial tcp ADDR: ...", but
// after a lookup that is the resolved IP, and a lookup that fails names
// the host alone: "dial tcp: lookup HOST: no such host".
func dialError(addr string, err error) error {
	if strings.Contains(err.Error(), addr) {
		return errorf("%w", err)
	}
	return errorf("dial %s: %w", addr, err)
}

func newClient(conn net.Conn, opts Options) *Client {
	c := &Client{
		conn:    conn,
		opts:    opts,
		dec:     codec.Decoder{MaxBody: opts.MaxBody},
		pending: make(map[uint32]*call),
		msgs:    make(chan *common.Message, opts.PushBuffer),
		done:    make(chan struct{}),

		filePace: HalfFrameRate(),
	}
	c.wg.Add(1)
	go c.readLoop()
	return c
}

// Messages returns the pushes of this connection in arrival order. The channel
// holds Options.PushBuffer messages; when it is full the reader stops reading
// the socket until the application receives again. That backpressure reaches
// the server, which may close a consumer this slow (SLOW_CONSUMER), and it
// also holds back replies: drain Messages while waiting on requests, or a
// request (a heartbeat included, which then ends the connection with
// ErrHeartbeat) times out. The channel is closed after the connection ends.
func (c *Client) Messages() <-chan *common.Message {
	return c.msgs
}

// Addr is the gateway address the connection was dialled at, as given to
// Dial.
func (c *Client) Addr() string { return c.addr }

// Done is closed when the connection has ended; Err then says why.
func (c *Client) Done() <-chan struct{} {
	return c.done
}

// Err returns why the connection ended: a *CloseError when the server sent a
// CLOSE frame, ErrClosed after Close, or the I/O or protocol error. It returns
// nil while the connection is up.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close closes the connection, fails pending requests with ErrClosed and waits
// for the SDK's goroutines to end. It is idempotent and returns nil.
func (c *Client) Close() error {
	c.fail(ErrClosed)
	c.wg.Wait()
	return nil
}

// Shutdown ends the connection from this side in order: it stops writing,
// so that the server reads the end of the stream and closes its side, and
// waits until the reader has read what the server sent before that, or
// until ctx is done; then it closes as Close does. A CLOSE the server sent
// before it saw the end is so read, and Err returns its *CloseError, where
// Close would drop it unread and report ErrClosed. Pushes read meanwhile
// still go to Messages, which the caller must drain. A connection that
// cannot stop writing alone is closed at once. Requests made after
// Shutdown fail.
func (c *Client) Shutdown(ctx context.Context) error {
	// A write in progress is cut short rather than waited for: a server
	// that reads nothing would hold it, and the lock, forever.
	_ = c.conn.SetWriteDeadline(time.Now())
	c.writeMu.Lock()
	hc, ok := c.conn.(interface{ CloseWrite() error })
	ok = ok && hc.CloseWrite() == nil
	c.writeMu.Unlock()
	if ok {
		select {
		case <-c.done:
		case <-ctx.Done():
		}
	}
	return c.Close()
}

// fail ends the connection with err unless it has already ended; the first
// reason wins. Pending requests get err.
func (c *Client) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	pending := c.pending
	c.pending = nil
	culprit := c.blameTooLarge(err, pending)
	close(c.done)
	c.mu.Unlock()

	_ = c.conn.Close()
	protocolErr := closedFor(err, protocol.CloseReason_PROTOCOL_ERROR)
	for _, cl := range pending {
		switch {
		case cl == culprit:
			cl.done <- &TooLargeError{Op: cl.op, Size: cl.size}
		case protocolErr && c.answered[cl.op]:
			cl.done <- closedBeside{err}
		default:
			cl.done <- err
		}
	}
}

// closedBeside is the error of a request in flight at a CLOSE
// PROTOCOL_ERROR whose op the server had answered on the connection
// before, or made after it (register): the close was for another frame (an
// op the server does not know), so the Session may send this one again
// however often it happens.
type closedBeside struct{ error }

func (e closedBeside) Unwrap() error { return e.error }

// closedFor reports whether err is a CLOSE with reason.
func closedFor(err error, reason protocol.CloseReason) bool {
	var ce *CloseError
	return errors.As(err, &ce) && ce.Reason == reason
}

// blameTooLarge returns the request the server closed the connection for
// when err is a FRAME_TOO_LARGE close, or nil. The close does not say which
// frame it was; the gateway refuses a frame at its header, so that one
// never gets a reply and is among the pending, and the largest of them is
// over the limit if any is. A body no larger than one already answered
// cannot be over it: then the culprit is a request given up meanwhile,
// and no pending one is blamed. Blamed, a request fails with ErrTooLarge
// and is not sent again; the others fail with the close and may be.
// c.mu must be held.
func (c *Client) blameTooLarge(err error, pending map[uint32]*call) *call {
	if !closedFor(err, protocol.CloseReason_FRAME_TOO_LARGE) {
		return nil
	}
	var culprit *call
	for _, cl := range pending {
		if cl.size > c.maxAnswered && (culprit == nil || cl.size > culprit.size) {
			culprit = cl
		}
	}
	if culprit != nil && culprit.abandoned {
		return nil // the largest was given up: it, not a waiting one, is the suspect
	}
	return culprit
}

// readLoop is the only reader of the socket. It decodes replies into their
// waiting calls and pushes into the Messages channel.
func (c *Client) readLoop() {
	defer c.wg.Done()
	defer close(c.msgs)
	br := bufio.NewReaderSize(c.conn, readBufferSize)
	var body []byte
	for {
		h, err := c.readFrame(br, &body)
		if err == nil {
			err = c.dispatch(h, body)
		}
		if err != nil {
			c.fail(err)
			return
		}
	}
}

// readFrame reads one whole frame into *body, which is reused across frames:
// every decoded body copies its strings out (codec.ReadBody).
func (c *Client) readFrame(br *bufio.Reader, body *[]byte) (codec.Header, error) {
	hdr, err := br.Peek(codec.HeaderSize)
	if err != nil {
		return codec.Header{}, readErr(err)
	}
	h, err := c.dec.DecodeHeader(hdr)
	if err != nil {
		return h, errorf("%w: read header: %w", ErrProtocol, err)
	}
	_, _ = br.Discard(codec.HeaderSize)
	if cap(*body) < int(h.BodyLen) {
		*body = make([]byte, h.BodyLen)
	}
	*body = (*body)[:h.BodyLen]
	if _, err := io.ReadFull(br, *body); err != nil {
		return h, readErr(err)
	}
	return h, nil
}

func readErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errorf("connection closed by server: %w", err)
	}
	return errorf("read: %w", err)
}

func (c *Client) dispatch(h codec.Header, body []byte) error {
	switch {
	case h.Op == protocol.Op_PUSH:
		return c.deliverPush(body)
	case h.Op == protocol.Op_NOTIFY:
		return c.deliverNotify(body)
	case h.Op == protocol.Op_CLOSE:
		m := protocol.NewCloseMsg()
		if err := codec.ReadBody(body, m); err != nil {
			return errorf("%w: close frame: %w", ErrProtocol, err)
		}
		return newCloseError(m)
	case codec.IsRequest(h.Op):
		return errorf("%w: server sent request op %s", ErrProtocol, h.Op)
	default:
		return c.completeCall(h, body)
	}
}

func (c *Client) deliverPush(body []byte) error {
	p := protocol.NewPushMsg()
	if err := codec.ReadBody(body, p); err != nil {
		return errorf("%w: push: %w", ErrProtocol, err)
	}
	if p.Message == nil {
		return errorf("%w: push without a message", ErrProtocol)
	}
	// Block rather than drop: see Messages. done unblocks us on Close.
	select {
	case c.msgs <- p.Message:
		return nil
	case <-c.done:
		return ErrClosed
	}
}

// completeCall hands a reply to its caller. A reply whose caller already gave
// up (timeout) is read and discarded: the stream stays in sync.
func (c *Client) completeCall(h codec.Header, body []byte) error {
	c.mu.Lock()
	cl := c.pending[h.RequestID]
	delete(c.pending, h.RequestID)
	abandoned := cl != nil && cl.abandoned
	if cl != nil {
		c.maxAnswered = max(c.maxAnswered, cl.size)
		if c.answered == nil {
			c.answered = make(map[protocol.Op]bool)
		}
		c.answered[cl.op] = true
	}
	c.mu.Unlock()
	if cl == nil {
		return nil
	}
	if h.Op != codec.ReplyOp(cl.op) {
		err := errorf("%w: request %d op %s answered by %s",
			ErrProtocol, h.RequestID, cl.op, h.Op)
		cl.done <- err // buffered: harmless if abandoned
		return err
	}
	if abandoned {
		return nil // nobody waits for the reply
	}
	cl.done <- decodeReply(h, body, cl.resp)
	return nil
}

func decodeReply(h codec.Header, body []byte, resp codec.Readable) error {
	if h.Flags&codec.FlagError != 0 {
		e := protocol.NewErrorResp()
		if err := codec.ReadBody(body, e); err != nil {
			return errorf("%w: error reply: %w", ErrProtocol, err)
		}
		return &Error{Code: e.Code, Message: e.Message}
	}
	if err := codec.ReadBody(body, resp); err != nil {
		return errorf("%w: reply %s: %w", ErrProtocol, h.Op, err)
	}
	return nil
}
