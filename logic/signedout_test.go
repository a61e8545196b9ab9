package logic

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// TestLogin_MarksTokensOfSignedOutDevices checks that a token login refused
// because its device was signed out says so (BizError.signed_out, on which
// the gateway closes with SIGNED_OUT), and one refused for any other reason
// does not: an expired token must still let the client fall back to its
// refresh token or password.
func TestLogin_MarksTokensOfSignedOutDevices(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		e.register(t, "alice")
		ctx := context.Background()
		phone := e.loginDevice(t, "alice", "phone", 1)
		laptop := e.loginDevice(t, "alice", "laptop", 2)
		tablet := e.loginDevice(t, "alice", "tablet", 3)
		desk := e.loginDevice(t, "alice", "desk", 4)
		if _, err := e.svc.SignOutDevice(ctx, phone.sess,
			&protocol.SignOutDeviceReq{DeviceId: "laptop"}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Logout(ctx, tablet.sess, nil); err != nil {
			t.Fatal(err)
		}
		changed, err := e.svc.ChangePassword(ctx, phone.sess, &protocol.ChangePasswordReq{
			OldPassword: testPassword, NewPassword_: "a new password"})
		if err != nil {
			t.Fatal(err)
		}
		// A device row the pruner removed, its refresh token expired.
		pruned, err := e.svc.Login(ctx, &protocol.LoginReq{Username: "alice",
			Password: "a new password", DeviceId: "old"},
			&logicrpc.ConnInfo{Gateway: "gw-1:9000", ConnId: 6})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.db.Where("user_id = ? AND device_id = ?", phone.sess.UserId, "old").
			Delete(&deviceRow{}).Error; err != nil {
			t.Fatal(err)
		}

		cases := []struct {
			name      string
			token     string
			clock     time.Duration // added to the service clock
			signedOut bool
		}{
			{name: "signed out access", token: laptop.token, signedOut: true},
			{name: "signed out refresh", token: laptop.refresh, signedOut: true},
			{name: "logged out access", token: tablet.token, signedOut: true},
			{name: "logged out refresh", token: tablet.refresh, signedOut: true},
			{name: "password changed access", token: desk.token, signedOut: true},
			{name: "password changed refresh", token: desk.refresh, signedOut: true},
			{name: "own change's old access", token: phone.token, signedOut: true},
			{name: "expired access", token: changed.Token, clock: DefaultTokenTTL + time.Second},
			{name: "expired refresh", token: changed.RefreshToken, clock: DefaultRefreshTTL + time.Hour},
			{name: "pruned device's refresh", token: pruned.RefreshToken},
			{name: "forged", token: flipLast(changed.Token)},
			{name: "garbage", token: "not-a-token"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				e.svc.now = func() time.Time { return time.Now().Add(tc.clock) }
				t.Cleanup(func() { e.svc.now = time.Now })
				_, err := e.svc.Login(ctx, &protocol.LoginReq{Token: tc.token},
					&logicrpc.ConnInfo{Gateway: "gw-2:9000", ConnId: 9})
				wantCode(t, err, common.ErrorCode_TOKEN_INVALID)
				var biz *common.BizError
				if !errors.As(err, &biz) || biz.GetSignedOut() != tc.signedOut {
					t.Fatalf("signed_out = %v, want %v (%v)", biz.GetSignedOut(),
						tc.signedOut, err)
				}
			})
		}
	})
}

// sessionCalls are the calls by which sess's connection acts on its
// account's sessions and password (password is the account's current one,
// refresh the device's refresh token as the connection last held it), each
// returning its error.
func sessionCalls(e *env, sess *logicrpc.Session, password, refresh string) []namedCall {
	ctx := context.Background()
	return []namedCall{
		{"refresh", func() error {
			_, err := e.svc.Refresh(ctx, sess, &protocol.RefreshReq{RefreshToken: refresh})
			return err
		}},
		{"logout", func() error {
			_, err := e.svc.Logout(ctx, sess, &protocol.LogoutReq{})
			return err
		}},
		{"change password", func() error {
			_, err := e.svc.ChangePassword(ctx, sess, &protocol.ChangePasswordReq{
				OldPassword: password, NewPassword_: "a stale device's choice"})
			return err
		}},
		{"delete account", func() error {
			return e.deleteAccount(sess, password)
		}},
	}
}

// namedCall is one call of a test, by name.
type namedCall struct {
	name string
	call func() error
}

// A signed-out device's connection whose close was lost cannot act on the
// account's sessions or password: REFRESH, LOGOUT, CHANGE_PASSWORD and
// DELETE_ACCOUNT answer TOKEN_INVALID marked signed_out (so that the
// gateway closes it with SIGNED_OUT), and the devices still signed in, the
// laptop's new login among them, go on untouched. It holds the password:
// a thief's phone signed out from the owner's laptop must not change it.
func TestSignedOutSession_CannotActOnSessions(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name     string
		password string // the account's password after the sign-out
		signOut  func(t *testing.T, e *env, laptop device)
	}{
		{"sign out device", testPassword, func(t *testing.T, e *env, laptop device) {
			_, err := e.svc.SignOutDevice(ctx, laptop.sess,
				&protocol.SignOutDeviceReq{DeviceId: "phone"})
			if err != nil {
				t.Fatal(err)
			}
		}},
		{"change password", "changed elsewhere", func(t *testing.T, e *env, laptop device) {
			_, err := e.svc.ChangePassword(ctx, laptop.sess, &protocol.ChangePasswordReq{
				OldPassword: testPassword, NewPassword_: "changed elsewhere"})
			if err != nil {
				t.Fatal(err)
			}
		}},
		{"password login elsewhere", testPassword, func(*testing.T, *env, device) {}},
	}
	for _, c := range cases {
		for i, name := range []string{"refresh", "logout", "change password", "delete account"} {
			t.Run(c.name+"/"+name, func(t *testing.T) {
				e := newEnv(t, sqliteConfig(t))
				e.register(t, "alice")
				stale := e.loginDevice(t, "alice", "phone", 1)
				laptop := e.loginDevice(t, "alice", "laptop", 2)
				c.signOut(t, e, laptop)
				if c.name == "change password" {
					laptop = e.loginDeviceWith(t, "alice", c.password, "laptop", 3)
				}
				// The phone logs in again, with the password, on another
				// connection: the stale one must not sign that login out.
				phone := e.loginDeviceWith(t, "alice", c.password, "phone", 4)

				err := sessionCalls(e, stale.sess, c.password, stale.refresh)[i].call()
				biz, _ := errors.AsType[*common.BizError](err)
				if codeOf(err) != common.ErrorCode_TOKEN_INVALID || !biz.GetSignedOut() {
					t.Errorf("stale %s = %v, want TOKEN_INVALID marked signed_out", name, err)
				}
				for dev, d := range map[string]device{"phone": phone, "laptop": laptop} {
					if _, err := e.svc.ListDevices(ctx, d.sess, nil); err != nil {
						t.Errorf("after the stale %s, the %s: %v", name, dev, err)
					}
				}
			})
		}
	}
}

// A signed-out device's connection whose close was lost does not get its
// route back from the gateway's renewal (which writes back routes a store
// restart lost): it would then receive the user's new messages by PUSH,
// asking nothing. The devices still signed in keep theirs.
func TestRenew_LeavesSignedOutRoutesOut(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	alice := e.register(t, "alice")
	ctx := context.Background()
	phone := e.loginDevice(t, "alice", "phone", 1)
	laptop := e.loginDevice(t, "alice", "laptop", 2)
	if _, err := e.svc.SignOutDevice(ctx, phone.sess,
		&protocol.SignOutDeviceReq{DeviceId: "laptop"}); err != nil {
		t.Fatal(err)
	}

	if err := e.svc.Renew(ctx, []*logicrpc.Session{laptop.sess, phone.sess}); err != nil {
		t.Fatal(err)
	}
	rs, err := e.routes.Lookup(ctx, []int64{alice})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].DeviceID != "phone" {
		t.Fatalf("routes after the renewal = %+v, want the phone's alone", rs)
	}
}
