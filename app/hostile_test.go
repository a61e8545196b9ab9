package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cloudwego/kitex/client"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/internal/ratelimit"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc/logic"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
	"github.com/resonance-im/resonance/kitex_gen/pushrpc"
	"github.com/resonance-im/resonance/kitex_gen/pushrpc/push"
)

// The hostile-user suite: clients that speak raw frames over real sockets to
// the whole system in-process and try to act as someone else, read what is
// not theirs, reuse revoked tokens and push malformed or oversized fields.
// Every attempt must get its error code, store nothing and leak nothing.

const (
	hostileSecret   = "hostile-internal-secret"
	hostilePassword = "correct horse"
	replyWait       = 10 * time.Second
)

// startHostile starts the system with an internal secret between gateway
// and logic, so that every test here also proves the gateway sends it.
func startHostile(t *testing.T, mutate func(*Config)) string {
	t.Helper()
	cfg := baseConfig(t, RoleAll)
	cfg.InternalSecret = hostileSecret
	if mutate != nil {
		mutate(&cfg)
	}
	return startSystem(t, cfg).GatewayAddr().String()
}

// rawConn is a client speaking frames with codec over one TCP connection.
type rawConn struct {
	t    *testing.T
	conn net.Conn
	buf  []byte
	next uint32
	// pushes holds PUSH frames read while waiting for a reply.
	pushes []*protocol.PushMsg
	closed *protocol.CloseMsg
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, conn: c}
}

// send writes one request frame and returns its request id.
func (rc *rawConn) send(op protocol.Op, body codec.Body) uint32 {
	rc.t.Helper()
	rc.next++
	if _, err := rc.conn.Write(codec.EncodeFrame(op, 0, rc.next, body)); err != nil {
		rc.t.Fatalf("write %v: %v", op, err)
	}
	return rc.next
}

// read returns the next frame; io.EOF once the server closed.
func (rc *rawConn) read() (codec.Header, []byte, error) {
	dec := codec.Decoder{}
	for {
		h, body, n, err := dec.Decode(rc.buf)
		if err != nil {
			return h, nil, err
		}
		if n > 0 {
			body = append([]byte(nil), body...)
			rc.buf = rc.buf[n:]
			return h, body, nil
		}
		chunk := make([]byte, 64<<10)
		_ = rc.conn.SetReadDeadline(time.Now().Add(replyWait))
		m, err := rc.conn.Read(chunk)
		if err != nil {
			return h, nil, err
		}
		rc.buf = append(rc.buf, chunk[:m]...)
	}
}

// call sends a request and waits for its reply, decoding it into resp. It
// returns the reply's error code (OK for a normal reply) and checks that an
// error's message carries nothing internal.
func (rc *rawConn) call(op protocol.Op, req codec.Body, resp codec.Readable) common.ErrorCode {
	rc.t.Helper()
	id := rc.send(op, req)
	for {
		h, body, err := rc.read()
		if err != nil {
			rc.t.Fatalf("%v: no reply: %v (close %+v)", op, err, rc.closed)
		}
		switch {
		case h.Op == protocol.Op_PUSH:
			rc.keepPush(body)
		case h.Op == protocol.Op_CLOSE:
			rc.keepClose(body)
		case h.RequestID == id && h.Flags&codec.FlagError != 0:
			return rc.errorCode(body)
		case h.RequestID == id:
			if err := codec.ReadBody(body, resp); err != nil {
				rc.t.Fatalf("%v reply: %v", op, err)
			}
			return common.ErrorCode_OK
		}
	}
}

func (rc *rawConn) keepPush(body []byte) {
	var p protocol.PushMsg
	if err := codec.ReadBody(body, &p); err != nil {
		rc.t.Fatalf("push: %v", err)
	}
	rc.pushes = append(rc.pushes, &p)
}

func (rc *rawConn) keepClose(body []byte) {
	var m protocol.CloseMsg
	if err := codec.ReadBody(body, &m); err != nil {
		rc.t.Fatalf("close: %v", err)
	}
	rc.closed = &m
}

func (rc *rawConn) errorCode(body []byte) common.ErrorCode {
	rc.t.Helper()
	var e protocol.ErrorResp
	if err := codec.ReadBody(body, &e); err != nil {
		rc.t.Fatalf("error reply: %v", err)
	}
	low := strings.ToLower(e.Message)
	for _, leak := range []string{"sql", "gorm", "select ", "insert ", "constraint",
		"syntax", "goroutine", "panic", ".go:"} {
		if strings.Contains(low, leak) {
			rc.t.Fatalf("error %s %q leaks %q", e.Code, e.Message, leak)
		}
	}
	return e.Code
}

// waitClose reads until the server's CLOSE frame and the end of the stream,
// and returns the close reason.
func (rc *rawConn) waitClose() protocol.CloseReason {
	rc.t.Helper()
	for {
		h, body, err := rc.read()
		// The server may reset a connection it closed while the client was
		// still writing; what counts is the CLOSE before it.
		if err != nil && rc.closed != nil {
			return rc.closed.Reason
		}
		if err != nil {
			rc.t.Fatalf("waiting for CLOSE: %v (close %+v)", err, rc.closed)
		}
		switch h.Op {
		case protocol.Op_CLOSE:
			rc.keepClose(body)
		case protocol.Op_PUSH:
			rc.keepPush(body)
		}
	}
}

// wantCall fails the test unless the call answers want.
func (rc *rawConn) wantCall(what string, op protocol.Op, req codec.Body,
	resp codec.Readable, want common.ErrorCode) {
	rc.t.Helper()
	if got := rc.call(op, req, resp); got != want {
		rc.t.Fatalf("%s: %s, want %s", what, got, want)
	}
}

// account is a registered user logged in on one raw connection.
type account struct {
	*rawConn
	id    int64
	name  string
	login *protocol.LoginResp
}

// register creates name (with a unique suffix) and logs it in on device.
func register(t *testing.T, addr, name, device string) *account {
	t.Helper()
	name = fmt.Sprintf("%s%d", name, time.Now().UnixNano()%1_000_000_000)
	rc := dialRaw(t, addr)
	var reg protocol.RegisterResp
	rc.wantCall("register "+name, protocol.Op_REGISTER,
		&protocol.RegisterReq{Username: name, Password: hostilePassword}, &reg,
		common.ErrorCode_OK)
	a := &account{rawConn: rc, id: reg.UserId, name: name}
	a.login = loginRaw(t, rc, &protocol.LoginReq{Username: name, Password: hostilePassword,
		DeviceId: device})
	return a
}

// loginRaw logs rc in with req and fails the test unless it succeeds.
func loginRaw(t *testing.T, rc *rawConn, req *protocol.LoginReq) *protocol.LoginResp {
	t.Helper()
	var resp protocol.LoginResp
	rc.wantCall("login", protocol.Op_LOGIN, req, &resp, common.ErrorCode_OK)
	return &resp
}

// tokenLoginCode logs in with token on a new connection and returns the code.
func tokenLoginCode(t *testing.T, addr, token, device string) common.ErrorCode {
	t.Helper()
	rc := dialRaw(t, addr)
	defer rc.conn.Close()
	return rc.call(protocol.Op_LOGIN, &protocol.LoginReq{Token: token, DeviceId: device},
		&protocol.LoginResp{})
}

func textSend(clientID string, to int64, conv, text string) *protocol.SendReq {
	return &protocol.SendReq{ClientMsgId: clientID, ToUserId: to, ConvId: conv,
		ContentType: common.ContentType_TEXT, Content: []byte(text)}
}

// convLen returns the last seq of conv as its member a sees it.
func (a *account) convLen(conv string) int64 {
	a.t.Helper()
	var resp protocol.SyncResp
	a.wantCall("sync "+conv, protocol.Op_SYNC, &protocol.SyncReq{ConvId: conv}, &resp,
		common.ErrorCode_OK)
	return resp.LastSeq
}

func p2p(a, b int64) string {
	return fmt.Sprintf("p2p:%d:%d", min(a, b), max(a, b))
}

func TestHostile_Impersonation(t *testing.T) {
	hostileImpersonation(t, startHostile(t, nil))
}

// TestHostile_External runs the attacks whose defence crosses roles (routes
// in Redis, kicks through JetStream and task) with each role alone against
// MariaDB, Redis and NATS.
func TestHostile_External(t *testing.T) {
	addr := externalSystem(t).String()
	t.Run("impersonation", func(t *testing.T) { hostileImpersonation(t, addr) })
	t.Run("device sign-out", func(t *testing.T) { hostileDeviceSignOut(t, addr) })
	t.Run("groups", func(t *testing.T) { hostileGroups(t, addr) })
}

func hostileImpersonation(t *testing.T, addr string) {
	alice := register(t, addr, "alice", "phone")
	bob := register(t, addr, "bob", "phone")
	eve := register(t, addr, "eve", "laptop")
	conv := p2p(alice.id, bob.id)
	var sent protocol.SendResp
	alice.wantCall("alice to bob", protocol.Op_SEND, textSend("a1", bob.id, "", "hi"), &sent,
		common.ErrorCode_OK)

	forbidden, bad := common.ErrorCode_FORBIDDEN, common.ErrorCode_BAD_REQUEST
	cases := []struct {
		name string
		op   protocol.Op
		req  codec.Body
		resp codec.Readable
		want common.ErrorCode
	}{
		{"send into their conversation", protocol.Op_SEND, textSend("e1", 0, conv, "x"),
			&protocol.SendResp{}, forbidden},
		{"send naming them both", protocol.Op_SEND, textSend("e2", bob.id, conv, "x"),
			&protocol.SendResp{}, forbidden},
		{"send as a conversation with oneself", protocol.Op_SEND,
			textSend("e3", eve.id, "", "x"), &protocol.SendResp{}, bad},
		{"read their conversation", protocol.Op_SYNC, &protocol.SyncReq{ConvId: conv},
			&protocol.SyncResp{}, forbidden},
		{"read their history backward", protocol.Op_SYNC,
			&protocol.SyncReq{ConvId: conv, BeforeSeq: 1 << 62}, &protocol.SyncResp{}, forbidden},
		{"mark their conversation read", protocol.Op_MARK_READ,
			&protocol.MarkReadReq{ConvId: conv, Seq: 1}, &protocol.MarkReadResp{}, forbidden},
		{"sign out their device", protocol.Op_SIGN_OUT_DEVICE,
			&protocol.SignOutDeviceReq{DeviceId: "phone"}, &protocol.SignOutDeviceResp{},
			common.ErrorCode_NOT_FOUND},
	}
	for _, tc := range cases {
		eve.wantCall(tc.name, tc.op, tc.req, tc.resp, tc.want)
	}
	// DELIVERED for a conversation one is not in is ignored, not stored.
	eve.wantCall("delivered in their conversation", protocol.Op_DELIVERED,
		&protocol.DeliveredReq{Positions: []*protocol.ConvPos{{ConvId: conv, Seq: 1}}},
		&protocol.DeliveredResp{}, common.ErrorCode_OK)
	var convs protocol.SyncConvsResp
	eve.wantCall("eve's conversations", protocol.Op_SYNC_CONVS, &protocol.SyncConvsReq{},
		&convs, common.ErrorCode_OK)
	if len(convs.Convs) != 0 {
		t.Fatalf("eve sees conversations %+v", convs.Convs)
	}
	if n := alice.convLen(conv); n != 1 {
		t.Fatalf("alice-bob conversation has %d messages, want 1", n)
	}

	// Alice's token names her device: it does not log in another one.
	if c := tokenLoginCode(t, addr, alice.login.Token, "laptop"); c !=
		common.ErrorCode_TOKEN_INVALID {
		t.Fatalf("alice's token on another device: %s", c)
	}
	var refreshed protocol.RefreshResp
	eve.wantCall("refresh with alice's token", protocol.Op_REFRESH,
		&protocol.RefreshReq{RefreshToken: alice.login.RefreshToken}, &refreshed,
		common.ErrorCode_TOKEN_INVALID)

	// A message eve sends to bob carries eve as its sender, whatever she says.
	eve.wantCall("eve to bob", protocol.Op_SEND, textSend("e4", bob.id, "", "it's alice"),
		&sent, common.ErrorCode_OK)
	var page protocol.SyncResp
	bob.wantCall("bob reads eve", protocol.Op_SYNC, &protocol.SyncReq{ConvId: sent.ConvId},
		&page, common.ErrorCode_OK)
	if len(page.Messages) != 1 || page.Messages[0].SenderId != eve.id {
		t.Fatalf("bob's page from eve = %+v", page.Messages)
	}
}

func TestHostile_InvalidAndOversizedFields(t *testing.T) {
	addr := startHostile(t, nil)
	alice := register(t, addr, "alice", "phone")
	bob := register(t, addr, "bob", "phone")
	bad, large := common.ErrorCode_BAD_REQUEST, common.ErrorCode_TOO_LARGE
	long := strings.Repeat("x", 65)
	nick := func(s string) *protocol.UpdateProfileReq {
		return &protocol.UpdateProfileReq{Nickname: &s}
	}
	cases := []struct {
		name string
		op   protocol.Op
		req  codec.Body
		resp codec.Readable
		want common.ErrorCode
	}{
		{"text not utf8", protocol.Op_SEND, textSend("c1", bob.id, "", "a\xffb"),
			&protocol.SendResp{}, bad},
		{"client id not utf8", protocol.Op_SEND, textSend("c\xff", bob.id, "", "x"),
			&protocol.SendResp{}, bad},
		{"client id too long", protocol.Op_SEND, textSend(long, bob.id, "", "x"),
			&protocol.SendResp{}, bad},
		{"content too large", protocol.Op_SEND,
			textSend("c2", bob.id, "", strings.Repeat("y", 16<<10+1)), &protocol.SendResp{}, large},
		{"empty content", protocol.Op_SEND, textSend("c3", bob.id, "", ""),
			&protocol.SendResp{}, bad},
		{"unknown content type", protocol.Op_SEND, &protocol.SendReq{ClientMsgId: "c4",
			ToUserId: bob.id, ContentType: 9, Content: []byte("x")}, &protocol.SendResp{}, bad},
		{"conv id not utf8", protocol.Op_SYNC, &protocol.SyncReq{ConvId: "p2p:\xff"},
			&protocol.SyncResp{}, bad},
		{"conv id too long", protocol.Op_SYNC, &protocol.SyncReq{ConvId: "p2p:" + long + long},
			&protocol.SyncResp{}, bad},
		{"username not utf8", protocol.Op_GET_USER, &protocol.GetUserReq{Username: "al\xff"},
			&protocol.GetUserResp{}, bad},
		{"nickname not utf8", protocol.Op_UPDATE_PROFILE, nick("a\xff"), &protocol.UserInfo{}, bad},
		{"nickname too long", protocol.Op_UPDATE_PROFILE, nick(strings.Repeat("é", 65)),
			&protocol.UserInfo{}, large},
		{"search not utf8", protocol.Op_SEARCH_USERS, &protocol.SearchUsersReq{Query: "al\xff"},
			&protocol.SearchUsersResp{}, bad},
		{"too many positions", protocol.Op_DELIVERED, &protocol.DeliveredReq{
			Positions: make([]*protocol.ConvPos, 501)}, &protocol.DeliveredResp{}, large},
	}
	for _, tc := range cases {
		alice.wantCall(tc.name, tc.op, tc.req, tc.resp, tc.want)
	}
	if n := alice.convLen(p2p(alice.id, bob.id)); n != 0 {
		t.Fatalf("%d messages stored from rejected sends", n)
	}

	// Before login: a device id that is not UTF-8 or too long, a username
	// that is not UTF-8.
	rc := dialRaw(t, addr)
	rc.wantCall("device not utf8", protocol.Op_LOGIN, &protocol.LoginReq{Username: alice.name,
		Password: hostilePassword, DeviceId: "ph\xffone"}, &protocol.LoginResp{}, bad)
	rc.wantCall("device too long", protocol.Op_LOGIN, &protocol.LoginReq{Username: alice.name,
		Password: hostilePassword, DeviceId: long}, &protocol.LoginResp{}, large)
	rc.wantCall("register not utf8", protocol.Op_REGISTER, &protocol.RegisterReq{
		Username: "b\xffb", Password: hostilePassword}, &protocol.RegisterResp{}, bad)

	// A frame over the body limit closes the connection at its header.
	big := dialRaw(t, addr)
	big.send(protocol.Op_SEND, textSend("c5", bob.id, "", strings.Repeat("z", 70<<10)))
	if r := big.waitClose(); r != protocol.CloseReason_FRAME_TOO_LARGE {
		t.Fatalf("oversized frame closed with %s", r)
	}
}

func TestHostile_SQLMetacharactersStoredVerbatim(t *testing.T) {
	addr := startHostile(t, nil)
	const meta = `'; DROP TABLE user; -- " \ % _ ` + "`" + ` OR 1=1 /*`
	bob := register(t, addr, "bob", "phone")

	// A password and a device id full of metacharacters work as given.
	name := fmt.Sprintf("mallory%d", time.Now().UnixNano()%1_000_000)
	rc := dialRaw(t, addr)
	var reg protocol.RegisterResp
	rc.wantCall("register", protocol.Op_REGISTER,
		&protocol.RegisterReq{Username: name, Password: meta}, &reg, common.ErrorCode_OK)
	rc.wantCall("login with a near password", protocol.Op_LOGIN, &protocol.LoginReq{
		Username: name, Password: meta[:len(meta)-1]}, &protocol.LoginResp{},
		common.ErrorCode_INVALID_CREDENTIALS)
	loginRaw(t, rc, &protocol.LoginReq{Username: name, Password: meta, DeviceId: meta[:40],
		Platform: meta})
	mallory := &account{rawConn: rc, id: reg.UserId, name: name}

	var sent protocol.SendResp
	mallory.wantCall("send", protocol.Op_SEND, textSend(meta[:30], bob.id, "", meta), &sent,
		common.ErrorCode_OK)
	var page protocol.SyncResp
	bob.wantCall("bob reads", protocol.Op_SYNC, &protocol.SyncReq{ConvId: sent.ConvId}, &page,
		common.ErrorCode_OK)
	if len(page.Messages) != 1 || string(page.Messages[0].Content) != meta ||
		page.Messages[0].ClientMsgId != meta[:30] || page.Messages[0].SenderDevice != meta[:40] {
		t.Fatalf("stored message = %+v", page.Messages)
	}

	nick := meta
	var info protocol.UserInfo
	mallory.wantCall("nickname", protocol.Op_UPDATE_PROFILE,
		&protocol.UpdateProfileReq{Nickname: &nick}, &info, common.ErrorCode_OK)
	var got protocol.GetUserResp
	bob.wantCall("bob looks mallory up", protocol.Op_GET_USER,
		&protocol.GetUserReq{UserId: mallory.id}, &got, common.ErrorCode_OK)
	if got.Nickname != meta {
		t.Fatalf("nickname stored as %q", got.Nickname)
	}
	var devices protocol.ListDevicesResp
	mallory.wantCall("devices", protocol.Op_LIST_DEVICES, &protocol.ListDevicesReq{}, &devices,
		common.ErrorCode_OK)
	if len(devices.Devices) != 1 || devices.Devices[0].DeviceId != meta[:40] ||
		devices.Devices[0].Platform != meta {
		t.Fatalf("devices = %+v", devices.Devices)
	}

	// Fields that must be names refuse metacharacters instead.
	bad := common.ErrorCode_BAD_REQUEST
	bob.wantCall("get user", protocol.Op_GET_USER, &protocol.GetUserReq{Username: meta},
		&protocol.GetUserResp{}, bad)
	bob.wantCall("search", protocol.Op_SEARCH_USERS, &protocol.SearchUsersReq{Query: meta},
		&protocol.SearchUsersResp{}, bad)
	bob.wantCall("register", protocol.Op_REGISTER, &protocol.RegisterReq{Username: meta,
		Password: hostilePassword}, &protocol.RegisterResp{}, bad)
	bob.wantCall("sync", protocol.Op_SYNC, &protocol.SyncReq{ConvId: meta},
		&protocol.SyncResp{}, bad)
}

func TestHostile_LoginBruteForce(t *testing.T) {
	addr := startHostile(t, func(c *Config) {
		c.Logic.LoginAccountLimit = ratelimit.Config{Burst: 5, Per: time.Hour}
	})
	alice := register(t, addr, "alice", "phone")
	limited := false
	// Each connection allows three failures before LOGIN_FAILED: attack
	// over many connections, as a real brute force would.
	for attempt := 0; attempt < 12 && !limited; attempt++ {
		rc := dialRaw(t, addr)
		code := rc.call(protocol.Op_LOGIN, &protocol.LoginReq{Username: alice.name,
			Password: fmt.Sprintf("guess-%04d", attempt)}, &protocol.LoginResp{})
		switch code {
		case common.ErrorCode_RATE_LIMITED:
			limited = true
		case common.ErrorCode_INVALID_CREDENTIALS:
		default:
			t.Fatalf("attempt %d: %s", attempt, code)
		}
		rc.conn.Close()
	}
	if !limited {
		t.Fatal("12 wrong passwords never hit RATE_LIMITED")
	}
	// Now even the right password waits: the attacker cannot tell it was.
	rc := dialRaw(t, addr)
	rc.wantCall("right password while limited", protocol.Op_LOGIN, &protocol.LoginReq{
		Username: alice.name, Password: hostilePassword}, &protocol.LoginResp{},
		common.ErrorCode_RATE_LIMITED)
	// An existing token still logs the real user in.
	if c := tokenLoginCode(t, addr, alice.login.Token, ""); c != common.ErrorCode_OK {
		t.Fatalf("token login while the password is limited: %s", c)
	}
}

// TestHostile_InternalPortNeedsSecret: logic's port takes no call without
// the internal secret, whether the operator gave one or, in one process
// without --internal-secret, the process made its own: another local user
// reaching a loopback port could otherwise have acted as any user.
func TestHostile_InternalPortNeedsSecret(t *testing.T) {
	t.Run("given", func(t *testing.T) {
		cfg := baseConfig(t, RoleAll)
		cfg.InternalSecret = hostileSecret
		internalPortRefuses(t, startSystem(t, cfg))
	})
	t.Run("generated", func(t *testing.T) {
		internalPortRefuses(t, startSystem(t, baseConfig(t, RoleAll)))
	})
}

func internalPortRefuses(t *testing.T, sys *System) {
	cli, err := logic.NewClient("logic", client.WithHostPorts(sys.LogicAddr().String()),
		client.WithRPCTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("intruder%d", time.Now().UnixNano()%1_000_000)
	_, err = cli.Register(context.Background(),
		&protocol.RegisterReq{Username: name, Password: hostilePassword},
		&logicrpc.ConnInfo{Gateway: "forged:1", ConnId: 1})
	var biz *common.BizError
	if err == nil || errors.As(err, &biz) {
		t.Fatalf("register on the internal port without the secret: %v", err)
	}
	// The name is still free: nothing was stored.
	rc := dialRaw(t, sys.GatewayAddr().String())
	rc.wantCall("register through the gateway", protocol.Op_REGISTER,
		&protocol.RegisterReq{Username: name, Password: hostilePassword},
		&protocol.RegisterResp{}, common.ErrorCode_OK)
}

// TestHostile_PushPortNeedsSecret checks that a caller without the internal
// secret can neither write to a client nor close it through the gateway's
// push port, while task, which sends it, still kicks.
func TestHostile_PushPortNeedsSecret(t *testing.T) {
	cfg := baseConfig(t, RoleAll)
	cfg.InternalSecret = hostileSecret
	sys := startSystem(t, cfg)
	alice := register(t, sys.GatewayAddr().String(), "alice", "phone")
	cli, err := push.NewClient("push", client.WithHostPorts(sys.gateway.PushAddr()),
		client.WithRPCTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	// The check runs before the handler, so the target need not exist: a
	// handler would answer it as missing, not fail.
	targets := []*pushrpc.Target{{ConnId: 1, UserId: alice.id}}
	_, err = cli.Push(context.Background(), &pushrpc.PushReq{Targets: targets,
		Frame: codec.EncodeFrame(protocol.Op_PUSH, 0, 0, &protocol.PushMsg{})})
	if err == nil {
		t.Fatal("push without the secret accepted")
	}
	_, err = cli.Kick(context.Background(), &pushrpc.KickReq{Targets: targets,
		Reason: protocol.CloseReason_KICKED})
	if err == nil {
		t.Fatal("kick without the secret accepted")
	}
	// Task sends the secret: a second login of the device kicks the first.
	again := dialRaw(t, sys.GatewayAddr().String())
	loginRaw(t, again, &protocol.LoginReq{Username: alice.name, Password: hostilePassword,
		DeviceId: "phone"})
	if r := alice.waitClose(); r != protocol.CloseReason_KICKED {
		t.Fatalf("replaced phone connection closed with %s", r)
	}
}

// TestHostile_TokenLoginWithoutDeviceLogsOutTokensDevice checks that a
// token login naming no device acts as the token's device: its LOGOUT
// revokes that device's tokens, not those of a device named "default".
func TestHostile_TokenLoginWithoutDeviceLogsOutTokensDevice(t *testing.T) {
	addr := startHostile(t, nil)
	alice := register(t, addr, "alice", "phone")
	rc := dialRaw(t, addr)
	resp := loginRaw(t, rc, &protocol.LoginReq{Token: alice.login.Token})
	if resp.DeviceId != "phone" {
		t.Fatalf("token login device_id = %q, want phone", resp.DeviceId)
	}
	rc.wantCall("logout", protocol.Op_LOGOUT, &protocol.LogoutReq{}, &protocol.LogoutResp{},
		common.ErrorCode_OK)
	if r := rc.waitClose(); r != protocol.CloseReason_SIGNED_OUT {
		t.Fatalf("closed after logout with %s", r)
	}
	// The token login replaced the phone's password login; the logout may
	// find it still open.
	if r := alice.waitClose(); r != protocol.CloseReason_KICKED &&
		r != protocol.CloseReason_SIGNED_OUT {
		t.Fatalf("first phone connection closed with %s", r)
	}
	for what, tok := range map[string]string{"access": alice.login.Token,
		"refresh": alice.login.RefreshToken} {
		if c := tokenLoginCode(t, addr, tok, ""); c != common.ErrorCode_TOKEN_INVALID {
			t.Fatalf("phone %s token after the token session's logout: %s", what, c)
		}
	}
}

func TestHostile_TokenReuseAfterLogout(t *testing.T) {
	addr := startHostile(t, nil)
	alice := register(t, addr, "alice", "phone")
	alice.wantCall("logout", protocol.Op_LOGOUT, &protocol.LogoutReq{}, &protocol.LogoutResp{},
		common.ErrorCode_OK)
	if r := alice.waitClose(); r != protocol.CloseReason_SIGNED_OUT {
		t.Fatalf("closed after logout with %s", r)
	}
	for what, tok := range map[string]string{"access": alice.login.Token,
		"refresh": alice.login.RefreshToken} {
		if c := tokenLoginCode(t, addr, tok, ""); c != common.ErrorCode_TOKEN_INVALID {
			t.Fatalf("%s token after logout: %s", what, c)
		}
	}
}

func TestHostile_TokenReuseAfterDeviceSignOut(t *testing.T) {
	hostileDeviceSignOut(t, startHostile(t, nil))
}

func hostileDeviceSignOut(t *testing.T, addr string) {
	phone := register(t, addr, "alice", "phone")
	laptop := dialRaw(t, addr)
	lap := loginRaw(t, laptop, &protocol.LoginReq{Username: phone.name,
		Password: hostilePassword, DeviceId: "laptop"})
	phone.wantCall("sign out the laptop", protocol.Op_SIGN_OUT_DEVICE,
		&protocol.SignOutDeviceReq{DeviceId: "laptop"}, &protocol.SignOutDeviceResp{},
		common.ErrorCode_OK)
	if r := laptop.waitClose(); r != protocol.CloseReason_SIGNED_OUT {
		t.Fatalf("laptop closed with %s", r)
	}
	for what, tok := range map[string]string{"access": lap.Token, "refresh": lap.RefreshToken} {
		if c := tokenLoginCode(t, addr, tok, "laptop"); c != common.ErrorCode_TOKEN_INVALID {
			t.Fatalf("laptop %s token after sign-out: %s", what, c)
		}
	}
	var devices protocol.ListDevicesResp
	phone.wantCall("devices", protocol.Op_LIST_DEVICES, &protocol.ListDevicesReq{}, &devices,
		common.ErrorCode_OK)
	for _, d := range devices.Devices {
		if d.DeviceId == "laptop" && d.Online || d.DeviceId == "phone" && !d.Current {
			t.Fatalf("devices after sign-out = %+v", devices.Devices)
		}
	}
}

func TestHostile_PasswordChangeSignsOutOtherDevices(t *testing.T) {
	addr := startHostile(t, nil)
	phone := register(t, addr, "alice", "phone")
	laptop := dialRaw(t, addr)
	lap := loginRaw(t, laptop, &protocol.LoginReq{Username: phone.name,
		Password: hostilePassword, DeviceId: "laptop"})
	var changed protocol.ChangePasswordResp
	phone.wantCall("wrong old password", protocol.Op_CHANGE_PASSWORD,
		&protocol.ChangePasswordReq{OldPassword: "not it at all", NewPassword_: "new horse!"},
		&changed, common.ErrorCode_INVALID_CREDENTIALS)
	phone.wantCall("change", protocol.Op_CHANGE_PASSWORD,
		&protocol.ChangePasswordReq{OldPassword: hostilePassword, NewPassword_: "new horse!"},
		&changed, common.ErrorCode_OK)
	if r := laptop.waitClose(); r != protocol.CloseReason_SIGNED_OUT {
		t.Fatalf("laptop closed with %s", r)
	}
	if c := tokenLoginCode(t, addr, lap.Token, ""); c != common.ErrorCode_TOKEN_INVALID {
		t.Fatalf("laptop token after password change: %s", c)
	}
	if c := tokenLoginCode(t, addr, phone.login.Token, ""); c != common.ErrorCode_TOKEN_INVALID {
		t.Fatalf("phone's old token after password change: %s", c)
	}
	// The changing connection stays and works.
	phone.wantCall("heartbeat", protocol.Op_HEARTBEAT, &protocol.HeartbeatReq{},
		&protocol.HeartbeatResp{}, common.ErrorCode_OK)
	if c := tokenLoginCode(t, addr, changed.Token, ""); c != common.ErrorCode_OK {
		t.Fatalf("new token: %s", c)
	}
}

func TestHostile_ExpiredTokenClosesLiveConnection(t *testing.T) {
	// The wheel notices an expiry when the connection's slot comes due; a
	// short login timeout keeps that slot near the short token lifetime.
	addr := startHostile(t, func(c *Config) {
		c.Logic.TokenTTL = 2 * time.Second
		c.Gateway.LoginTimeout = 3 * time.Second
	})
	idle := register(t, addr, "idle", "phone")
	busy := register(t, addr, "busy", "phone")
	refresh := busy.login.RefreshToken
	// busy refreshes while idle does nothing but heartbeat: only idle's
	// token runs out.
	for round := 0; idle.closed == nil; round++ {
		if round == 100 {
			t.Fatal("idle connection still open 20s after its token expired")
		}
		var r protocol.RefreshResp
		busy.wantCall("refresh", protocol.Op_REFRESH, &protocol.RefreshReq{RefreshToken: refresh},
			&r, common.ErrorCode_OK)
		refresh = r.RefreshToken
		idle.send(protocol.Op_HEARTBEAT, &protocol.HeartbeatReq{})
		if h, body, err := idle.read(); err == nil && h.Op == protocol.Op_CLOSE {
			idle.keepClose(body)
		} else if err != nil {
			t.Fatalf("idle connection ended without CLOSE: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if idle.closed.Reason != protocol.CloseReason_TOKEN_EXPIRED {
		t.Fatalf("idle closed with %s", idle.closed.Reason)
	}
	busy.wantCall("busy still served", protocol.Op_HEARTBEAT, &protocol.HeartbeatReq{},
		&protocol.HeartbeatResp{}, common.ErrorCode_OK)
	if c := tokenLoginCode(t, addr, idle.login.Token, ""); c != common.ErrorCode_TOKEN_INVALID {
		t.Fatalf("expired token: %s", c)
	}
	// The refresh token brings the expired client back without its password.
	if c := tokenLoginCode(t, addr, idle.login.RefreshToken, ""); c != common.ErrorCode_OK {
		t.Fatalf("refresh-token login: %s", c)
	}
}
