package scenario

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// EchoConfig configures Echo. Zero fields take the default named.
type EchoConfig struct {
	// Addr is the gateway's client address; required.
	Addr string
	// Conns is the number of logged-in connections; default 64.
	Conns int
	// Depth is the HEARTBEAT requests in flight per connection; default 1.
	Depth int
	// Duration is the length of the measured phase; default 10s.
	Duration time.Duration
	// WebSocket uses WebSocket connections instead of raw TCP.
	WebSocket bool
	// Users is how many users the connections log in as (as devices);
	// default 10, or one per 8 connections when that is more (logic's
	// default password budget per account). A value given is used as is:
	// see loginBudgetNote.
	Users int
	// ServerPID, when set, is the server process whose CPU time is measured.
	ServerPID int
	// Progress receives a status line every second; nil prints none.
	Progress io.Writer
}

// ErrServerClosed means the server closed a connection during the run,
// typically RATE_LIMITED: echo goes far beyond the default --frame-rate.
var ErrServerClosed = errors.New("scenario: server closed a connection")

// Echo opens cfg.Conns logged-in connections and has each send HEARTBEAT
// requests in a closed loop (a new one as each reply arrives, Depth in
// flight) for cfg.Duration. The gateway answers HEARTBEAT on its event loop
// with no backend work, so this measures the frame path alone. The latency
// is the round trip of each request.
func Echo(ctx context.Context, cfg EchoConfig) (Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Report{}, err
	}
	if note := loginBudgetNote("echo", cfg.Conns, cfg.Users); note != "" &&
		cfg.Progress != nil {
		fmt.Fprintln(cfg.Progress, note)
	}
	conns, err := openConns(ctx, rawConnsConfig{addr: cfg.Addr, conns: cfg.Conns,
		users: cfg.Users, ws: cfg.WebSocket, prefix: uniquePrefix("echo")})
	if err != nil {
		return Report{}, fmt.Errorf("echo: %w", err)
	}
	defer closeConns(conns)

	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	start := time.Now()
	rec := NewRecorder(start)
	var frames atomic.Int64
	stopProgress := make(chan struct{})
	waitProgress := progress(cfg.Progress, stopProgress, func() string {
		n, p99 := rec.Snapshot()
		took := time.Since(start)
		return fmt.Sprintf("echo: %4.0fs frames=%d rate=%.0f/s p99=%s", took.Seconds(), n,
			perSecond(int64(n), took), FormatDuration(p99))
	})
	cpu := startCPU(cfg.ServerPID)
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = echoLoop(runCtx, c, cfg.Depth, rec, &frames)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	usage := cpu.stop()
	close(stopProgress)
	waitProgress()

	rep := Report{Scenario: "echo", OK: true, ServerCPU: usage,
		Params: []Metric{{Name: "conns", Value: float64(cfg.Conns)},
			{Name: "users", Value: float64(cfg.Users)},
			{Name: "depth", Value: float64(cfg.Depth)},
			{Name: "duration", Value: cfg.Duration.Seconds(), Unit: "s"}},
		Metrics: []Metric{{Name: "frames", Value: float64(frames.Load())},
			{Name: "rate", Value: perSecond(frames.Load(), elapsed), Unit: "frames/s"}},
		Latencies: []Latency{latencyOf("round trip", rec)}}
	if err := firstError(errs); err != nil {
		rep.OK = false
		return rep, fmt.Errorf("echo: %w", err)
	}
	return rep, nil
}

func (c EchoConfig) withDefaults() (EchoConfig, error) {
	if c.Addr == "" {
		return c, fmt.Errorf("%w: echo needs --addr", ErrBadConfig)
	}
	if err := refuseNegative("echo", c); err != nil {
		return c, err
	}
	c.Conns, c.Depth = cmpOr(c.Conns, 64), cmpOr(c.Depth, 1)
	c.Duration = cmp0(c.Duration, 10*time.Second)
	c.Users = cmpOr(c.Users, max(10, usersFor(c.Conns)))
	return c, nil
}

func cmp0(v, def time.Duration) time.Duration {
	if v <= 0 {
		return def
	}
	return v
}

// echoLoop keeps depth HEARTBEATs in flight on c until ctx is done, then
// collects the replies still due. Requests carry ids 1, 2, ...; sent[id %
// depth] is the send time of the one request in flight with that id.
func echoLoop(ctx context.Context, c *benchConn, depth int, rec *Recorder,
	frames *atomic.Int64) error {
	sent := make([]time.Time, depth)
	w := newFrameWriter(c, protocol.Op_HEARTBEAT, protocol.NewHeartbeatReq())
	var next uint32 = 1
	for ; next <= uint32(depth); next++ {
		sent[next%uint32(depth)] = time.Now()
		if err := w.write(next); err != nil {
			return err
		}
	}
	inFlight := depth
	_ = c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for inFlight > 0 {
		h, err := c.readHeader()
		if err != nil {
			return err
		}
		if h.Op != protocol.Op_HEARTBEAT_ACK {
			return unexpectedFrame(c, h)
		}
		if err := c.skipBody(h); err != nil {
			return err
		}
		now := time.Now()
		rec.Record(now, now.Sub(sent[h.RequestID%uint32(depth)]))
		frames.Add(1)
		inFlight--
		if ctx.Err() != nil {
			continue
		}
		sent[next%uint32(depth)] = now
		if err := w.write(next); err != nil {
			return err
		}
		next++
		inFlight++
	}
	return nil
}

// unexpectedFrame describes a frame echo did not ask for: a CLOSE with its
// reason, or the opcode.
func unexpectedFrame(c *benchConn, h codec.Header) error {
	if h.Op != protocol.Op_CLOSE {
		return fmt.Errorf("unexpected %v frame", h.Op)
	}
	body, err := c.readBody(h)
	if err != nil {
		body = nil
	}
	return closeFrameErr(body)
}

// closeFrameErr describes the CLOSE whose body is body (nil when it could
// not be read): its reason and message, as a *serverCloseError.
func closeFrameErr(body []byte) error {
	var msg protocol.CloseMsg
	if body != nil {
		_ = codec.ReadBody(body, &msg)
	}
	hint := ""
	if msg.Reason == protocol.CloseReason_RATE_LIMITED {
		hint = " (start the server with --frame-rate -1)"
	}
	return &serverCloseError{reason: msg.Reason,
		text: fmt.Sprintf("%v: %v %s%s", ErrServerClosed, msg.Reason, msg.Message, hint)}
}

// serverCloseError is a CLOSE that ended a connection; it is
// ErrServerClosed.
type serverCloseError struct {
	reason protocol.CloseReason
	text   string
}

func (e *serverCloseError) Error() string { return e.text }

func (e *serverCloseError) Unwrap() error { return ErrServerClosed }

// frameWriter writes one request frame again and again with a new id. Over
// TCP the frame is encoded once and only its id patched; WebSocket masks
// the payload in place, so the frame is copied from the template first.
type frameWriter struct {
	c        *benchConn
	template []byte
	buf      []byte
}

func newFrameWriter(c *benchConn, op protocol.Op, body codec.Body) *frameWriter {
	t := codec.EncodeFrame(op, 0, 0, body)
	return &frameWriter{c: c, template: t, buf: make([]byte, len(t))}
}

func (w *frameWriter) write(id uint32) error {
	copy(w.buf, w.template)
	w.buf[6], w.buf[7], w.buf[8], w.buf[9] = byte(id>>24), byte(id>>16), byte(id>>8), byte(id)
	if w.c.ws {
		return ws.WriteFrame(w.c.conn, ws.MaskFrameInPlace(ws.NewBinaryFrame(w.buf)))
	}
	_, err := w.c.conn.Write(w.buf)
	return err
}

// readHeader reads the next frame's header; the body is then read with
// readBody or skipped with skipBody. Over TCP nothing is allocated. Over
// WebSocket the whole message is read and its body kept for readBody.
func (c *benchConn) readHeader() (codec.Header, error) {
	if c.ws {
		h, body, err := c.readWSFrame()
		c.wsBody = body
		return h, err
	}
	hdr, err := c.r.Peek(codec.HeaderSize)
	if err != nil {
		return codec.Header{}, err
	}
	h, err := codec.Decoder{MaxBody: 1 << 24}.DecodeHeader(hdr)
	if err != nil {
		return h, err
	}
	_, _ = c.r.Discard(codec.HeaderSize)
	return h, nil
}

// readBody returns the body of the frame whose header was just read, in a
// buffer valid until the next read.
func (c *benchConn) readBody(h codec.Header) ([]byte, error) {
	if c.ws {
		return c.wsBody, nil
	}
	if cap(c.body) < int(h.BodyLen) {
		c.body = make([]byte, h.BodyLen)
	}
	c.body = c.body[:h.BodyLen]
	_, err := io.ReadFull(c.r, c.body)
	return c.body, err
}

// skipBody drops the body of the frame whose header was just read.
func (c *benchConn) skipBody(h codec.Header) error {
	if c.ws {
		return nil
	}
	_, err := c.r.Discard(int(h.BodyLen))
	return err
}

// rawConnsConfig says which raw connections openConns opens.
type rawConnsConfig struct {
	addr   string
	conns  int
	users  int // registered users the connections log in as, as given; default 10
	ws     bool
	prefix string
}

// devicesPerUser keeps the password logins of one user under logic's
// default budget per account (a burst of 10, then one per 30 seconds).
const devicesPerUser = 8

// usersFor is the fewest users whose accounts take conns password logins
// within logic's default budget: one per devicesPerUser connections.
func usersFor(conns int) int {
	return (conns + devicesPerUser - 1) / devicesPerUser
}

// loginBudgetNote is the warning a scenario prints when the users it was
// given put more password logins on one account than logic's default
// budget takes, or "" when they do not. The users are taken as given, not
// raised: a server started with a raised --login-account-limit takes any
// number, and a run measuring many devices of few users means it; against
// the default the logins over the budget are refused as RATE_LIMITED and
// the ramp fails after its retries, which this says beforehand.
func loginBudgetNote(scenario string, conns, users int) string {
	if users <= 0 || users >= usersFor(conns) {
		return ""
	}
	as := fmt.Sprintf("%d users", users)
	if users == 1 {
		as = "1 user"
	}
	return fmt.Sprintf("%s: %d connections as %s is up to %d password logins per "+
		"account, more than the %d the bench keeps to under logic's default budget (10, "+
		"then one per 30s): unless the server was started with a raised "+
		"--login-account-limit, give --users %d or more", scenario, conns, as,
		(conns+users-1)/users, devicesPerUser, usersFor(conns))
}

// openConns registers cfg.users users and opens and logs in the
// connections as their devices, spread over source addresses for logic's
// budgets per address, with no heartbeats: the caller reads and writes
// them itself.
func openConns(ctx context.Context, cfg rawConnsConfig) ([]*benchConn, error) {
	ccfg, err := connectDefaults(ConnectConfig{Addr: cfg.addr, Conns: cfg.conns,
		Users: cfg.users, WebSocket: cfg.ws, Prefix: cfg.prefix, PerSourceIP: loginsPerSource})
	if err != nil {
		return nil, err
	}
	creds, err := registerSpread(ctx, cfg.addr, cfg.prefix, ccfg.Users)
	if err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	r := &ramp{cfg: ccfg, creds: creds, conns: make([]*benchConn, ccfg.Conns),
		latencies: make([]time.Duration, ccfg.Conns), source: newSources().ip}
	if err := r.run(ctx); err != nil {
		r.closeAll()
		return nil, err
	}
	for _, c := range r.conns {
		// The login read through a small buffer; the run reads many frames.
		c.r = bufio.NewReaderSize(c.r, 16<<10)
	}
	return r.conns, nil
}

func closeConns(conns []*benchConn) {
	for _, c := range conns {
		_ = c.conn.Close()
	}
}

// newReader returns the reader of a connection that reads many frames.
func newReader(conn net.Conn) *bufio.Reader {
	return bufio.NewReaderSize(conn, 16<<10)
}
