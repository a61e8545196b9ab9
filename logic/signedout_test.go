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
