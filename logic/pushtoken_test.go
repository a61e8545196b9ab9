package logic

import (
	"context"
	"testing"
	"time"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// setToken registers a push token for ss's device and fails t on error.
func (e *env) setToken(t *testing.T, ss *logicrpc.Session, token string) {
	t.Helper()
	_, err := e.svc.SetPushToken(context.Background(), ss,
		&protocol.SetPushTokenReq{Platform: protocol.PushPlatform_APNS, Token: token, AppId: "app"})
	if err != nil {
		t.Fatalf("set push token %q: %v", token, err)
	}
}

// offline asks OfflineTargets for a message of conv from sender to to, with
// online devices, and returns the targets by device.
func (e *env) offline(t *testing.T, conv string, sender, to int64,
	online ...*logicrpc.DeviceRef) map[string]*logicrpc.OfflineTarget {
	t.Helper()
	resp, err := e.svc.OfflineTargets(context.Background(), &logicrpc.OfflineTargetsReq{
		ConvId: conv, SenderId: sender, Recipients: []int64{sender, to}, Online: online,
		AtMs: time.Now().UnixMilli()})
	if err != nil {
		t.Fatalf("offline targets: %v", err)
	}
	out := map[string]*logicrpc.OfflineTarget{}
	for _, tg := range resp.Targets {
		out[tg.DeviceId] = tg
	}
	return out
}

func TestOfflineTargets_TokensBadgeMuteDND(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		phone := e.loginDevice(t, "bob", "phone", 1)
		laptop := e.loginDevice(t, "bob", "laptop", 2)
		e.setToken(t, phone.sess, "old-token")
		e.setToken(t, phone.sess, "phone-token") // replaces
		e.setToken(t, laptop.sess, "laptop-token")
		e.setToken(t, session(alice, 7), "alice-token")
		// A phone that switches accounts takes its token along.
		e.setToken(t, &logicrpc.Session{UserId: alice, DeviceId: "tablet", ConnId: 8},
			"shared-token")
		e.setToken(t, &logicrpc.Session{UserId: bob, DeviceId: "old-phone", ConnId: 9},
			"shared-token")
		e.sendN(t, alice, bob, 3, "m")
		conv := p2pConvID(alice, bob)

		got := e.offline(t, conv, alice, bob, &logicrpc.DeviceRef{UserId: bob, DeviceId: "laptop"})
		if len(got) != 2 || got["phone"] == nil || got["old-phone"] == nil {
			t.Fatalf("targets %v, want bob's phones only (laptop online, alice sends)", got)
		}
		if back := e.offline(t, conv, bob, alice); len(back) != 1 || back["phone"] == nil {
			t.Fatalf("alice's targets %v, want only the device whose token stayed hers", back)
		}
		p := got["phone"]
		if p.Token != "phone-token" || p.Badge != 3 || p.Muted || p.Dnd || p.AppId != "app" ||
			p.Platform != protocol.PushPlatform_APNS {
			t.Fatalf("phone target %+v, want phone-token with badge 3", p)
		}

		if _, err := e.svc.MuteConv(ctx, laptop.sess,
			&protocol.MuteConvReq{ConvId: conv, Muted: true}); err != nil {
			t.Fatal(err)
		}
		if p := e.offline(t, conv, alice, bob)["phone"]; p == nil || !p.Muted {
			t.Fatalf("after mute: %+v, want muted", p)
		}
		sum := e.syncConvs(t, phone.sess, "", 10)
		if len(sum.Convs) != 1 || !sum.Convs[0].Muted {
			t.Fatalf("SyncConvs after mute: %+v, want the conversation muted", sum.Convs)
		}
		now := time.Now().UTC()
		start := int32(now.Hour()*60 + now.Minute())
		set, err := e.svc.SetDND(ctx, phone.sess, &protocol.SetDNDReq{
			StartMinute: (start + 23*60) % minutesPerDay, EndMinute: (start + 60) % minutesPerDay})
		if err != nil || !set.DndEnabled {
			t.Fatalf("set dnd: %+v, %v", set, err)
		}
		if p := e.offline(t, conv, alice, bob)["phone"]; p == nil || !p.Dnd {
			t.Fatalf("inside the DND window: %+v, want dnd", p)
		}
		read, err := e.svc.GetSettings(ctx, laptop.sess, &protocol.GetSettingsReq{})
		if err != nil || *read != *set {
			t.Fatalf("settings on the other device %+v (%v), want %+v", read, err, set)
		}

		if _, err := e.svc.Logout(ctx, phone.sess, &protocol.LogoutReq{}); err != nil {
			t.Fatal(err)
		}
		if got := e.offline(t, conv, alice, bob); got["phone"] != nil || got["laptop"] == nil {
			t.Fatalf("after phone logout: %v, want the laptop only", got)
		}
	})
}

func TestPushTokens_RemovedOnSignOutAndPasswordChange(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		phone := e.loginDevice(t, "bob", "phone", 1)
		laptop := e.loginDevice(t, "bob", "laptop", 2)
		tablet := e.loginDevice(t, "bob", "tablet", 3)
		for _, d := range []device{phone, laptop, tablet} {
			e.setToken(t, d.sess, d.sess.DeviceId+"-token")
		}
		conv := p2pConvID(alice, bob)
		_, err := e.svc.SignOutDevice(ctx, laptop.sess,
			&protocol.SignOutDeviceReq{DeviceId: "phone"})
		if err != nil {
			t.Fatal(err)
		}
		if got := e.offline(t, conv, alice, bob); len(got) != 2 || got["phone"] != nil {
			t.Fatalf("after signing the phone out: %v", got)
		}
		changed, err := e.svc.ChangePassword(ctx, laptop.sess,
			&protocol.ChangePasswordReq{OldPassword: testPassword, NewPassword_: "brand new pw"})
		if err != nil {
			t.Fatal(err)
		}
		if got := e.offline(t, conv, alice, bob); len(got) != 1 || got["laptop"] == nil {
			t.Fatalf("after a password change on the laptop: %v, want the laptop only", got)
		}
		e.setToken(t, renewed(laptop.sess, changed), "")
		if got := e.offline(t, conv, alice, bob); len(got) != 0 {
			t.Fatalf("after removing the token: %v", got)
		}
	})
}

func TestSettings_Validation(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		ss := session(alice, 1)
		cases := []struct {
			name string
			call func() error
			want common.ErrorCode
		}{
			{"unauthenticated", func() error {
				_, err := e.svc.GetSettings(ctx, &logicrpc.Session{}, nil)
				return err
			}, common.ErrorCode_UNAUTHENTICATED},
			{"dnd minute out of range", func() error {
				_, err := e.svc.SetDND(ctx, ss, &protocol.SetDNDReq{StartMinute: 1440})
				return err
			}, common.ErrorCode_BAD_REQUEST},
			{"dnd offset out of range", func() error {
				_, err := e.svc.SetDND(ctx, ss, &protocol.SetDNDReq{UtcOffsetMinutes: 15 * 60})
				return err
			}, common.ErrorCode_BAD_REQUEST},
			{"mute a conversation of others", func() error {
				_, err := e.svc.MuteConv(ctx, ss,
					&protocol.MuteConvReq{ConvId: p2pConvID(bob, bob+100), Muted: true})
				return err
			}, common.ErrorCode_FORBIDDEN},
			{"unknown platform", func() error {
				_, err := e.svc.SetPushToken(ctx, ss, &protocol.SetPushTokenReq{Token: "x"})
				return err
			}, common.ErrorCode_BAD_REQUEST},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) { wantCode(t, c.call(), c.want) })
		}
	})
}

func TestSettingsRow_QuietAt(t *testing.T) {
	at := func(h, m int) time.Time { return time.Date(2026, 1, 1, h, m, 0, 0, time.UTC) }
	night := settingsRow{DNDStart: 22 * 60, DNDEnd: 7 * 60}
	cases := []struct {
		name string
		row  settingsRow
		t    time.Time
		want bool
	}{
		{"off", settingsRow{}, at(3, 0), false},
		{"inside a daytime window", settingsRow{DNDStart: 60, DNDEnd: 120}, at(1, 30), true},
		{"at the end", settingsRow{DNDStart: 60, DNDEnd: 120}, at(2, 0), false},
		{"overnight, after midnight", night, at(3, 0), true},
		{"overnight, midday", night, at(12, 0), false},
		{"offset east", settingsRow{DNDStart: 22 * 60, DNDEnd: 7 * 60, UTCOffset: 120},
			at(21, 0), true},
		{"offset west", settingsRow{DNDStart: 0, DNDEnd: 60, UTCOffset: -60}, at(0, 30), false},
	}
	for _, c := range cases {
		if got := c.row.quietAt(c.t); got != c.want {
			t.Errorf("%s: quietAt = %t, want %t", c.name, got, c.want)
		}
	}
}

// OfflineTargets marks the targets of the users the request names as
// mentioned, muted or not, and no one else.
func TestOfflineTargets_Mentioned(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob, carol := e.register(t, "alice"), e.register(t, "bob"), e.register(t, "carol")
		g := e.group(t, alice, "g", bob, carol)
		e.setToken(t, session(bob, 2), "bob-token")
		e.setToken(t, session(carol, 3), "carol-token")
		if _, err := e.svc.MuteConv(context.Background(), session(bob, 2),
			&protocol.MuteConvReq{ConvId: g, Muted: true}); err != nil {
			t.Fatal(err)
		}
		resp, err := e.svc.OfflineTargets(context.Background(), &logicrpc.OfflineTargetsReq{
			ConvId: g, SenderId: alice, Recipients: []int64{alice, bob, carol},
			Mentioned: []int64{bob}, AtMs: time.Now().UnixMilli()})
		if err != nil {
			t.Fatal(err)
		}
		got := map[int64]*logicrpc.OfflineTarget{}
		for _, tg := range resp.Targets {
			got[tg.UserId] = tg
		}
		if b, c := got[bob], got[carol]; b == nil || c == nil || !b.Mentioned || !b.Muted ||
			c.Mentioned {
			t.Fatalf("targets %v, want bob muted and mentioned, carol not mentioned", got)
		}
	})
}

// A notification's badge is the sum of SyncConvs' unread: reaction events
// in the unread range are not messages to read, and a cleared history has
// nothing left unread.
func TestOfflineTargets_BadgeAgreesWithSyncConvs(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob, carol := e.register(t, "alice"), e.register(t, "bob"), e.register(t, "carol")
		phone := e.loginDevice(t, "bob", "phone", 1)
		e.setToken(t, phone.sess, "phone-token")
		conv := e.sendN(t, alice, bob, 2, "m").ConvId
		e.mustReact(t, alice, conv, 1, "👍", false)
		e.mustReact(t, alice, conv, 1, "😂", false)
		e.mustReact(t, alice, conv, 2, "👍", false)
		e.sendN(t, carol, bob, 2, "c")
		e.mustReact(t, carol, p2pConvID(carol, bob), 2, "🎉", false)
		e.clear(t, phone.sess, p2pConvID(carol, bob), 1, false)

		var unread int64
		for _, c := range e.syncConvs(t, phone.sess, "", 10).Convs {
			unread += c.Unread
		}
		if unread != 3 {
			t.Fatalf("SyncConvs unread %d, want 3 messages", unread)
		}
		p := e.offline(t, conv, alice, bob)["phone"]
		if p == nil || int64(p.Badge) != unread {
			t.Fatalf("phone target %+v, want badge %d as SyncConvs", p, unread)
		}
	})
}
