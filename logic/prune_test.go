package logic

import (
	"testing"
	"time"

	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

func TestPruneDevices_OnlyLapsedOnesWithoutPushToken(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		e.register(t, "alice")
		for i, dev := range []string{"old", "oldpush", "recent"} {
			e.loginDevice(t, "alice", dev, int64(i+1))
		}
		var alice int64
		if err := e.db.Model(&userRow{}).Where("username = ?", "alice").Pluck("id", &alice).Error; err != nil {
			t.Fatal(err)
		}
		push := session(alice, 2)
		push.DeviceId = "oldpush"
		if _, err := e.svc.SetPushToken(ctxBG, push, &protocol.SetPushTokenReq{
			Platform: protocol.PushPlatform_FCM, Token: "tok-1", AppId: "app"}); err != nil {
			t.Fatal(err)
		}
		// Two devices were last seen long ago, their refresh tokens expired.
		old := time.Now().Add(-2 * e.svc.cfg.RefreshTTL).UnixMilli()
		err := e.db.Model(&deviceRow{}).Where("device_id IN ?", []string{"old", "oldpush"}).
			Updates(map[string]any{"last_login_ms": old, "refresh_expires_ms": old}).Error
		if err != nil {
			t.Fatal(err)
		}
		n, err := e.svc.pruneDevices(ctxBG)
		if err != nil || n != 1 {
			t.Fatalf("pruned %d, %v; want 1", n, err)
		}
		var left []string
		if err := e.db.Model(&deviceRow{}).Order("device_id").Pluck("device_id", &left).Error; err != nil {
			t.Fatal(err)
		}
		if len(left) != 2 || left[0] != "oldpush" || left[1] != "recent" {
			t.Fatalf("devices left %v, want [oldpush recent]", left)
		}
	})
}
