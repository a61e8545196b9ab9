package logic

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/resonance-im/resonance/internal/testwait"
	"github.com/resonance-im/resonance/internal/tokengen"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// renewed returns sess as the gateway renews it after CHANGE_PASSWORD:
// at the generation of the access token the reply carries.
func renewed(sess *logicrpc.Session, resp *protocol.ChangePasswordResp) *logicrpc.Session {
	r := *sess
	r.TokenGen = tokengen.Generation(resp.GetToken())
	return &r
}

// signedOutCalls are the calls a signed-out device's connection must no
// longer make, each returning its error.
func signedOutCalls(e *env, sess *logicrpc.Session, peer int64,
	tag string) map[string]func() error {
	ctx := context.Background()
	return map[string]func() error{
		"set push token": func() error {
			_, err := e.svc.SetPushToken(ctx, sess, &protocol.SetPushTokenReq{
				Platform: protocol.PushPlatform_APNS, Token: "tok-" + tag, AppId: "app"})
			return err
		},
		"mute conv": func() error {
			_, err := e.svc.MuteConv(ctx, sess, &protocol.MuteConvReq{
				ConvId: p2pConvID(sess.UserId, peer), Muted: true})
			return err
		},
		"send": func() error {
			_, err := e.svc.Send(ctx, sess, textReq("send-"+tag, peer))
			return err
		},
		"send batch": func() error {
			out, err := e.svc.SendBatch(ctx, sess, []*protocol.SendReq{
				textReq("batch-a-"+tag, peer), textReq("batch-b-"+tag, peer)})
			if err != nil {
				return err
			}
			// Both requests of the run answer alike; the first stands for them.
			for _, o := range out {
				if o.GetErr() != nil {
					return o.Err
				}
			}
			return nil
		},
	}
}

// callsAnswer fails t unless every call of calls answers code.
func callsAnswer(t *testing.T, calls map[string]func() error, code common.ErrorCode) {
	t.Helper()
	for name, call := range calls {
		if got := codeOf(call()); got != code {
			t.Errorf("%s = %v, want %v", name, got, code)
		}
	}
}

// A connection of a signed-out device whose close was lost goes on calling
// logic with the generation it logged in at. Logic refuses its writes and
// sends with TOKEN_INVALID, whichever call signed it out; the device logging
// in again works.
func TestSignedOutSession_IsRefused(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		signOut func(t *testing.T, e *env, phone, laptop device)
	}{
		{"logout", func(t *testing.T, e *env, _, laptop device) {
			// The gateway's close of its own connection after the ack is lost.
			if _, err := e.svc.Logout(ctx, laptop.sess, &protocol.LogoutReq{}); err != nil {
				t.Fatal(err)
			}
		}},
		{"sign out device", func(t *testing.T, e *env, phone, _ device) {
			_, err := e.svc.SignOutDevice(ctx, phone.sess,
				&protocol.SignOutDeviceReq{DeviceId: "laptop"})
			if err != nil {
				t.Fatal(err)
			}
		}},
		{"change password", func(t *testing.T, e *env, phone, _ device) {
			resp, err := e.svc.ChangePassword(ctx, phone.sess, &protocol.ChangePasswordReq{
				OldPassword: testPassword, NewPassword_: testPassword + "-new"})
			if err != nil {
				t.Fatal(err)
			}
			// And back, from the phone's renewed session, so that the laptop
			// logs in again below with the password it knows.
			_, err = e.svc.ChangePassword(ctx, renewed(phone.sess, resp), &protocol.ChangePasswordReq{
				OldPassword: testPassword + "-new", NewPassword_: testPassword})
			if err != nil {
				t.Fatal(err)
			}
		}},
		{"refresh token reuse", func(t *testing.T, e *env, _, laptop device) {
			fresh, err := e.svc.Refresh(ctx, laptop.sess,
				&protocol.RefreshReq{RefreshToken: laptop.refresh})
			if err != nil {
				t.Fatal(err)
			}
			// A retry of the first within its grace displaces fresh; fresh
			// coming back means two parties hold the device.
			if _, err := e.svc.Refresh(ctx, laptop.sess,
				&protocol.RefreshReq{RefreshToken: laptop.refresh}); err != nil {
				t.Fatal(err)
			}
			_, err = e.svc.Refresh(ctx, laptop.sess,
				&protocol.RefreshReq{RefreshToken: fresh.RefreshToken})
			wantCode(t, err, common.ErrorCode_TOKEN_INVALID)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, sqliteConfig(t))
			alice, bob := e.register(t, "alice"), e.register(t, "bob")
			phone := e.loginDevice(t, "alice", "phone", 1)
			laptop := e.loginDevice(t, "alice", "laptop", 2)
			e.sendN(t, bob, alice, 1, "hello") // the conversation MUTE_CONV names
			// Warm the send path's cache: a revocation must not wait for it.
			callsAnswer(t, signedOutCalls(e, laptop.sess, bob, "before"), common.ErrorCode_OK)

			c.signOut(t, e, phone, laptop)
			callsAnswer(t, signedOutCalls(e, laptop.sess, bob, "late"),
				common.ErrorCode_TOKEN_INVALID)

			again := e.loginDevice(t, "alice", "laptop", 3)
			callsAnswer(t, signedOutCalls(e, again.sess, bob, "again"), common.ErrorCode_OK)
			callsAnswer(t, signedOutCalls(e, laptop.sess, bob, "late-again"),
				common.ErrorCode_TOKEN_INVALID)
		})
	}
}

// CHANGE_PASSWORD bumps the caller's own generation too; its connection
// goes on with the generation of the token the reply carries, as the
// gateway renews it, and the session it had before is refused.
func TestChangePassword_OwnConnectionKeepsWorking(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	alice, bob := e.register(t, "alice"), e.register(t, "bob")
	e.sendN(t, bob, alice, 1, "hello")
	phone := e.loginDevice(t, "alice", "phone", 1)
	resp, err := e.svc.ChangePassword(context.Background(), phone.sess,
		&protocol.ChangePasswordReq{OldPassword: testPassword, NewPassword_: "brand new pw"})
	if err != nil {
		t.Fatal(err)
	}
	now := renewed(phone.sess, resp)
	if now.TokenGen <= phone.sess.TokenGen {
		t.Fatalf("generation %d after the change, had %d", now.TokenGen, phone.sess.TokenGen)
	}
	callsAnswer(t, signedOutCalls(e, now, bob, "renewed"), common.ErrorCode_OK)
	callsAnswer(t, signedOutCalls(e, phone.sess, bob, "stale"), common.ErrorCode_TOKEN_INVALID)
}

// A gateway older than Session.token_gen sends 0: not checked, so its
// connections keep working through a rolling upgrade, signed out or not.
func TestSessionWithoutGeneration_IsNotChecked(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	alice, bob := e.register(t, "alice"), e.register(t, "bob")
	e.sendN(t, bob, alice, 1, "hello")
	laptop := e.loginDevice(t, "alice", "laptop", 2)
	old := *laptop.sess
	old.TokenGen = 0
	callsAnswer(t, signedOutCalls(e, &old, bob, "before"), common.ErrorCode_OK)
	if _, err := e.svc.Logout(context.Background(), laptop.sess, &protocol.LogoutReq{}); err != nil {
		t.Fatal(err)
	}
	callsAnswer(t, signedOutCalls(e, &old, bob, "after"), common.ErrorCode_OK)
}

// The send path reads the generations of a call's devices at most once per
// call, in one query, and not at all while they are cached.
func TestSendRuns_GenerationReadsPerCall(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	e.register(t, "alice")
	e.register(t, "carol")
	bob := e.register(t, "bob")
	phone := e.loginDevice(t, "alice", "phone", 1)
	carol := e.loginDevice(t, "carol", "phone", 2)
	runs := func(tag string) []*logicrpc.SendRun {
		return []*logicrpc.SendRun{
			{Session: phone.sess, Reqs: []*protocol.SendReq{textReq(tag+"-a1", bob),
				textReq(tag+"-a2", bob)}},
			{Session: carol.sess, Reqs: []*protocol.SendReq{textReq(tag+"-c1", bob)}},
			{Session: phone.sess, Reqs: []*protocol.SendReq{textReq(tag+"-a3", bob)}},
		}
	}
	for i, want := range []int64{1, 1} { // the second call hits the cache
		out, err := e.svc.SendRuns(context.Background(), runs(string(rune('p'+i))))
		if err != nil {
			t.Fatal(err)
		}
		for _, run := range out {
			for _, o := range run {
				if o.GetErr() != nil {
					t.Fatalf("call %d: %v", i, o.Err)
				}
			}
		}
		if got := e.svc.gens.reads.Load(); got != want {
			t.Fatalf("after call %d: %d generation reads, want %d", i, got, want)
		}
	}
}

// A revocation on one logic instance reaches the send path of another
// through NATS: its cached generation of the device is forgotten, and the
// signed-out device's connection is refused there too, long before the
// cache would expire.
func TestSignedOutSession_RefusedByOtherInstance(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	alice, bob := e.register(t, "alice"), e.register(t, "bob")
	e.sendN(t, bob, alice, 1, "hello")
	laptop := e.loginDevice(t, "alice", "laptop", 2)
	other, err := newService(context.Background(), e.cfg, e.db, e.deps, testArgon)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Stop() })
	other.gens.mu.Lock()
	other.gens.ttl = time.Hour // only the event can make it read again
	other.gens.mu.Unlock()

	// The other instance caches the laptop's generation.
	if _, err := other.Send(context.Background(), laptop.sess, textReq("warm", bob)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Logout(context.Background(), laptop.sess, &protocol.LogoutReq{}); err != nil {
		t.Fatal(err)
	}
	n := 0
	testwait.For(t, 5*time.Second, "the other instance refusing the signed-out laptop", func() bool {
		n++
		_, err := other.Send(context.Background(), laptop.sess,
			textReq(fmt.Sprintf("late-%d", n), bob))
		return codeOf(err) == common.ErrorCode_TOKEN_INVALID
	})
}
