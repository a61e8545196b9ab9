package gateway

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudwego/kitex/client"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/internal/rpcauth"
	"github.com/resonance-im/resonance/internal/testwait"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
	"github.com/resonance-im/resonance/kitex_gen/pushrpc"
)

func TestGateway_LoginThenSend(t *testing.T) {
	h := startGateway(t, Config{HeartbeatInterval: 7 * time.Second})
	c := h.dial(t)

	resp := c.login("alice", 41)
	if resp.UserId != 1 || resp.HeartbeatIntervalMs != 7000 {
		t.Fatalf("login resp %+v, want user 1 and heartbeat 7000ms", resp)
	}
	info := h.logic.connOf("alice")
	if info == nil || info.Gateway != h.pushAddr || info.RemoteAddr != c.conn.LocalAddr().String() {
		t.Fatalf("login conn info %+v, want gateway %s remote %s",
			info, h.pushAddr, c.conn.LocalAddr())
	}

	for seq := int64(1); seq <= 2; seq++ {
		id := uint32(100 + seq)
		c.send(protocol.Op_SEND, id,
			&protocol.SendReq{ClientMsgId: "m", ToUserId: 2, Content: []byte("hi")})
		var ack protocol.SendResp
		c.expectReply(protocol.Op_SEND_ACK, id, &ack)
		if ack.Seq != seq || ack.ConvId != "p2p:1:2" {
			t.Fatalf("ack %+v, want seq %d in p2p:1:2", ack, seq)
		}
	}
}

func TestGateway_MapsLogicErrors(t *testing.T) {
	h := startGateway(t, Config{})
	c := h.dial(t)
	c.login("alice", 1)

	cases := []struct {
		name    string
		content string
		code    common.ErrorCode
		message string
	}{
		{name: "biz error passes through", content: "forbidden",
			code: common.ErrorCode_FORBIDDEN, message: "not a member"},
		{name: "other error is generic", content: "crash",
			code: common.ErrorCode_UNAVAILABLE, message: "service unavailable, retry later"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := uint32(10 + i)
			c.t = t
			req := &protocol.SendReq{ToUserId: 2, Content: []byte(tc.content)}
			c.send(protocol.Op_SEND, id, req)
			e := c.expectError(protocol.Op_SEND_ACK, id, tc.code)
			if e.Message != tc.message {
				t.Fatalf("message %q, want %q", e.Message, tc.message)
			}
		})
	}
}

func TestGateway_Framing(t *testing.T) {
	// One LOGIN, then heartbeats and sends interleaved: replies must come
	// back in order with their request ids, however the bytes are cut.
	var stream []byte
	stream = codec.AppendFrame(stream, protocol.Op_LOGIN, 0, 1,
		&protocol.LoginReq{Username: "alice", Password: "pw"})
	const sends = 20
	for i := uint32(0); i < sends; i++ {
		stream = codec.AppendFrame(stream, protocol.Op_SEND, 0, 100+i,
			&protocol.SendReq{ToUserId: 2, Content: []byte("x")})
	}
	cases := []struct {
		name  string
		chunk int // bytes per write
	}{
		{name: "byte by byte", chunk: 1},
		{name: "odd chunks across frames", chunk: 23},
		{name: "all coalesced in one write", chunk: len(stream)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := startGateway(t, Config{})
			c := h.dial(t)
			for off := 0; off < len(stream); off += tc.chunk {
				c.writeRaw(stream[off:min(off+tc.chunk, len(stream))])
			}
			var login protocol.LoginResp
			c.expectReply(protocol.Op_LOGIN_ACK, 1, &login)
			for i := uint32(0); i < sends; i++ {
				var ack protocol.SendResp
				c.expectReply(protocol.Op_SEND_ACK, 100+i, &ack)
				if ack.Seq != int64(i+1) {
					t.Fatalf("send %d got seq %d, want %d", i, ack.Seq, i+1)
				}
			}
		})
	}
}

func TestGateway_HeartbeatsCoalesced(t *testing.T) {
	h := startGateway(t, Config{})
	c := h.dial(t)
	var stream []byte
	for i := uint32(1); i <= 50; i++ {
		stream = codec.AppendFrame(stream, protocol.Op_HEARTBEAT, 0, i, &protocol.HeartbeatReq{})
	}
	c.writeRaw(stream)
	before := time.Now().UnixMilli()
	for i := uint32(1); i <= 50; i++ {
		var ack protocol.HeartbeatResp
		c.expectReply(protocol.Op_HEARTBEAT_ACK, i, &ack)
		if ack.ServerTimeMs < before-5000 || ack.ServerTimeMs > time.Now().UnixMilli() {
			t.Fatalf("server time %d not around now %d", ack.ServerTimeMs, before)
		}
	}
}

func TestGateway_ProtocolErrorCloses(t *testing.T) {
	valid := codec.EncodeFrame(protocol.Op_HEARTBEAT, 0, 1, nil)
	withByte := func(i int, b byte) []byte {
		f := bytes.Clone(valid)
		f[i] = b
		return f
	}
	oversized := bytes.Clone(valid)
	binary.BigEndian.PutUint32(oversized[10:14], 1<<20)
	badBody := codec.EncodeFrame(protocol.Op_LOGIN, 0, 1, nil)
	badBody = append(badBody, 0xff, 0xff, 0xff)
	binary.BigEndian.PutUint32(badBody[10:14], 3)

	cases := []struct {
		name   string
		bytes  []byte
		reason protocol.CloseReason // PROTOCOL_ERROR when unset
	}{
		{name: "bad magic", bytes: []byte("POST / HTTP/1.1\r\n\r\n")},
		{name: "bad version", bytes: withByte(2, 9)},
		{name: "unknown op", bytes: withByte(3, 0x30)},
		{name: "oversized body", bytes: oversized, reason: protocol.CloseReason_FRAME_TOO_LARGE},
		{name: "malformed body", bytes: badBody},
		{name: "server opcode from client", bytes: codec.EncodeFrame(protocol.Op_PUSH, 0, 0, nil)},
		{name: "reply opcode from client",
			bytes: codec.EncodeFrame(protocol.Op_SEND_ACK, 0, 0, nil)},
	}
	h := startGateway(t, Config{MaxBody: 1024})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := h.dial(t)
			c.writeRaw(tc.bytes)
			want := tc.reason
			if want == protocol.CloseReason_UNKNOWN {
				want = protocol.CloseReason_PROTOCOL_ERROR
			}
			c.expectClose(want)
		})
	}
	if n := h.gw.Stats().Closes[protocol.CloseReason_FRAME_TOO_LARGE]; n != 1 {
		t.Fatalf("FRAME_TOO_LARGE closes counted %d, want 1", n)
	}
}

func TestGateway_RequiresLogin(t *testing.T) {
	h := startGateway(t, Config{})
	c := h.dial(t)
	cases := []struct {
		name string
		op   protocol.Op
		body codec.Body
	}{
		{name: "send", op: protocol.Op_SEND, body: &protocol.SendReq{ToUserId: 2}},
		{name: "sync", op: protocol.Op_SYNC, body: &protocol.SyncReq{ConvId: "p2p:1:2"}},
		{name: "sync convs", op: protocol.Op_SYNC_CONVS, body: &protocol.SyncConvsReq{}},
		{name: "mark read", op: protocol.Op_MARK_READ, body: &protocol.MarkReadReq{Seq: 1}},
		{name: "get user", op: protocol.Op_GET_USER, body: &protocol.GetUserReq{UserId: 1}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			c.send(tc.op, uint32(i+1), tc.body)
			c.expectError(codec.ReplyOp(tc.op), uint32(i+1), common.ErrorCode_UNAUTHENTICATED)
		})
	}
	c.t = t
	// REGISTER is allowed before login and answered by logic.
	c.send(protocol.Op_REGISTER, 9, &protocol.RegisterReq{Username: "carol", Password: "x"})
	var reg protocol.RegisterResp
	c.expectReply(protocol.Op_REGISTER_ACK, 9, &reg)
	if reg.UserId != 100 {
		t.Fatalf("register user %d, want 100", reg.UserId)
	}
	info := h.logic.registeredFrom("carol")
	if info == nil || info.Gateway != h.pushAddr || info.ConnId == 0 ||
		info.RemoteAddr != c.conn.LocalAddr().String() {
		t.Fatalf("register conn info %+v, want gateway %s remote %s",
			info, h.pushAddr, c.conn.LocalAddr())
	}
}

func TestGateway_LoginFailuresAndRelogin(t *testing.T) {
	h := startGateway(t, Config{})

	t.Run("already logged in", func(t *testing.T) {
		c := h.dial(t)
		c.login("alice", 1)
		c.send(protocol.Op_LOGIN, 2, &protocol.LoginReq{Username: "alice", Password: "pw"})
		c.expectError(protocol.Op_LOGIN_ACK, 2, common.ErrorCode_ALREADY_LOGGED_IN)
	})
	t.Run("three bad logins close", func(t *testing.T) {
		c := h.dial(t)
		for id := uint32(1); id <= maxFailedLogins; id++ {
			c.send(protocol.Op_LOGIN, id, &protocol.LoginReq{Username: "alice", Password: "nope"})
			c.expectError(protocol.Op_LOGIN_ACK, id, common.ErrorCode_INVALID_CREDENTIALS)
		}
		msg := c.expectClose(protocol.CloseReason_LOGIN_FAILED)
		if msg.ReconnectAfterMs != -1 {
			t.Fatalf("reconnect after %d, want -1", msg.ReconnectAfterMs)
		}
	})
	t.Run("expired token leaves the connection open", func(t *testing.T) {
		c := h.dial(t)
		c.send(protocol.Op_LOGIN, 1, &protocol.LoginReq{Token: expiredToken})
		c.expectError(protocol.Op_LOGIN_ACK, 1, common.ErrorCode_TOKEN_INVALID)
		c.login("alice", 2)
	})
	t.Run("signed-out device's token closes", func(t *testing.T) {
		c := h.dial(t)
		c.send(protocol.Op_LOGIN, 1, &protocol.LoginReq{Token: signedOutToken})
		c.expectError(protocol.Op_LOGIN_ACK, 1, common.ErrorCode_TOKEN_INVALID)
		msg := c.expectClose(protocol.CloseReason_SIGNED_OUT)
		if msg.ReconnectAfterMs != -1 {
			t.Fatalf("reconnect after %d, want -1", msg.ReconnectAfterMs)
		}
	})
	t.Run("suspended account closes", func(t *testing.T) {
		c := h.dial(t)
		c.send(protocol.Op_LOGIN, 1, &protocol.LoginReq{Token: suspendedToken})
		c.expectError(protocol.Op_LOGIN_ACK, 1, common.ErrorCode_ACCOUNT_SUSPENDED)
		msg := c.expectClose(protocol.CloseReason_ACCOUNT_SUSPENDED)
		if msg.ReconnectAfterMs != -1 || msg.Message != "account suspended" {
			t.Fatalf("CLOSE %+v, want reconnect -1 and its message", msg)
		}
	})
}

func TestGateway_Deadlines(t *testing.T) {
	cases := []struct {
		name   string
		cfg    Config
		login  bool
		reason protocol.CloseReason
		after  time.Duration // the close must not come earlier
	}{
		{name: "no login", cfg: Config{LoginTimeout: 200 * time.Millisecond,
			HeartbeatInterval: time.Second}, reason: protocol.CloseReason_LOGIN_TIMEOUT,
			after: 200 * time.Millisecond},
		{name: "silent after login", cfg: Config{HeartbeatInterval: 100 * time.Millisecond,
			HeartbeatTimeout: 300 * time.Millisecond}, login: true,
			reason: protocol.CloseReason_HEARTBEAT_TIMEOUT, after: 300 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := startGateway(t, tc.cfg)
			c := h.dial(t)
			// Time from before the LOGIN is sent: the server counts silence
			// from the last frame it received, which is never earlier.
			start := time.Now()
			if tc.login {
				c.login("alice", 1)
			}
			msg := c.expectClose(tc.reason)
			if waited := time.Since(start); waited < tc.after-20*time.Millisecond {
				t.Fatalf("closed after %v, want at least %v", waited, tc.after)
			}
			if msg.ReconnectAfterMs <= 0 {
				t.Fatalf("reconnect after %d, want a positive delay", msg.ReconnectAfterMs)
			}
		})
	}
}

func TestGateway_HeartbeatsKeepAlive(t *testing.T) {
	h := startGateway(t, Config{HeartbeatInterval: 50 * time.Millisecond,
		HeartbeatTimeout: 150 * time.Millisecond})
	c := h.dial(t)
	c.login("alice", 1)
	// Heartbeating for three timeouts keeps the connection open.
	for i := uint32(2); i < 11; i++ {
		c.send(protocol.Op_HEARTBEAT, i, &protocol.HeartbeatReq{})
		var ack protocol.HeartbeatResp
		c.expectReply(protocol.Op_HEARTBEAT_ACK, i, &ack)
		time.Sleep(50 * time.Millisecond) // the client's heartbeat period
	}
	c.expectClose(protocol.CloseReason_HEARTBEAT_TIMEOUT)
}

func TestGateway_Push(t *testing.T) {
	h := startGateway(t, Config{})
	alice, bob := h.dial(t), h.dial(t)
	alice.login("alice", 1)
	bob.login("bob", 1)
	aliceConn, bobConn := h.logic.connOf("alice").ConnId, h.logic.connOf("bob").ConnId

	msg := &protocol.PushMsg{Message: &common.Message{MsgId: 7, ConvId: "p2p:1:2", Seq: 3,
		Content: []byte("hello")}}
	pushFrame := codec.EncodeFrame(protocol.Op_PUSH, 0, 0, msg)
	resp, err := h.pushClient(t).Push(context.Background(), &pushrpc.PushReq{
		Targets: []*pushrpc.Target{
			{ConnId: aliceConn, UserId: 1},
			{ConnId: bobConn, UserId: 1}, // bob's connection, wrong user
			{ConnId: 12345, UserId: 1},   // no such connection
		},
		Frame: pushFrame,
	})
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	if resp.Delivered != 1 || len(resp.MissingConns) != 2 ||
		resp.MissingConns[0] != bobConn || resp.MissingConns[1] != 12345 {
		t.Fatalf("push resp %+v, want 1 delivered, missing [%d 12345]", resp, bobConn)
	}
	got := alice.read()
	if got.Op != protocol.Op_PUSH || !bytes.Equal(got.body, pushFrame[codec.HeaderSize:]) {
		t.Fatalf("alice got op %v body %x, want the pushed frame", got.Op, got.body)
	}
	// bob must not have received it: a heartbeat ack is his next frame.
	bob.send(protocol.Op_HEARTBEAT, 5, nil)
	bob.expectReply(protocol.Op_HEARTBEAT_ACK, 5, &protocol.HeartbeatResp{})
}

// TestGateway_PushNeedsSecret checks that with an internal secret the Push
// service refuses Push, PushBatch and Kick calls that lack it, before
// touching any connection.
func TestGateway_PushNeedsSecret(t *testing.T) {
	h := startGateway(t, Config{InternalSecret: "s3cret"})
	c := h.dial(t)
	c.login("alice", 1)
	targets := []*pushrpc.Target{{ConnId: h.logic.connOf("alice").ConnId, UserId: 1}}
	frame := codec.EncodeFrame(protocol.Op_PUSH, 0, 0, &protocol.PushMsg{})
	cases := []struct {
		name   string
		opts   []client.Option
		denied bool
	}{
		{name: "no secret", denied: true},
		{name: "wrong secret", opts: rpcauth.ClientOptions("guess"), denied: true},
		{name: "right secret", opts: rpcauth.ClientOptions("s3cret")},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			cli := h.pushClient(t, tc.opts...)
			// Pushes before Kick: with the secret, the kick closes alice.
			req := &pushrpc.PushReq{Targets: targets, Frame: frame}
			resp, err := cli.Push(context.Background(), req)
			batch, batchErr := cli.PushBatch(context.Background(), []*pushrpc.PushReq{req})
			_, kickErr := cli.Kick(context.Background(), &pushrpc.KickReq{Targets: targets,
				Reason: protocol.CloseReason_KICKED})
			if tc.denied {
				if err == nil || batchErr == nil || kickErr == nil {
					t.Fatalf("without the secret: push %v, push batch %v, kick %v",
						err, batchErr, kickErr)
				}
				// Neither reached the client: a heartbeat ack is its next frame.
				id := uint32(10 + i)
				c.send(protocol.Op_HEARTBEAT, id, nil)
				c.expectReply(protocol.Op_HEARTBEAT_ACK, id, &protocol.HeartbeatResp{})
				return
			}
			if err != nil || resp.Delivered != 1 {
				t.Fatalf("with the secret: %+v, %v", resp, err)
			}
			if batchErr != nil || len(batch) != 1 || batch[0].Delivered != 1 {
				t.Fatalf("push batch with the secret: %+v, %v", batch, batchErr)
			}
			if kickErr != nil {
				t.Fatalf("kick with the secret: %v", kickErr)
			}
		})
	}
	c.t = t
}

func TestGateway_KickClosesWithReason(t *testing.T) {
	h := startGateway(t, Config{})
	c := h.dial(t)
	c.login("alice", 1)
	connID := h.logic.connOf("alice").ConnId
	resp, err := h.pushClient(t).Kick(context.Background(), &pushrpc.KickReq{
		Targets: []*pushrpc.Target{{ConnId: connID, UserId: 1}, {ConnId: 999, UserId: 1}},
		Reason:  protocol.CloseReason_KICKED,
		Message: "logged in elsewhere",
	})
	if err != nil || resp.Delivered != 1 || len(resp.MissingConns) != 1 {
		t.Fatalf("kick: resp %+v err %v, want 1 kicked and conn 999 missing", resp, err)
	}
	msg := c.expectClose(protocol.CloseReason_KICKED)
	if msg.ReconnectAfterMs != -1 || msg.Message != "logged in elsewhere" {
		t.Fatalf("close %+v, want reconnect -1 and the kick message", msg)
	}
	if n := h.gw.Stats().Closes[protocol.CloseReason_KICKED]; n != 1 {
		t.Fatalf("KICKED closes counted %d, want 1", n)
	}
}

func TestGateway_ForwardsNewOps(t *testing.T) {
	h := startGateway(t, Config{})
	c := h.dial(t)
	c.login("bob", 1)

	c.send(protocol.Op_DELIVERED, 2, &protocol.DeliveredReq{
		Positions: []*protocol.ConvPos{{ConvId: "p2p:1:2", Seq: 3}}})
	c.expectReply(protocol.Op_DELIVERED_ACK, 2, &protocol.DeliveredResp{})

	c.send(protocol.Op_SYNC_CONVS, 3, &protocol.SyncConvsReq{Cursor: "c"})
	var convs protocol.SyncConvsResp
	c.expectReply(protocol.Op_SYNC_CONVS_ACK, 3, &convs)
	if convs.Cursor != "c/2" {
		t.Fatalf("sync convs cursor %q, want c/2 (request cursor and bob's id)", convs.Cursor)
	}

	c.send(protocol.Op_MARK_READ, 4, &protocol.MarkReadReq{ConvId: "p2p:1:2", Seq: 5})
	var read protocol.MarkReadResp
	c.expectReply(protocol.Op_MARK_READ_ACK, 4, &read)
	if read.ReadSeq != 2005 {
		t.Fatalf("read seq %d, want 2005 (seq and bob's id)", read.ReadSeq)
	}
}

func TestGateway_ForwardsAccountOps(t *testing.T) {
	h := startGateway(t, Config{})
	c := h.dial(t)
	c.login("bob", 1)
	// The stub answers every account method UNSUPPORTED "stub": that reply
	// proves the request reached logic and the connection stayed open.
	ops := []protocol.Op{protocol.Op_LOGOUT, protocol.Op_REFRESH,
		protocol.Op_CHANGE_PASSWORD, protocol.Op_UPDATE_PROFILE, protocol.Op_LIST_DEVICES,
		protocol.Op_SIGN_OUT_DEVICE, protocol.Op_SEARCH_USERS, protocol.Op_BLOCK}
	for i, op := range ops {
		t.Run(op.String(), func(t *testing.T) {
			c.t = t
			id := uint32(10 + i)
			c.send(op, id, nil)
			e := c.expectError(codec.ReplyOp(op), id, common.ErrorCode_UNSUPPORTED)
			if e.Message != "stub" {
				t.Fatalf("message %q, want the stub's", e.Message)
			}
		})
	}
}

func TestGateway_RejectsBadPushFrame(t *testing.T) {
	h := startGateway(t, Config{})
	cases := []struct {
		name  string
		frame []byte
	}{
		{name: "empty", frame: nil},
		{name: "truncated",
			frame: codec.EncodeFrame(protocol.Op_PUSH, 0, 0, &protocol.PushMsg{})[:10]},
		{name: "two frames", frame: append(codec.EncodeFrame(protocol.Op_PUSH, 0, 0, nil),
			codec.EncodeFrame(protocol.Op_PUSH, 0, 0, nil)...)},
		{name: "request opcode", frame: codec.EncodeFrame(protocol.Op_SEND, 0, 0, nil)},
		{name: "close frame", frame: closeFrame(protocol.CloseReason_KICKED, "use Kick")},
	}
	cli := h.pushClient(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cli.Push(context.Background(), &pushrpc.PushReq{Frame: tc.frame})
			if err == nil {
				t.Fatal("push accepted a bad frame")
			}
		})
	}
}

func TestGateway_DisconnectOnClose(t *testing.T) {
	h := startGateway(t, Config{})
	c := h.dial(t)
	c.login("alice", 1)
	connID := h.logic.connOf("alice").ConnId
	_ = c.conn.Close()
	testwait.For(t, 5*time.Second, "disconnect", func() bool {
		for _, s := range h.logic.disconnected() {
			if s.ConnId == connID && s.UserId == 1 && s.Gateway == h.pushAddr &&
				s.DeviceId == "phone" && s.RemoteAddr == c.conn.LocalAddr().String() {
				return true
			}
		}
		return false
	})
}

// TestGateway_MassDisconnectRemovesEveryRoute closes many logged-in
// connections at once while Disconnect is slow and the request pool is
// tiny: every route is still removed, none left to lapse with its TTL, in
// fewer calls than connections (DisconnectBatch takes what queued); and the
// same, a call each with its own timeout, against a logic older than
// DisconnectBatch.
func TestGateway_MassDisconnectRemovesEveryRoute(t *testing.T) {
	const conns = 200
	for _, old := range []bool{false, true} {
		t.Run(fmt.Sprintf("old logic %v", old), func(t *testing.T) {
			// Each call takes 30 ms of a 250 ms RequestTimeout: an old
			// logic's Disconnect calls must each have a timeout of their
			// own, not share one per worker's batch.
			h := startGatewayWith(t, Config{Workers: 2, RequestTimeout: 250 * time.Millisecond},
				func(s *stubLogic) {
					s.disconnectDelay = 30 * time.Millisecond
					s.withoutDisconnectBatch = old
				})
			clients := make([]*testClient, conns)
			for i := range clients {
				clients[i] = h.dial(t)
				clients[i].login("alice", 1)
			}
			for _, c := range clients {
				_ = c.conn.Close()
			}
			testwait.For(t, 20*time.Second, "a Disconnect per connection", func() bool {
				return len(h.logic.disconnected()) == conns
			})
			seen := make(map[int64]bool)
			for _, s := range h.logic.disconnected() {
				seen[s.ConnId] = true
			}
			batched, batches := 0, h.logic.disconnectBatches()
			for _, n := range batches {
				batched += n
			}
			calls := len(batches) + conns - batched
			switch {
			case len(seen) != conns:
				t.Fatalf("%d connections' routes removed, want %d once each", len(seen), conns)
			case old && len(batches) != 0:
				t.Fatalf("an old logic got DisconnectBatch calls %v", batches)
			case !old && calls >= conns:
				t.Fatalf("%d calls for %d closed connections, want fewer", calls, conns)
			}
		})
	}
}

// TestGateway_SessionDeviceFromLogic checks that a token login naming no
// device acts as the device logic resolved: the session logic later sees
// (here at disconnect) carries the token's device, not the default.
func TestGateway_SessionDeviceFromLogic(t *testing.T) {
	h := startGateway(t, Config{})
	c := h.dial(t)
	c.send(protocol.Op_LOGIN, 1, &protocol.LoginReq{Token: stubToken})
	var resp protocol.LoginResp
	c.expectReply(protocol.Op_LOGIN_ACK, 1, &resp)
	connID := h.logic.connOf("alice").ConnId
	_ = c.conn.Close()
	testwait.For(t, 5*time.Second, "disconnect of the tablet", func() bool {
		for _, s := range h.logic.disconnected() {
			if s.ConnId == connID {
				if s.DeviceId != "tablet" {
					t.Fatalf("session device %q, want tablet", s.DeviceId)
				}
				return true
			}
		}
		return false
	})
}

func TestGateway_RenewsRoutes(t *testing.T) {
	h := startGateway(t, Config{RenewInterval: 50 * time.Millisecond})
	c := h.dial(t)
	c.login("alice", 1)
	connID := h.logic.connOf("alice").ConnId
	testwait.For(t, 5*time.Second, "renewal", func() bool {
		for _, s := range h.logic.renewed() {
			if s.ConnId == connID && s.UserId == 1 {
				return true
			}
		}
		return false
	})
}

func TestGateway_GracefulShutdown(t *testing.T) {
	h := startGateway(t, Config{})
	loggedIn, anonymous := h.dial(t), h.dial(t)
	loggedIn.login("alice", 1)
	// Make sure the anonymous connection is open on the server before stopping.
	anonymous.send(protocol.Op_HEARTBEAT, 1, nil)
	anonymous.expectReply(protocol.Op_HEARTBEAT_ACK, 1, &protocol.HeartbeatResp{})

	if err := h.stop(t); err != nil {
		t.Fatalf("Run returned %v", err)
	}
	loggedIn.expectClose(protocol.CloseReason_SERVER_SHUTDOWN)
	anonymous.expectClose(protocol.CloseReason_SERVER_SHUTDOWN)
	if len(h.logic.disconnected()) != 1 {
		t.Fatalf("disconnects %v, want the logged-in connection's", h.logic.disconnected())
	}
	for name, addr := range map[string]string{"client": h.gw.Addr().String(), "push": h.pushAddr} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.Close()
			t.Fatalf("%s listener still accepts after Run returned", name)
		}
	}
}

func TestNew_Validates(t *testing.T) {
	ln := listen(t)
	defer ln.Close()
	good := Deps{Logic: idleLogicClient(t), PushListener: ln}
	cases := []struct {
		name string
		cfg  Config
		deps Deps
	}{
		{name: "bad addr", cfg: Config{Addr: "nope"}, deps: good},
		{name: "timeout below interval", cfg: Config{HeartbeatInterval: time.Second,
			HeartbeatTimeout: time.Millisecond}, deps: good},
		{name: "negative timeout", cfg: Config{LoginTimeout: -1}, deps: good},
		{name: "register ttl too short", cfg: Config{RegisterTTL: time.Millisecond}, deps: good},
		{name: "no logic", deps: Deps{PushListener: ln}},
		{name: "no push listener", deps: Deps{Logic: good.Logic}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg, tc.deps); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
}

// TestConfig_ValidateNamesTheNegativeField: Validate checks without
// starting anything, and says which setting is wrong.
func TestConfig_ValidateNamesTheNegativeField(t *testing.T) {
	cases := []struct {
		cfg  Config
		want string
	}{
		{cfg: Config{MaxBody: -1}, want: "max body -1"},
		{cfg: Config{MaxPending: -2}, want: "max pending -2"},
		{cfg: Config{OutboundHighWater: -3}, want: "outbound high water -3"},
	}
	for _, tc := range cases {
		err := tc.cfg.Validate()
		if !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want ErrBadConfig saying %s", tc.cfg, err, tc.want)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("Validate of the zero Config = %v", err)
	}
}

func TestGateway_RunFailsOnBusyAddress(t *testing.T) {
	taken := listen(t)
	defer taken.Close()
	g, err := New(Config{Addr: taken.Addr().String()},
		Deps{Logic: idleLogicClient(t), PushListener: listen(t)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Run(context.Background()) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Run returned nil on an address in use")
		}
	case <-g.Ready():
		t.Fatal("Ready closed on an address in use")
	case <-time.After(10 * time.Second):
		buf := make([]byte, 1<<20)
		t.Fatalf("Run did not fail within 10s\n%s", buf[:runtime.Stack(buf, true)])
	}
	if err := g.Run(context.Background()); !errors.Is(err, ErrRunTwice) {
		t.Fatalf("second Run returned %v, want ErrRunTwice", err)
	}
}

// A batch of frames reaches each target in order, in one write; a frame
// that names a connection to skip (its sender) does not reach it. TCP and
// WebSocket clients alike.
func TestGateway_PushFrames(t *testing.T) {
	h := startGateway(t, Config{})
	alice, bob, carol := h.dial(t), h.dial(t), h.dialWS(t)
	alice.login("alice", 1)
	bob.login("bob", 1)
	ids := map[string]int64{"alice": h.logic.connOf("alice").ConnId,
		"bob": h.logic.connOf("bob").ConnId}
	carol.login("bob", 1) // bob's browser: the stub knows two users
	ids["carol"] = h.logic.connOf("bob").ConnId
	conn := func(name string) int64 { return ids[name] }
	frames := make([]*pushrpc.PushFrame, 3)
	for i := range frames {
		msg := &protocol.PushMsg{Message: &common.Message{MsgId: int64(10 + i), ConvId: "g:x",
			Seq: int64(i + 1), Content: []byte("m")}}
		frames[i] = &pushrpc.PushFrame{Frame: codec.EncodeFrame(protocol.Op_PUSH, 0, 0, msg)}
	}
	frames[1].SkipConn = conn("alice") // alice sent seq 2: she has its ack
	resp, err := h.pushClient(t).Push(context.Background(), &pushrpc.PushReq{
		Targets: []*pushrpc.Target{{ConnId: conn("alice"), UserId: 1},
			{ConnId: conn("bob"), UserId: 2}, {ConnId: conn("carol"), UserId: 2}},
		Frames: frames,
	})
	if err != nil || resp.Delivered != 3 {
		t.Fatalf("push batch = %+v, %v; want 3 delivered", resp, err)
	}
	seqs := func(read func() frame, n int) []int64 {
		var out []int64
		for range n {
			f := read()
			var pm protocol.PushMsg
			if f.Op != protocol.Op_PUSH || codec.ReadBody(f.body, &pm) != nil {
				t.Fatalf("got op %v, want PUSH", f.Op)
			}
			out = append(out, pm.Message.Seq)
		}
		return out
	}
	if got := seqs(alice.read, 2); !slices.Equal(got, []int64{1, 3}) {
		t.Fatalf("alice got seqs %v, want [1 3]", got)
	}
	if got := seqs(bob.read, 3); !slices.Equal(got, []int64{1, 2, 3}) {
		t.Fatalf("bob got seqs %v, want [1 2 3]", got)
	}
	if got := seqs(carol.read, 3); !slices.Equal(got, []int64{1, 2, 3}) {
		t.Fatalf("carol (WebSocket) got seqs %v, want [1 2 3]", got)
	}
	// A bad frame anywhere in the batch refuses the whole call.
	frames[2] = &pushrpc.PushFrame{Frame: []byte("junk")}
	if _, err := h.pushClient(t).Push(context.Background(), &pushrpc.PushReq{
		Targets: []*pushrpc.Target{{ConnId: conn("bob"), UserId: 2}}, Frames: frames}); err == nil {
		t.Fatal("a batch with a malformed frame was accepted")
	}
}
