package logic

import (
	"testing"
	"time"

	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// A mute on one device reaches the user's other device through SyncConvs
// without waiting for a new message.
func TestMuteConv_ReportedToOtherDevices(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		conv := e.sendN(t, alice, bob, 1, "hi").ConvId
		tablet := session(bob, 2)
		tablet.DeviceId = "tablet"
		first := e.syncConvs(t, tablet, "", 50)
		e.svc.now = func() time.Time { return time.Now().Add(convCursorMargin + time.Second) }
		if _, err := e.svc.MuteConv(ctxBG, session(bob, 1),
			&protocol.MuteConvReq{ConvId: conv, Muted: true}); err != nil {
			t.Fatal(err)
		}
		next := e.syncConvs(t, tablet, first.Cursor, 50)
		if len(next.Convs) != 1 || !next.Convs[0].Muted {
			t.Fatalf("after a mute on the phone, the tablet's list is %+v", next.Convs)
		}
	})
}
