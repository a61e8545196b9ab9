package gateway

import (
	"testing"
	"time"

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
