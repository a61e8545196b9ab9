package logic

import (
	"context"
	"testing"

	"github.com/resonance-im/resonance/internal/route"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
)

// DisconnectBatch removes the route of each session as Disconnect would,
// leaves a route a newer connection owns, and counts a session without a
// user as failed; a call of none or too many is refused whole.
func TestDisconnectBatch_RemovesEachRoute(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	ctx := context.Background()
	put := func(user, conn int64) route.Route {
		r := route.Route{UserID: user, DeviceID: "phone", Gateway: "gw-1:9000", ConnID: conn}
		if _, err := e.routes.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	put(1, 11)
	put(2, 12)
	newer := put(3, 14) // the session below names conn 13, an older one
	failed, err := e.svc.DisconnectBatch(ctx, []*logicrpc.Session{session(1, 11), session(2, 12),
		session(3, 13), {UserId: 0, ConnId: 15}})
	if err != nil || failed != 1 {
		t.Fatalf("disconnect batch: %d failed, %v; want 1 (the session without a user)", failed, err)
	}
	for _, user := range []int64{1, 2} {
		if rs, _ := e.routes.Lookup(ctx, []int64{user}); len(rs) != 0 {
			t.Fatalf("user %d keeps routes %+v", user, rs)
		}
	}
	wantRoute(t, e, newer)
	for _, n := range []int{0, logicrpc.MaxDisconnectBatch + 1} {
		_, err := e.svc.DisconnectBatch(ctx, make([]*logicrpc.Session, n))
		wantCode(t, err, common.ErrorCode_BAD_REQUEST)
	}
}
