package app

import (
	"context"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/client/clienttest"
	"github.com/resonance-im/resonance/internal/testwait"
)

// A conversation someone began with the user while the device was away
// (between two connections of one Session, or between two Sessions on the
// same store) is handed over from its first message when the device comes
// back, with no later push to reveal it: the resume's listing names it.
func TestSession_ConversationBegunWhileAwayArrivesOnReturn(t *testing.T) {
	sys := startSystem(t, baseConfig(t, RoleAll))
	addr := sys.GatewayAddr().String()
	for _, tt := range []struct {
		name    string
		restart bool // a new Session on the store; else a reconnect
		latest  bool // StartAtLatest
	}{
		{name: "reconnect"},
		{name: "reconnect, at the latest", latest: true},
		{name: "restart", restart: true},
		{name: "restart, at the latest", restart: true, latest: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			tag := client.NewClientMsgID()[:6]
			me := login(t, addr, "away"+tag, "phone", true)
			stranger := login(t, addr, "new"+tag, "phone", true)
			conv := client.P2PConvID(me.id, stranger.id)
			begin := func() {
				for _, text := range []string{"hi", "are you there?", "call me"} {
					if _, err := stranger.Send(ctx, client.SendParams{ToUserID: me.id,
						Text: text}); err != nil {
						t.Fatalf("send while away: %v", err)
					}
				}
			}

			away := &clienttest.AwayGate{}
			cfg := client.SessionConfig{Addr: addr, StartAtLatest: tt.latest,
				Positions: client.NewMemoryPositions(), MinBackoff: 10 * time.Millisecond,
				Login: client.LoginParams{Username: me.name, Password: "correct horse",
					DeviceID: "tablet"},
				OnEvent: away.OnEvent}
			sess, err := client.OpenSession(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			st := collect(t, sess)
			testwait.For(t, 10*time.Second, "a resume", func() bool { return away.Resumes() > 0 })

			if tt.restart {
				_ = sess.Close()
				begin()
				cfg.OnEvent = nil
				again, err := client.OpenSession(ctx, cfg)
				if err != nil {
					t.Fatal(err)
				}
				st = collect(t, again)
			} else {
				away.Hold(t) // the reconnect waits until the messages are in
				c, err := sess.Client(ctx)
				if err != nil {
					t.Fatal(err)
				}
				_ = c.Close()
				testwait.For(t, 10*time.Second, "the connection lost", away.Away)
				begin()
				away.Release()
			}
			st.waitSeqs(t, me.name, conv, []int64{1, 2, 3})
		})
	}
}
