package client_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/client/clienttest"
	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/internal/testwait"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

func startServer(t *testing.T, opts clienttest.Options) *clienttest.Server {
	t.Helper()
	s, err := clienttest.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func dial(t *testing.T, addr string, opts client.Options) *client.Client {
	t.Helper()
	c, err := client.Dial(context.Background(), addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// passwordOf is the password the tests register username with: one the
// server's policy takes, whatever the username's length.
func passwordOf(username string) string { return "secret-of-" + username }

// loginNew registers username on a fresh connection and logs it in.
func loginNew(t *testing.T, s *clienttest.Server, username string,
	opts client.Options) (*client.Client, int64) {
	t.Helper()
	c := dial(t, s.Addr(), opts)
	ctx := context.Background()
	if _, err := c.Register(ctx, username, passwordOf(username)); err != nil {
		t.Fatal(err)
	}
	resp, err := c.Login(ctx, client.LoginParams{
		Username: username, Password: passwordOf(username), DeviceID: "dev-" + username,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, resp.UserId
}

// waitFor polls cond until it holds or a few seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.For(t, 5*time.Second, what, cond)
}

func receive(t *testing.T, c *client.Client) *common.Message {
	t.Helper()
	select {
	case m, ok := <-c.Messages():
		if !ok {
			t.Fatalf("messages closed: %v", c.Err())
		}
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no push within 5s")
	}
	return nil
}

func TestClient_SendPushSync(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	alice, aliceID := loginNew(t, s, "alice", client.Options{})
	bob, bobID := loginNew(t, s, "bob", client.Options{})
	ctx := context.Background()

	ack, err := alice.Send(ctx, client.SendParams{ToUserID: bobID, Text: "hi bob"})
	if err != nil {
		t.Fatal(err)
	}
	wantConv := client.P2PConvID(aliceID, bobID)
	if ack.Seq != 1 || ack.ConvId != wantConv || ack.Duplicate {
		t.Fatalf("ack = %+v, want seq 1 conv %s", ack, wantConv)
	}

	m := receive(t, bob)
	if string(m.Content) != "hi bob" || m.SenderId != aliceID || m.MsgId != ack.MsgId ||
		m.ContentType != common.ContentType_TEXT || m.ClientMsgId == "" {
		t.Fatalf("push = %+v", m)
	}

	got, err := bob.Sync(ctx, wantConv, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Messages) != 1 || got.Messages[0].MsgId != ack.MsgId || got.HasMore {
		t.Fatalf("sync = %+v", got)
	}

	u, err := alice.GetUser(ctx, "bob")
	if err != nil || u.UserId != bobID {
		t.Fatalf("GetUser(bob) = %+v, %v", u, err)
	}
	u, err = alice.GetUserByID(ctx, bobID)
	if err != nil || u.Username != "bob" {
		t.Fatalf("GetUserByID = %+v, %v", u, err)
	}
}

func TestClient_ServerErrors(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	alice, _ := loginNew(t, s, "alice", client.Options{})
	fresh := dial(t, s.Addr(), client.Options{})
	ctx := context.Background()

	tests := []struct {
		name string
		call func() error
		want common.ErrorCode
	}{
		{"wrong password", func() error {
			_, err := fresh.Login(ctx, client.LoginParams{Username: "alice", Password: "x"})
			return err
		}, common.ErrorCode_INVALID_CREDENTIALS},
		{"send before login", func() error {
			_, err := fresh.Send(ctx, client.SendParams{ToUserID: 1, Text: "x"})
			return err
		}, common.ErrorCode_UNAUTHENTICATED},
		{"username taken", func() error {
			_, err := fresh.Register(ctx, "alice", passwordOf("alice"))
			return err
		}, common.ErrorCode_USERNAME_TAKEN},
		{"unknown user", func() error {
			_, err := alice.GetUser(ctx, "nobody")
			return err
		}, common.ErrorCode_NOT_FOUND},
		{"second login", func() error {
			_, err := alice.Login(ctx, client.LoginParams{Username: "alice", Password: passwordOf("alice")})
			return err
		}, common.ErrorCode_ALREADY_LOGGED_IN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var se *client.Error
			if !errors.As(err, &se) || se.Code != tt.want {
				t.Fatalf("err = %v, want code %s", err, tt.want)
			}
			if client.CodeOf(err) != tt.want || se.IsRetryable() {
				t.Fatalf("CodeOf = %s, retryable = %v", client.CodeOf(err), se.IsRetryable())
			}
		})
	}
}

func TestClient_SendRetriesRetryableWithSameID(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	alice, aliceID := loginNew(t, s, "alice", client.Options{})
	_, bobID := loginNew(t, s, "bob", client.Options{})
	ctx := context.Background()

	s.FailSends(2)
	ack, err := alice.Send(ctx, client.SendParams{ToUserID: bobID, Text: "x", ClientMsgID: "m1"})
	if err != nil {
		t.Fatal(err)
	}
	if n := s.SendCount(); n != 3 {
		t.Fatalf("server saw %d sends, want 3", n)
	}

	// A resend by the application with the same id is acked as a duplicate.
	again, err := alice.Send(ctx, client.SendParams{ToUserID: bobID, Text: "x", ClientMsgID: "m1"})
	if err != nil || !again.Duplicate || again.MsgId != ack.MsgId {
		t.Fatalf("resend = %+v, %v; want duplicate of %d", again, err, ack.MsgId)
	}
	got, err := alice.Sync(ctx, client.P2PConvID(aliceID, bobID), 0, 10)
	if err != nil || len(got.Messages) != 1 {
		t.Fatalf("sync = %+v, %v; want one stored message", got, err)
	}
}

func TestClient_SendDoesNotRetryClientErrors(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	alice, _ := loginNew(t, s, "alice", client.Options{})

	_, err := alice.Send(context.Background(), client.SendParams{ToUserID: 999, Text: "x"})
	if client.CodeOf(err) != common.ErrorCode_NOT_FOUND {
		t.Fatalf("err = %v, want NOT_FOUND", err)
	}
	if n := s.SendCount(); n != 1 {
		t.Fatalf("server saw %d sends, want 1", n)
	}
}

func TestClient_SendRejectsTextAndContent(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	alice, _ := loginNew(t, s, "alice", client.Options{})
	_, err := alice.Send(context.Background(),
		client.SendParams{ToUserID: 1, Text: "x", Content: []byte("y")})
	if !errors.Is(err, client.ErrBadParams) {
		t.Fatalf("err = %v, want ErrBadParams", err)
	}
}

func TestClient_BackpressureKeepsEveryPush(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	alice, _ := loginNew(t, s, "alice", client.Options{})
	bob, bobID := loginNew(t, s, "bob", client.Options{PushBuffer: 1})
	ctx := context.Background()

	const n = 20
	for i := range n {
		if _, err := alice.Send(ctx, client.SendParams{ToUserID: bobID, Text: "x"}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	for want := int64(1); want <= n; want++ {
		if m := receive(t, bob); m.Seq != want {
			t.Fatalf("push seq %d, want %d", m.Seq, want)
		}
	}
}

func TestClient_CloseFrameEndsConnection(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	bob, _ := loginNew(t, s, "bob", client.Options{})

	s.CloseUser("bob", protocol.CloseReason_KICKED, -time.Millisecond)
	select {
	case <-bob.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("connection did not end")
	}
	var ce *client.CloseError
	if !errors.As(bob.Err(), &ce) || ce.Reason != protocol.CloseReason_KICKED ||
		ce.ShouldReconnect() || ce.Message == "" {
		t.Fatalf("Err() = %#v, want KICKED without reconnect", bob.Err())
	}
	if _, ok := <-bob.Messages(); ok {
		t.Fatal("Messages not closed after the connection ended")
	}
	if _, err := bob.GetUser(context.Background(), "bob"); !errors.As(err, &ce) {
		t.Fatalf("request after close: %v, want the CloseError", err)
	}
}

func TestClient_CloseIsIdempotent(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	c := dial(t, s.Addr(), client.Options{})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(c.Err(), client.ErrClosed) {
		t.Fatalf("Err() = %v, want ErrClosed", c.Err())
	}
	if _, err := c.Register(context.Background(), "a", "b"); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Register after Close: %v, want ErrClosed", err)
	}
}

func TestClient_Heartbeats(t *testing.T) {
	s := startServer(t, clienttest.Options{HeartbeatInterval: 10 * time.Millisecond})
	c, _ := loginNew(t, s, "alice", client.Options{})
	waitFor(t, "3 heartbeats", func() bool { return s.Heartbeats() >= 3 })
	if err := c.Err(); err != nil {
		t.Fatalf("connection ended: %v", err)
	}
}

// silentServer accepts one connection and reads SEND requests without
// answering; it records their client msg ids.
type silentServer struct {
	ln   net.Listener
	mu   sync.Mutex
	ids  []string
	conn net.Conn
}

func startSilent(t *testing.T) *silentServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &silentServer{ln: ln}
	done := make(chan struct{})
	t.Cleanup(func() {
		_ = ln.Close()
		s.mu.Lock()
		if s.conn != nil {
			_ = s.conn.Close()
		}
		s.mu.Unlock()
		<-done
	})
	go func() {
		defer close(done)
		s.serveOne()
	}()
	return s
}

func (s *silentServer) serveOne() {
	conn, err := s.ln.Accept()
	if err != nil {
		return
	}
	s.mu.Lock()
	s.conn = conn
	s.mu.Unlock()
	br := bufio.NewReader(conn)
	for {
		hdr, err := br.Peek(codec.HeaderSize)
		if err != nil {
			return
		}
		h, err := codec.Decoder{}.DecodeHeader(hdr)
		if err != nil {
			return
		}
		frame := make([]byte, codec.HeaderSize+int(h.BodyLen))
		if _, err := io.ReadFull(br, frame); err != nil {
			return
		}
		req := protocol.NewSendReq()
		if codec.ReadBody(frame[codec.HeaderSize:], req) == nil {
			s.mu.Lock()
			s.ids = append(s.ids, req.ClientMsgId)
			s.mu.Unlock()
		}
	}
}

func (s *silentServer) sentIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ids...)
}

func TestClient_SendRetriesTimeoutWithSameID(t *testing.T) {
	s := startSilent(t)
	c := dial(t, s.ln.Addr().String(), client.Options{RequestTimeout: 20 * time.Millisecond})

	_, err := c.Send(context.Background(), client.SendParams{ToUserID: 2, Text: "x"})
	if !errors.Is(err, client.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	waitFor(t, "4 attempts", func() bool { return len(s.sentIDs()) == 4 })
	ids := s.sentIDs()
	for _, id := range ids {
		if id != ids[0] || id == "" {
			t.Fatalf("attempts used ids %q, want one non-empty id", ids)
		}
	}
}

func TestClient_PendingFailsWhenConnectionDies(t *testing.T) {
	s := startSilent(t)
	c := dial(t, s.ln.Addr().String(), client.Options{RequestTimeout: time.Minute})

	errc := make(chan error, 1)
	go func() {
		_, err := c.Sync(context.Background(), "p2p:1:2", 0, 10)
		errc <- err
	}()
	waitFor(t, "the server connection", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.conn != nil
	})
	s.mu.Lock()
	_ = s.conn.Close()
	s.mu.Unlock()

	select {
	case err := <-errc:
		if err == nil || errors.Is(err, client.ErrTimeout) ||
			!strings.Contains(err.Error(), "sync") {
			t.Fatalf("err = %v, want the connection error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("pending request not failed")
	}
}

func TestClient_ContextCancelIsNotRetried(t *testing.T) {
	s := startSilent(t)
	c := dial(t, s.ln.Addr().String(), client.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()

	_, err := c.Send(ctx, client.SendParams{ToUserID: 2, Text: "x"})
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, client.ErrTimeout) {
		t.Fatalf("err = %v, want the caller's deadline", err)
	}
	if n := len(s.sentIDs()); n != 1 {
		t.Fatalf("%d attempts, want 1", n)
	}
}

func TestP2PConvID(t *testing.T) {
	tests := []struct {
		name string
		a, b int64
		want string
	}{
		{name: "ordered", a: 1, b: 2, want: "p2p:1:2"},
		{name: "reversed", a: 20, b: 3, want: "p2p:3:20"},
		{name: "self", a: 7, b: 7, want: "p2p:7:7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := client.P2PConvID(tt.a, tt.b); got != tt.want {
				t.Fatalf("P2PConvID(%d, %d) = %q, want %q", tt.a, tt.b, got, tt.want)
			}
		})
	}
}

func TestError_IsRetryable(t *testing.T) {
	tests := []struct {
		name string
		code common.ErrorCode
		want bool
	}{
		{name: "bad request", code: common.ErrorCode_BAD_REQUEST, want: false},
		{name: "rate limited", code: common.ErrorCode_RATE_LIMITED, want: false},
		{name: "internal", code: common.ErrorCode_INTERNAL, want: true},
		{name: "unavailable", code: common.ErrorCode_UNAVAILABLE, want: true},
		{name: "busy", code: common.ErrorCode_BUSY, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &client.Error{Code: tt.code}
			if got := e.IsRetryable(); got != tt.want {
				t.Fatalf("IsRetryable(%s) = %v, want %v", tt.code, got, tt.want)
			}
		})
	}
}

// A failed dial's error names the address as given, host and port, once:
// the dialer's own names the resolved IP, or only the host when the lookup
// fails. The name in .invalid never resolves (RFC 6761), and the resolver
// used here fails instead of asking a name server.
func TestDial_ErrorNamesTheAddressAsGiven(t *testing.T) {
	closed := clienttest.ClosedAddr(t)
	_, port, err := net.SplitHostPort(closed)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		addr string
	}{
		{name: "host that does not resolve", addr: "nowhere.invalid:7001"},
		{name: "host resolved, then refused", addr: "localhost:" + port},
		{name: "IP refused", addr: closed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := client.Dial(context.Background(), tc.addr,
				client.WithLocalOnlyResolver(client.Options{}))
			if err == nil {
				_ = c.Close()
				t.Skip("the address answered meanwhile")
			}
			if n := strings.Count(err.Error(), tc.addr); n != 1 {
				t.Fatalf("Dial(%s) = %q: names the address %d times, want 1", tc.addr, err, n)
			}
		})
	}
}

// A request made once the server has closed the connection with
// PROTOCOL_ERROR was never sent, so the close was for another frame (here
// an op the gateway does not know): the Session must not take it as the
// server lacking the request's op, nor count it against a Send
// (maxProtocolCloses).
func TestClient_RequestAfterAProtocolCloseIsNotBlamed(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	s.Unknown(protocol.Op_MARK_READ)
	c, _ := loginNew(t, s, "alice", client.Options{})
	ctx := context.Background()
	if _, err := c.MarkRead(ctx, "p2p:1:2", 1); !client.LacksOp(err) {
		t.Fatalf("MarkRead on a gateway without it = %v, not taken as lacking the op", err)
	}
	<-c.Done()

	err := c.Delivered(ctx, []*protocol.ConvPos{{ConvId: "p2p:1:2", Seq: 1}})
	if err == nil || client.LacksOp(err) {
		t.Fatalf("DELIVERED after the close = %v, taken as the server lacking DELIVERED", err)
	}
}
