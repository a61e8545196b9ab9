package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cloudwego/kitex/client"
	"github.com/cloudwego/kitex/pkg/remote/trans/gonet"
	"github.com/cloudwego/kitex/server"
	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc/logic"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
	"github.com/resonance-im/resonance/kitex_gen/pushrpc/push"
)

// stubLogic is a small in-test logic service: users alice (1) and bob (2)
// with password "pw", and stubToken, alice's token for device "tablet";
// Send echoes with a per-conversation seq counter. Like a logic older than
// LoginResp.device_id, it names the device only for token logins.
type stubLogic struct {
	// Logic answers the methods the gateway tests do not exercise: calling
	// one fails the call (a nil interface).
	logicrpc.Logic
	mu         sync.Mutex
	seqs       map[string]int64
	logins     map[string]*logicrpc.ConnInfo // username -> last login
	registers  map[string]*logicrpc.ConnInfo // username -> last register
	sendUsers  []int64                       // session user of each Send
	runCalls   [][]int                       // requests of each run of each SendRuns
	loginCalls []int                         // attempts of each LoginBatch
	// disconnectCalls holds the sessions of each DisconnectBatch.
	disconnectCalls []int
	disconnects     []*logicrpc.Session
	renewals        []*logicrpc.Session
	// positions and reads are what each Delivered and MarkRead was given.
	positions []*protocol.ConvPos
	reads     []*protocol.MarkReadReq
	// positionGate, when set, holds every Delivered and MarkRead until it
	// is closed (set before the gateway starts).
	positionGate chan struct{}
	// positionErrs are the errors the next Delivered and MarkRead calls
	// fail with, one each, before those calls record anything;
	// positionCalls counts the calls as they arrive, failed ones included.
	positionErrs  []error
	positionCalls int
	// holdRead, when not 0, makes the MarkRead of that seq signal entered,
	// then wait for release to close before it is recorded.
	holdRead int64
	// disconnectDelay makes each Disconnect take this long (set before
	// the gateway starts).
	disconnectDelay time.Duration
	// withoutSendRuns and withoutLoginBatch serve the service as a logic
	// older than that method registers it (set before the gateway starts).
	withoutSendRuns, withoutLoginBatch, withoutDisconnectBatch bool

	// A Send of "slow" signals entered, then waits for release to close.
	entered chan struct{}
	release chan struct{}
	// tokenGen, when not 0 (set before the gateway starts), is the token
	// generation of the access tokens password logins get; CHANGE_PASSWORD
	// bumps it and answers a token of the new one, and LIST_DEVICES records
	// the generation of its session in listedGens.
	tokenGen   int64
	listedGens []int64
	// loginHook, when set (onLogin), runs at the start of every Login, on
	// the goroutine of the call: a test plays logic's side effects there.
	loginHook func(*protocol.LoginReq, *logicrpc.ConnInfo)
}

var stubUsers = map[string]int64{"alice": 1, "bob": 2}

// stubToken logs alice in on her device "tablet" whatever device the
// request names; slowToken does too, once the test closes release (it
// signals entered first). expiredToken is refused TOKEN_INVALID, and
// signedOutToken too, marked as a token of a signed-out device.
const (
	stubToken      = "alice-tablet-token"
	slowToken      = "alice-slow-token"
	expiredToken   = "alice-expired-token"
	signedOutToken = "alice-signed-out-token"
	suspendedToken = "alice-suspended-token"
)

func newStubLogic() *stubLogic {
	return &stubLogic{seqs: map[string]int64{}, logins: map[string]*logicrpc.ConnInfo{},
		registers: map[string]*logicrpc.ConnInfo{},
		entered:   make(chan struct{}, 16), release: make(chan struct{})}
}

// awaitEntered waits until a slow call (a "slow" Send, a slowToken login)
// reached the stub, failing t after 5 s with what did not.
func (s *stubLogic) awaitEntered(t *testing.T, what string) {
	t.Helper()
	select {
	case <-s.entered:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s did not reach logic", what)
	}
}

func (s *stubLogic) Register(_ context.Context, req *protocol.RegisterReq,
	info *logicrpc.ConnInfo) (*protocol.RegisterResp, error) {
	s.mu.Lock()
	s.registers[req.Username] = info
	s.mu.Unlock()
	if _, ok := stubUsers[req.Username]; ok {
		return nil, &common.BizError{Code: common.ErrorCode_USERNAME_TAKEN, Message: "taken"}
	}
	return &protocol.RegisterResp{UserId: 100}, nil
}

func (s *stubLogic) Login(_ context.Context, req *protocol.LoginReq,
	info *logicrpc.ConnInfo) (*protocol.LoginResp, error) {
	s.mu.Lock()
	hook := s.loginHook
	s.mu.Unlock()
	if hook != nil {
		hook(req, info)
	}
	if req.Token == slowToken {
		s.entered <- struct{}{}
		<-s.release
		req = &protocol.LoginReq{Token: stubToken}
	}
	switch req.Token {
	case expiredToken:
		return nil, &common.BizError{Code: common.ErrorCode_TOKEN_INVALID,
			Message: "invalid token: expired"}
	case signedOutToken:
		return nil, &common.BizError{Code: common.ErrorCode_TOKEN_INVALID,
			Message: "invalid token: signed out", SignedOut: new(true)}
	case suspendedToken:
		return nil, &common.BizError{Code: common.ErrorCode_ACCOUNT_SUSPENDED,
			Message: "account suspended"}
	}
	if req.Token == stubToken {
		s.mu.Lock()
		s.logins["alice"] = info
		s.mu.Unlock()
		return &protocol.LoginResp{UserId: 1, Token: "tok", Username: "alice",
			DeviceId: "tablet"}, nil
	}
	id, ok := stubUsers[req.Username]
	if !ok || req.Password != "pw" {
		return nil, &common.BizError{
			Code: common.ErrorCode_INVALID_CREDENTIALS, Message: "bad credentials",
		}
	}
	s.mu.Lock()
	s.logins[req.Username] = info
	tok := "tok"
	if s.tokenGen != 0 {
		tok = accessToken(s.tokenGen)
	}
	s.mu.Unlock()
	return &protocol.LoginResp{UserId: id, Token: tok, Username: req.Username}, nil
}

func (s *stubLogic) Disconnect(_ context.Context, sess *logicrpc.Session) error {
	time.Sleep(s.disconnectDelay)
	s.mu.Lock()
	s.disconnects = append(s.disconnects, sess)
	s.mu.Unlock()
	return nil
}

// DisconnectBatch records its size and its sessions as Disconnect does,
// taking disconnectDelay once for the call.
func (s *stubLogic) DisconnectBatch(_ context.Context, sessions []*logicrpc.Session) (int32, error) {
	time.Sleep(s.disconnectDelay)
	s.mu.Lock()
	s.disconnectCalls = append(s.disconnectCalls, len(sessions))
	s.disconnects = append(s.disconnects, sessions...)
	s.mu.Unlock()
	return 0, nil
}

func (s *stubLogic) Renew(_ context.Context, sessions []*logicrpc.Session) error {
	s.mu.Lock()
	s.renewals = append(s.renewals, sessions...)
	s.mu.Unlock()
	return nil
}

// Send answers by content: "forbidden" is a BizError, "crash" a plain error,
// anything else is stored with the next seq of its conversation.
func (s *stubLogic) Send(_ context.Context, sess *logicrpc.Session,
	req *protocol.SendReq) (*protocol.SendResp, error) {
	switch string(req.Content) {
	case "forbidden":
		return nil, &common.BizError{Code: common.ErrorCode_FORBIDDEN, Message: "not a member"}
	case "signed-out":
		return nil, errStubSignedOut
	case "crash":
		return nil, errors.New("db: connection refused at 10.0.0.7")
	case "slow":
		s.entered <- struct{}{}
		<-s.release
	}
	conv := fmt.Sprintf("p2p:%d:%d", min(sess.UserId, req.ToUserId), max(sess.UserId, req.ToUserId))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sendUsers = append(s.sendUsers, sess.UserId)
	s.seqs[conv]++
	return &protocol.SendResp{MsgId: s.seqs[conv] + 1000, ConvId: conv, Seq: s.seqs[conv]}, nil
}

// SendRuns records the size of each run and answers each request as Send
// does. A request "crash" fails the whole call with a plain error, as a
// logic that is down would, and "refuse" with a BizError, as a logic
// refusing the call.
func (s *stubLogic) SendRuns(ctx context.Context,
	runs []*logicrpc.SendRun) ([][]*logicrpc.SendOutcome, error) {
	sizes := make([]int, len(runs))
	for i, run := range runs {
		sizes[i] = len(run.Reqs)
	}
	s.mu.Lock()
	s.runCalls = append(s.runCalls, sizes)
	s.mu.Unlock()
	for _, run := range runs {
		for _, req := range run.Reqs {
			switch string(req.Content) {
			case "crash":
				return nil, errors.New("db: connection refused at 10.0.0.7")
			case "refuse":
				return nil, &common.BizError{Code: common.ErrorCode_BUSY, Message: "shedding"}
			}
		}
	}
	out := make([][]*logicrpc.SendOutcome, len(runs))
	for i, run := range runs {
		out[i] = make([]*logicrpc.SendOutcome, len(run.Reqs))
		for j, req := range run.Reqs {
			resp, err := s.Send(ctx, run.Session, req)
			var biz *common.BizError
			if errors.As(err, &biz) {
				out[i][j] = &logicrpc.SendOutcome{Err: biz}
				continue
			}
			out[i][j] = &logicrpc.SendOutcome{Resp: resp}
		}
	}
	return out, nil
}

// LoginBatch records its size and answers each attempt as Login does.
func (s *stubLogic) LoginBatch(ctx context.Context,
	attempts []*logicrpc.LoginAttempt) ([]*logicrpc.LoginOutcome, error) {
	s.mu.Lock()
	s.loginCalls = append(s.loginCalls, len(attempts))
	s.mu.Unlock()
	out := make([]*logicrpc.LoginOutcome, len(attempts))
	var wg sync.WaitGroup
	for i, a := range attempts {
		wg.Go(func() {
			resp, err := s.Login(ctx, a.Req, a.Conn)
			if biz, ok := errors.AsType[*common.BizError](err); ok {
				out[i] = &logicrpc.LoginOutcome{Err: biz}
				return
			}
			out[i] = &logicrpc.LoginOutcome{Resp: resp}
		})
	}
	wg.Wait()
	return out, nil
}

// onLogin sets the hook every later Login runs first.
func (s *stubLogic) onLogin(hook func(*protocol.LoginReq, *logicrpc.ConnInfo)) {
	s.mu.Lock()
	s.loginHook = hook
	s.mu.Unlock()
}

// disconnectBatches returns the sessions of each DisconnectBatch call so
// far.
func (s *stubLogic) disconnectBatches() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.disconnectCalls)
}

// loginBatches returns the attempts of each LoginBatch call so far.
func (s *stubLogic) loginBatches() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.loginCalls)
}

// sendCalls returns the SENDs of each SendRuns call so far.
func (s *stubLogic) sendCalls() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	sends := make([]int, len(s.runCalls))
	for i, sizes := range s.runCalls {
		for _, n := range sizes {
			sends[i] += n
		}
	}
	return sends
}

// sendRunCalls returns the runs' sizes of each SendRuns call so far.
func (s *stubLogic) sendRunCalls() [][]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.runCalls)
}

// errStubSignedOut is what logic answers a signed-out device's connection.
var errStubSignedOut = &common.BizError{Code: common.ErrorCode_TOKEN_INVALID,
	Message: "invalid token: device signed out"}

// Sync answers an empty page, or TOKEN_INVALID for the conversation
// "signed-out", as logic answers a signed-out device's connection.
func (s *stubLogic) Sync(_ context.Context, _ *logicrpc.Session,
	req *protocol.SyncReq) (*protocol.SyncResp, error) {
	if req.ConvId == "signed-out" {
		return nil, errStubSignedOut
	}
	return &protocol.SyncResp{}, nil
}

func (s *stubLogic) GetUser(_ context.Context, sess *logicrpc.Session,
	_ *protocol.GetUserReq) (*protocol.GetUserResp, error) {
	return &protocol.GetUserResp{UserId: sess.UserId}, nil
}

// Delivered, SyncConvs and MarkRead echo something of their request, so a
// test can tell the gateway forwarded it with the session.
func (s *stubLogic) Delivered(_ context.Context, _ *logicrpc.Session,
	req *protocol.DeliveredReq) (*protocol.DeliveredResp, error) {
	err := s.positionErr()
	s.awaitPositionGate()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.positions = append(s.positions, req.Positions...)
	return &protocol.DeliveredResp{}, nil
}

func (s *stubLogic) SyncConvs(_ context.Context, sess *logicrpc.Session,
	req *protocol.SyncConvsReq) (*protocol.SyncConvsResp, error) {
	return &protocol.SyncConvsResp{Cursor: fmt.Sprintf("%s/%d", req.Cursor, sess.UserId)}, nil
}

func (s *stubLogic) MarkRead(_ context.Context, sess *logicrpc.Session,
	req *protocol.MarkReadReq) (*protocol.MarkReadResp, error) {
	err := s.positionErr()
	s.awaitPositionGate()
	if err != nil {
		return nil, err
	}
	if s.holdRead != 0 && req.Seq == s.holdRead {
		s.entered <- struct{}{}
		<-s.release
	}
	s.mu.Lock()
	s.reads = append(s.reads, req)
	s.mu.Unlock()
	return &protocol.MarkReadResp{ReadSeq: req.Seq + sess.UserId*1000}, nil
}

// awaitPositionGate waits until positionGate is closed, if set.
func (s *stubLogic) awaitPositionGate() {
	if s.positionGate != nil {
		<-s.positionGate
	}
}

// positionErr counts a Delivered or MarkRead call and returns the error it
// is to fail with, nil if none.
func (s *stubLogic) positionErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.positionCalls++
	if len(s.positionErrs) == 0 {
		return nil
	}
	err := s.positionErrs[0]
	s.positionErrs = s.positionErrs[1:]
	return err
}

// positionCallCount returns the Delivered and MarkRead calls that have
// reached the stub, held ones included.
func (s *stubLogic) positionCallCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.positionCalls
}

// reported returns the positions given to Delivered and the MarkRead
// requests, in order.
func (s *stubLogic) reported() ([]*protocol.ConvPos, []*protocol.MarkReadReq) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.positions), slices.Clone(s.reads)
}

func (s *stubLogic) connOf(username string) *logicrpc.ConnInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logins[username]
}

func (s *stubLogic) registeredFrom(username string) *logicrpc.ConnInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.registers[username]
}

func (s *stubLogic) disconnected() []*logicrpc.Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*logicrpc.Session(nil), s.disconnects...)
}

func (s *stubLogic) renewed() []*logicrpc.Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*logicrpc.Session(nil), s.renewals...)
}

// harness is a running gateway with its stub logic.
type harness struct {
	gw       *Gateway
	logic    *stubLogic
	pushAddr string
	cancel   context.CancelFunc
	done     chan error
}

// startGateway starts a stub logic server and a gateway on 127.0.0.1:0.
// The gateway is stopped at cleanup unless the test stopped it.
func startGateway(t testing.TB, cfg Config) *harness {
	t.Helper()
	return startGatewayWith(t, cfg, func(*stubLogic) {})
}

// startGatewayWith is startGateway with the stub logic set up by setup
// before anything calls it.
func startGatewayWith(t testing.TB, cfg Config, setup func(*stubLogic)) *harness {
	t.Helper()
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	return startGatewayLog(t, cfg, setup, log)
}

// startGatewayLog is startGatewayWith logging to log.
func startGatewayLog(t testing.TB, cfg Config, setup func(*stubLogic),
	log zerolog.Logger) *harness {
	t.Helper()
	stub := newStubLogic()
	setup(stub)
	cli := startStubLogic(t, stub)
	pushLn := listen(t)
	cfg.Addr = "127.0.0.1:0"
	if cfg.NumEventLoop == 0 {
		cfg.NumEventLoop = 2
	}
	gw, err := New(cfg, Deps{Log: log, Logic: cli, PushListener: pushLn})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{gw: gw, logic: stub, pushAddr: pushLn.Addr().String(), cancel: cancel,
		done: make(chan error, 1)}
	go func() { h.done <- gw.Run(ctx) }()
	select {
	case <-gw.Ready():
	case err := <-h.done:
		t.Fatalf("Run ended before ready: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("gateway not ready after 5s")
	}
	t.Cleanup(func() { h.stop(t) })
	return h
}

// startStubLogic serves stub as logic on 127.0.0.1:0 until the test ends
// and returns a client of it.
func startStubLogic(t testing.TB, stub *stubLogic) logic.Client {
	t.Helper()
	logicLn := listen(t)
	// gonet, as the push server: netpoll's server in Kitex v0.16.3 races
	// when stopped just after Run, as a short test does.
	logicSrv := server.NewServer(server.WithListener(logicLn), server.WithExitWaitTime(time.Millisecond),
		server.WithTransServerFactory(gonet.NewTransServerFactory()),
		server.WithTransHandlerFactory(gonet.NewSvrTransHandlerFactory()))
	info := logic.NewServiceInfo()
	for method, without := range map[string]bool{"SendRuns": stub.withoutSendRuns,
		"LoginBatch": stub.withoutLoginBatch, "DisconnectBatch": stub.withoutDisconnectBatch} {
		if without {
			old := *info
			old.Methods = maps.Clone(info.Methods)
			delete(old.Methods, method)
			info = &old
		}
	}
	if err := logicSrv.RegisterService(info, stub); err != nil {
		t.Fatalf("register stub logic: %v", err)
	}
	go func() { _ = logicSrv.Run() }()
	t.Cleanup(func() { _ = logicSrv.Stop() })

	cli, err := logic.NewClient("logic", client.WithHostPorts(logicLn.Addr().String()))
	if err != nil {
		t.Fatalf("logic client: %v", err)
	}
	return cli
}

// stop cancels Run and waits for it; it may be called more than once.
func (h *harness) stop(t testing.TB) error {
	t.Helper()
	h.cancel()
	select {
	case err, ok := <-h.done:
		if ok {
			close(h.done)
		}
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancel")
		return nil
	}
}

func (h *harness) pushClient(t testing.TB, opts ...client.Option) push.Client {
	t.Helper()
	opts = append([]client.Option{client.WithHostPorts(h.pushAddr)}, opts...)
	cli, err := push.NewClient("push", opts...)
	if err != nil {
		t.Fatalf("push client: %v", err)
	}
	return cli
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	return ln
}

// testClient is a raw test client speaking frames over TCP.
type testClient struct {
	t    testing.TB
	conn net.Conn
}

func (h *harness) dial(t testing.TB) *testClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", h.gw.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &testClient{t: t, conn: conn}
}

func (c *testClient) writeRaw(b []byte) {
	c.t.Helper()
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *testClient) send(op protocol.Op, id uint32, body codec.Body) {
	c.t.Helper()
	c.writeRaw(codec.EncodeFrame(op, 0, id, body))
}

// frame is one frame read by a test client.
type frame struct {
	codec.Header
	body []byte
}

// read returns the next frame, failing the test after 5s.
func (c *testClient) read() frame {
	c.t.Helper()
	f, err := c.tryRead(5 * time.Second)
	if err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	return f
}

func (c *testClient) tryRead(timeout time.Duration) (frame, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	hdr := make([]byte, codec.HeaderSize)
	if _, err := io.ReadFull(c.conn, hdr); err != nil {
		return frame{}, err
	}
	h, err := codec.Decoder{MaxBody: 1 << 24}.DecodeHeader(hdr)
	if err != nil {
		return frame{}, err
	}
	body := make([]byte, h.BodyLen)
	if _, err := io.ReadFull(c.conn, body); err != nil {
		return frame{}, err
	}
	return frame{Header: h, body: body}, nil
}

// expectReply reads a frame and checks its opcode and request id, and that
// it is no error reply unless v is an ErrorResp.
func (c *testClient) expectReply(op protocol.Op, id uint32, v codec.Readable) frame {
	c.t.Helper()
	f := c.read()
	if f.Op != op || f.RequestID != id {
		c.t.Fatalf("got op %v id %d flags %d, want op %v id %d", f.Op, f.RequestID, f.Flags, op, id)
	}
	if _, wantErr := v.(*protocol.ErrorResp); f.Flags&codec.FlagError != 0 && !wantErr {
		var e protocol.ErrorResp
		_ = codec.ReadBody(f.body, &e)
		c.t.Fatalf("%v %d answered error %v (%q)", op, id, e.Code, e.Message)
	}
	if err := codec.ReadBody(f.body, v); err != nil {
		c.t.Fatalf("decode %v: %v", op, err)
	}
	return f
}

// expectError reads an error reply and checks its code.
func (c *testClient) expectError(op protocol.Op, id uint32,
	code common.ErrorCode) *protocol.ErrorResp {
	c.t.Helper()
	var e protocol.ErrorResp
	f := c.expectReply(op, id, &e)
	if f.Flags&codec.FlagError == 0 || e.Code != code {
		c.t.Fatalf("got flags %d code %v (%q), want error %v", f.Flags, e.Code, e.Message, code)
	}
	return &e
}

// expectClose reads a CLOSE frame with reason, then EOF.
func (c *testClient) expectClose(reason protocol.CloseReason) *protocol.CloseMsg {
	c.t.Helper()
	var msg protocol.CloseMsg
	c.expectReply(protocol.Op_CLOSE, 0, &msg)
	if msg.Reason != reason {
		c.t.Fatalf("close reason %v (%q), want %v", msg.Reason, msg.Message, reason)
	}
	c.expectEOF()
	return &msg
}

func (c *testClient) expectEOF() {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.conn.Read(make([]byte, 1))
	if n != 0 || !isEOF(err) {
		c.t.Fatalf("want EOF, got %d bytes, err %v", n, err)
	}
}

// login logs in as user and returns the reply.
func (c *testClient) login(user string, id uint32) *protocol.LoginResp {
	c.t.Helper()
	req := &protocol.LoginReq{Username: user, Password: "pw", DeviceId: "phone"}
	c.send(protocol.Op_LOGIN, id, req)
	var resp protocol.LoginResp
	c.expectReply(protocol.Op_LOGIN_ACK, id, &resp)
	return &resp
}

func isEOF(err error) bool { return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) }

// idleLogicClient is a logic client for tests that only construct a
// gateway: it points at a closed port and is never called. Starting a whole
// gateway just for a client would stop a Kitex server right after starting
// it, which races inside Kitex v0.16.3.
func idleLogicClient(t *testing.T) logic.Client {
	t.Helper()
	ln := listen(t)
	addr := ln.Addr().String()
	ln.Close()
	cli, err := logic.NewClient("logic", client.WithHostPorts(addr))
	if err != nil {
		t.Fatal(err)
	}
	return cli
}
