package gateway

import (
	"slices"
	"testing"
	"time"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// TestDeadline_TokenExpiry checks which deadline closes a connection before
// and after login, and that REFRESH moves the token's.
func TestDeadline_TokenExpiry(t *testing.T) {
	g := &Gateway{cfg: Config{LoginTimeout: 10 * time.Second,
		HeartbeatTimeout: 90 * time.Second}, boot: time.Now().Add(-time.Hour)}
	now := g.nowMs()
	c := &conn{lastActive: now}
	c.authDeadline.Store(now + 10_000)
	want := func(what string, dl int64, reason protocol.CloseReason) {
		t.Helper()
		gotDl, gotReason := g.deadlineReason(c)
		// setTokenExpiry reads two clocks; allow them a little apart.
		if gotReason != reason || gotDl < dl-50 || gotDl > dl+50 {
			t.Fatalf("%s: deadline %d %s, want %d %s", what, gotDl, gotReason, dl, reason)
		}
	}
	want("before login", now+10_000, protocol.CloseReason_LOGIN_TIMEOUT)

	unixNow := time.Now().UnixMilli()
	g.setTokenExpiry(c, unixNow+5_000)
	c.session.Store(&logicrpc.Session{UserId: 1})
	want("short token", now+5_000, protocol.CloseReason_TOKEN_EXPIRED)

	g.afterReply(c, &protocol.RefreshResp{TokenExpiresMs: unixNow + 60_000})
	want("refreshed", now+60_000, protocol.CloseReason_TOKEN_EXPIRED)

	g.afterReply(c, &protocol.ChangePasswordResp{TokenExpiresMs: unixNow + 3_600_000})
	want("token outlives heartbeat", now+90_000, protocol.CloseReason_HEARTBEAT_TIMEOUT)

	g.setTokenExpiry(c, 0)
	want("no expiry", now+90_000, protocol.CloseReason_HEARTBEAT_TIMEOUT)
}

// The gateway sends every call of a connection with the token generation
// of the access token its LOGIN got, and after CHANGE_PASSWORD, which
// bumps the caller's generation, with that of the token the reply carries:
// logic refuses an older one as a signed-out device's.
func TestGateway_SessionCarriesTokenGeneration(t *testing.T) {
	h := startGatewayWith(t, Config{}, func(s *stubLogic) { s.tokenGen = 5 })
	c := h.dial(t)
	c.login("alice", 1)
	c.send(protocol.Op_LIST_DEVICES, 2, &protocol.ListDevicesReq{})
	c.expectReply(protocol.Op_LIST_DEVICES_ACK, 2, &protocol.ListDevicesResp{})
	c.send(protocol.Op_CHANGE_PASSWORD, 3, &protocol.ChangePasswordReq{})
	c.expectReply(protocol.Op_CHANGE_PASSWORD_ACK, 3, &protocol.ChangePasswordResp{})
	c.send(protocol.Op_LIST_DEVICES, 4, &protocol.ListDevicesReq{})
	c.expectReply(protocol.Op_LIST_DEVICES_ACK, 4, &protocol.ListDevicesResp{})

	h.logic.mu.Lock()
	defer h.logic.mu.Unlock()
	if got := h.logic.listedGens; !slices.Equal(got, []int64{5, 6}) {
		t.Fatalf("generations sent %v, want [5 6]", got)
	}
}

// A request that logic refuses with TOKEN_INVALID comes from a connection
// of a signed-out device whose close was lost: the gateway answers it, then
// closes the connection with SIGNED_OUT, whether the request went alone
// (SYNC) or in a run of SENDs.
func TestGateway_TokenInvalidClosesSignedOut(t *testing.T) {
	cases := []struct {
		name  string
		op    protocol.Op
		reply protocol.Op
		body  codec.Body
	}{
		{"sync", protocol.Op_SYNC, protocol.Op_SYNC_ACK,
			&protocol.SyncReq{ConvId: "signed-out"}},
		{"send", protocol.Op_SEND, protocol.Op_SEND_ACK,
			&protocol.SendReq{ToUserId: 2, ClientMsgId: "m1", Content: []byte("signed-out")}},
	}
	h := startGateway(t, Config{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := h.dial(t)
			c.login("alice", 1)
			c.send(tc.op, 2, tc.body)
			c.expectError(tc.reply, 2, common.ErrorCode_TOKEN_INVALID)
			c.expectClose(protocol.CloseReason_SIGNED_OUT)
		})
	}
}

// A REFRESH refused because the connection's device was signed out (logic
// marks that TOKEN_INVALID signed_out) closes the connection with
// SIGNED_OUT, as any other request of it would: the client must end its
// session rather than fall back to its password. A DELETE_ACCOUNT refused
// so closes with SIGNED_OUT too, not ACCOUNT_DELETED: the account lives.
func TestGateway_SignedOutRefusalClosesSignedOut(t *testing.T) {
	cases := []struct {
		name   string
		op     protocol.Op
		reply  protocol.Op
		body   codec.Body
		reason protocol.CloseReason
	}{
		{"refresh", protocol.Op_REFRESH, protocol.Op_REFRESH_ACK,
			&protocol.RefreshReq{RefreshToken: "signed-out"}, protocol.CloseReason_SIGNED_OUT},
		{"delete account signed out", protocol.Op_DELETE_ACCOUNT, protocol.Op_DELETE_ACCOUNT_ACK,
			&protocol.DeleteAccountReq{Password: "signed-out"}, protocol.CloseReason_SIGNED_OUT},
		{"delete account gone", protocol.Op_DELETE_ACCOUNT, protocol.Op_DELETE_ACCOUNT_ACK,
			&protocol.DeleteAccountReq{Password: "gone"}, protocol.CloseReason_ACCOUNT_DELETED},
	}
	h := startGateway(t, Config{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := h.dial(t)
			c.login("alice", 1)
			c.send(tc.op, 2, tc.body)
			c.expectError(tc.reply, 2, common.ErrorCode_TOKEN_INVALID)
			c.expectClose(tc.reason)
		})
	}
}

// REFRESH's TOKEN_INVALID for its refresh token alone (expired, rotated
// away) refuses that token, not the connection: it stays open.
func TestGateway_RefreshTokenInvalidKeepsConnection(t *testing.T) {
	h := startGateway(t, Config{})
	c := h.dial(t)
	c.login("alice", 1)
	c.send(protocol.Op_REFRESH, 2, &protocol.RefreshReq{RefreshToken: "stale"})
	c.expectError(protocol.Op_REFRESH_ACK, 2, common.ErrorCode_TOKEN_INVALID)
	c.send(protocol.Op_SYNC, 3, &protocol.SyncReq{ConvId: "p2p:1:2"})
	c.expectReply(protocol.Op_SYNC_ACK, 3, &protocol.SyncResp{})
}
