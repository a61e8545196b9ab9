package logic

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/event"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// nextPresence fails t unless the next presence event on sub, within five
// seconds, is user's.
func nextPresence(t *testing.T, sub *nats.Subscription, user int64, what string) {
	t.Helper()
	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("presence event (%s): %v", what, err)
	}
	ev := event.NewPresenceEvent()
	if err := codec.ReadBody(msg.Data, ev); err != nil || ev.UserId != user {
		t.Fatalf("presence event (%s) = %+v (%v), want user %d", what, ev, err, user)
	}
}

// Signing devices out removes their routes before their connections'
// Disconnect, which then publishes nothing: the user's watchers hear it from
// the sign-out itself, whichever call revoked the devices.
func TestSignOut_PublishesPresence(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		revoke func(e *env, phone, laptop device) error
	}{
		{"sign out device", func(e *env, phone, _ device) error {
			_, err := e.svc.SignOutDevice(ctx, phone.sess,
				&protocol.SignOutDeviceReq{DeviceId: "laptop"})
			return err
		}},
		{"logout", func(e *env, _, laptop device) error {
			// The laptop's second connection is the one closed through task.
			e.loginDevice(t, "alice", "laptop", 3)
			_, err := e.svc.Logout(ctx, laptop.sess, &protocol.LogoutReq{})
			return err
		}},
		{"change password", func(e *env, phone, _ device) error {
			_, err := e.svc.ChangePassword(ctx, phone.sess,
				&protocol.ChangePasswordReq{OldPassword: testPassword, NewPassword_: "brand new pw"})
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, sqliteConfig(t))
			alice := e.register(t, "alice")
			phone := e.loginDevice(t, "alice", "phone", 1)
			laptop := e.loginDevice(t, "alice", "laptop", 2)
			sub := e.subscribe(t, e.names.PresenceSubject())
			if err := c.revoke(e, phone, laptop); err != nil {
				t.Fatal(err)
			}
			if c.name == "logout" {
				nextPresence(t, sub, alice, "the laptop's second login")
			}
			nextPresence(t, sub, alice, c.name)
		})
	}
}
