package scenario

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// ConnectConfig configures a ramp of logged-in connections (see
// ConnectSpread, Idle and the scenarios that open raw connections). Zero
// fields take the default named.
type ConnectConfig struct {
	// Addr is the gateway's client address; required.
	Addr string
	// Conns is the number of connections to open and log in; required.
	Conns int
	// WebSocket opens WebSocket connections instead of raw TCP.
	WebSocket bool
	// Users is how many users are registered; the connections log in as
	// them in turn, each with its own device id. Default 10. Every first
	// login checks a password (argon2 on the server, the slow part of a
	// ramp): logic binds a token to the device it was issued for, so a
	// token cannot log in another device.
	Users int
	// Parallel bounds the connections being opened at once; default 64.
	Parallel int
	// PerSourceIP is the most connections opened from one source address;
	// beyond it they spread over further addresses so that no source runs
	// out of ephemeral ports. Default 10000.
	PerSourceIP int
	// Warmup is how many connections open before Warmed is called, so that
	// a measurement taken there has the server's login machinery (argon2
	// memory above all) already paid for. Default 0.
	Warmup int
	// Warmed, if set, is called once the Warmup connections are logged in.
	Warmed func()
	// Prefix names the users; default random per run.
	Prefix string
}

// ConnectResult is what a ramp measured.
type ConnectResult struct {
	Conns    int           // connections logged in
	Refused  int           // attempts refused or shed as overloaded, and retried
	Ramp     time.Duration // first dial to last login
	LoginP50 time.Duration // connect + handshake + login round trip
	LoginP99 time.Duration
}

// errRefused means the gateway closed an attempt with OVERLOADED, or the
// login was answered BUSY, UNAVAILABLE or RATE_LIMITED: the server asks to
// retry later.
var errRefused = errors.New("connect: refused for now")

// maxRefusals bounds the retries of one connection refused as overloaded.
const maxRefusals = 50

func connectDefaults(cfg ConnectConfig) (ConnectConfig, error) {
	if err := refuseNegative("connect", cfg); err != nil {
		return cfg, err
	}
	if cfg.Addr == "" || cfg.Conns <= 0 {
		return cfg, fmt.Errorf("%w: connect needs --addr and --conns above 0", ErrBadConfig)
	}
	cfg.Users = min(cmpOr(cfg.Users, 10), cfg.Conns)
	cfg.Parallel = cmpOr(cfg.Parallel, 64)
	cfg.PerSourceIP = cmpOr(cfg.PerSourceIP, 10000)
	if cfg.Prefix == "" {
		cfg.Prefix = uniquePrefix("conn")
	}
	return cfg, checkPrefix(cfg.Prefix, cfg.Users)
}

func cmpOr(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// credential is a registered user's username and password, and its id when
// the registration reported it.
type credential struct {
	username, password string
	id                 int64
}

// ramp opens the connections of one ramp.
type ramp struct {
	cfg       ConnectConfig
	creds     []credential
	conns     []*benchConn
	latencies []time.Duration
	refused   atomic.Int64
	paused    time.Duration // spent in Warmed, not part of the ramp
	// source, if set, chooses the source address of connection i instead
	// of PerSourceIP.
	source func(i int) net.IP
	// base is the run-wide index of connection 0 when several workers share
	// a run: device ids and users follow base+i, so they stay distinct.
	base int
	// addrs, if set, are the gateways: connection i dials
	// addrs[(base+i)%len(addrs)] instead of cfg.Addr.
	addrs []string

	// keepCtx ends the heartbeats of the logged-in connections; a ramp
	// slower than the server's heartbeat timeout would otherwise lose its
	// first connections before the last log in.
	keepCtx context.Context
	keepers sync.WaitGroup
	dropped atomic.Int64 // connections that failed a heartbeat
	// tokens, when set, log connection i in with tokens[i] (a re-login).
	tokens []string
	opened atomic.Int64 // connections logged in, for progress lines

	// refusals is how many refused attempts a connection makes before the
	// ramp fails (default maxRefusals), and backoff the first pause between
	// them (default 100ms, doubling up to 2s).
	refusals int
	backoff  time.Duration
}

// run opens every connection, the warm-up ones first.
func (r *ramp) run(ctx context.Context) error {
	warmup := min(max(r.cfg.Warmup, 0), len(r.conns))
	if err := r.openRange(ctx, 0, warmup); err != nil {
		return err
	}
	if r.cfg.Warmed != nil {
		paused := time.Now()
		r.cfg.Warmed()
		r.paused = time.Since(paused)
	}
	return r.openRange(ctx, warmup, len(r.conns))
}

// openRange opens connections [from, to), cfg.Parallel at a time.
func (r *ramp) openRange(ctx context.Context, from, to int) error {
	sem := make(chan struct{}, r.cfg.Parallel)
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	for i := from; i < to; i++ {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := r.open(ctx, i); err != nil {
				errOnce.Do(func() { firstErr = fmt.Errorf("connection %d: %w", i, err) })
			}
		}()
	}
	wg.Wait()
	return cmpOrErr(firstErr, ctx.Err())
}

func cmpOrErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// open opens and logs in connection i, retrying while it is refused as
// overloaded (the gateway's accept rate) or its login is shed. When every
// attempt was refused it fails naming the device, its user and the last
// refusal: the server's answer says which budget or queue refused it.
func (r *ramp) open(ctx context.Context, i int) error {
	backoff := cmp0(r.backoff, 100*time.Millisecond)
	attempts := cmpOr(r.refusals, maxRefusals)
	var err error
	for range attempts {
		start := time.Now()
		var c *benchConn
		c, err = r.dial(ctx, i)
		if err == nil {
			err = c.loginReq(r.loginReq(i))
		}
		if err == nil {
			r.conns[i], r.latencies[i] = c, time.Since(start)
			r.opened.Add(1)
			r.keep(c)
			return nil
		}
		if c != nil {
			_ = c.conn.Close()
		}
		if !errors.Is(err, errRefused) {
			return err
		}
		r.refused.Add(1)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
			// Up to the period in which a source address's login budget
			// gets one attempt back (logic's --login-addr-limit default).
			backoff = min(2*backoff, 2*time.Second)
		}
	}
	return fmt.Errorf("%s: refused %d times, the last: %w", r.who(i), attempts, err)
}

// loginReq is the LOGIN of connection i: with its token on a re-login,
// else with its user's password.
func (r *ramp) loginReq(i int) *protocol.LoginReq {
	req := &protocol.LoginReq{DeviceId: r.device(i), Platform: "bench"}
	if r.tokens != nil {
		req.Token = r.tokens[i]
	} else {
		cred := r.creds[(r.base+i)%len(r.creds)]
		req.Username, req.Password = cred.username, cred.password
	}
	return req
}

// device is the device id of connection i, distinct over the whole run.
func (r *ramp) device(i int) string { return fmt.Sprintf("bench-%d", r.base+i) }

// who names connection i in an error: its device and the user it logs in
// as, by password or with its token.
func (r *ramp) who(i int) string {
	how := "password"
	if r.tokens != nil {
		how = "token"
	}
	return fmt.Sprintf("device %s of user %s (%s login)", r.device(i),
		r.creds[(r.base+i)%len(r.creds)].username, how)
}

// dial connects connection i to its gateway from its source address.
func (r *ramp) dial(ctx context.Context, i int) (*benchConn, error) {
	src := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i/r.cfg.PerSourceIP))}
	if r.source != nil {
		src.IP = r.source(i)
	}
	addr := r.cfg.Addr
	if len(r.addrs) > 0 {
		addr = r.addrs[(r.base+i)%len(r.addrs)]
	}
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: src, Control: bindNoPort}
	if !r.cfg.WebSocket {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return &benchConn{conn: conn, r: bufio.NewReaderSize(conn, 256)}, nil
	}
	wd := ws.Dialer{Timeout: 10 * time.Second, NetDial: d.DialContext}
	conn, br, _, err := wd.Dial(ctx, "ws://"+addr+"/")
	if err != nil {
		return nil, err
	}
	c := &benchConn{conn: conn, ws: true, r: bufio.NewReaderSize(conn, 256)}
	if br != nil { // the server spoke first; its bytes wait in br
		c.r = bufio.NewReaderSize(io.MultiReader(br, conn), 256)
	}
	return c, nil
}

func (r *ramp) result(took time.Duration) ConnectResult {
	lat := slices.Clone(r.latencies)
	slices.Sort(lat)
	return ConnectResult{Conns: len(r.conns), Refused: int(r.refused.Load()), Ramp: took,
		LoginP50: lat[len(lat)/2], LoginP99: lat[len(lat)*99/100]}
}

// keep heartbeats c until keepCtx is done, counting it dropped if it fails
// first. Without a keepCtx it does nothing.
func (r *ramp) keep(c *benchConn) {
	if r.keepCtx == nil {
		return // the caller drives the connections itself (echo, push)
	}
	r.keepers.Add(1)
	go func() {
		defer r.keepers.Done()
		if !c.heartbeatUntil(r.keepCtx) {
			r.dropped.Add(1)
		}
	}()
}

func (r *ramp) closeAll() {
	for _, c := range r.conns {
		if c != nil {
			_ = c.conn.Close()
		}
	}
}

// benchConn is one raw client connection of the bench: a socket and the
// little it takes to log in and heartbeat, over TCP or WebSocket.
type benchConn struct {
	conn     net.Conn
	r        *bufio.Reader
	ws       bool
	interval time.Duration // heartbeat interval from the LoginResp
	userID   int64         // from the LoginResp
	token    string        // from the LoginResp
	body     []byte        // reused by readBody
	wsBody   []byte        // body of the last WebSocket frame readHeader read
}

// writeFrame sends one frame, in a masked binary message over WebSocket.
func (c *benchConn) writeFrame(op protocol.Op, id uint32, body codec.Body) error {
	frame := codec.EncodeFrame(op, 0, id, body)
	if c.ws {
		return ws.WriteFrame(c.conn, ws.MaskFrameInPlace(ws.NewBinaryFrame(frame)))
	}
	_, err := c.conn.Write(frame)
	return err
}

// readFrame reads the next protocol frame.
func (c *benchConn) readFrame() (codec.Header, []byte, error) {
	if c.ws {
		return c.readWSFrame()
	}
	hdr := make([]byte, codec.HeaderSize)
	if _, err := io.ReadFull(c.r, hdr); err != nil {
		return codec.Header{}, nil, err
	}
	h, err := codec.Decoder{MaxBody: 1 << 24}.DecodeHeader(hdr)
	if err != nil {
		return h, nil, err
	}
	body := make([]byte, h.BodyLen)
	_, err = io.ReadFull(c.r, body)
	return h, body, err
}

func (c *benchConn) readWSFrame() (codec.Header, []byte, error) {
	for {
		f, err := ws.ReadFrame(c.r)
		if err != nil {
			return codec.Header{}, nil, err
		}
		switch f.Header.OpCode {
		case ws.OpClose:
			return codec.Header{}, nil, io.EOF
		case ws.OpBinary:
			h, body, _, err := codec.Decoder{MaxBody: 1 << 24}.Decode(f.Payload)
			return h, body, err
		}
	}
}

// login logs c in as device of cred, with the password.
func (c *benchConn) login(cred credential, device string) error {
	return c.loginReq(&protocol.LoginReq{Username: cred.username, Password: cred.password,
		DeviceId: device, Platform: "bench"})
}

// loginReq sends req as the connection's LOGIN and reads the answer. A
// CLOSE OVERLOADED or a shed login instead of the ack is errRefused, to
// retry.
func (c *benchConn) loginReq(req *protocol.LoginReq) error {
	_ = c.conn.SetDeadline(time.Now().Add(30 * time.Second))
	defer c.conn.SetDeadline(time.Time{})
	device := req.DeviceId
	if err := c.writeFrame(protocol.Op_LOGIN, 1, req); err != nil {
		return fmt.Errorf("login %s: %w", device, err)
	}
	h, body, err := c.readFrame()
	if err != nil {
		return fmt.Errorf("login %s: %w", device, err)
	}
	if h.Op == protocol.Op_CLOSE {
		var msg protocol.CloseMsg
		_ = codec.ReadBody(body, &msg)
		if msg.Reason == protocol.CloseReason_OVERLOADED {
			return fmt.Errorf("%w: login %s closed with %v: %s", errRefused, device,
				msg.Reason, msg.Message)
		}
		return fmt.Errorf("login %s: closed with %v: %s", device, msg.Reason, msg.Message)
	}
	if h.Flags&codec.FlagError != 0 || h.Op != protocol.Op_LOGIN_ACK {
		var e protocol.ErrorResp
		_ = codec.ReadBody(body, &e)
		switch e.Code {
		case common.ErrorCode_BUSY, common.ErrorCode_UNAVAILABLE, common.ErrorCode_RATE_LIMITED:
			// Shed, not refused: the password hashing queue was full,
			// logic's answer late, or the retries of a loaded server used
			// up the source address's budget. Worth another try later.
			return fmt.Errorf("%w: login %s answered %v: %s", errRefused, device, e.Code,
				e.Message)
		}
		return fmt.Errorf("login %s: op %v error %v: %s", device, h.Op, e.Code, e.Message)
	}
	var resp protocol.LoginResp
	if err := codec.ReadBody(body, &resp); err != nil {
		return fmt.Errorf("login %s: %w", device, err)
	}
	c.interval = max(time.Duration(resp.HeartbeatIntervalMs)*time.Millisecond, time.Second)
	c.userID, c.token = resp.UserId, resp.Token
	return nil
}

// heartbeatUntil heartbeats at half the server's interval until ctx is done;
// false means the connection failed first.
func (c *benchConn) heartbeatUntil(ctx context.Context) bool {
	t := time.NewTimer(time.Duration(rand.Int64N(int64(c.interval / 2))))
	defer t.Stop()
	for id := uint32(2); ; id++ {
		select {
		case <-ctx.Done():
			return true
		case <-t.C:
		}
		_ = c.conn.SetDeadline(time.Now().Add(10 * time.Second))
		if c.writeFrame(protocol.Op_HEARTBEAT, id, nil) != nil {
			return false
		}
		if h, _, err := c.readFrame(); err != nil || h.Op != protocol.Op_HEARTBEAT_ACK {
			return false
		}
		t.Reset(c.interval / 2)
	}
}
