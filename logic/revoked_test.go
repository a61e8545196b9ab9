package logic

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/event"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
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
			// By token: a password login would sign the first one out.
			if _, err := e.svc.Login(ctx, &protocol.LoginReq{Token: laptop.token},
				&logicrpc.ConnInfo{Gateway: "gw-1:9000", ConnId: 3}); err != nil {
				return err
			}
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

// A connection of a deleted account that its deletion has not closed yet
// (the close is in flight, or was lost) is refused with TOKEN_INVALID on
// every write that is checked, and writes back none of the rows the
// deletion removed.
func TestDeleteAccount_LateWritesAreRefused(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	alice, bob, carol := e.register(t, "alice"), e.register(t, "bob"), e.register(t, "carol")
	sent := e.sendN(t, alice, bob, 1, "before")
	p2p := p2pConvID(alice, bob)
	grp := e.group(t, alice, "G", bob)
	if err := e.deleteAccount(session(alice, 1), testPassword); err != nil {
		t.Fatal(err)
	}

	late := session(alice, 2)
	ctx := context.Background()
	text := []byte("late")
	calls := []struct {
		name string
		call func() error
	}{
		{"block", func() error {
			_, err := e.svc.Block(ctx, late, &protocol.BlockReq{UserId: bob, Blocked: true})
			return err
		}},
		{"set push token", func() error {
			_, err := e.svc.SetPushToken(ctx, late, &protocol.SetPushTokenReq{
				Platform: protocol.PushPlatform_APNS, Token: "late-token", AppId: "app"})
			return err
		}},
		{"mute conv", func() error {
			_, err := e.svc.MuteConv(ctx, late, &protocol.MuteConvReq{ConvId: p2p, Muted: true})
			return err
		}},
		{"set dnd", func() error {
			_, err := e.svc.SetDND(ctx, late, &protocol.SetDNDReq{StartMinute: 60, EndMinute: 120})
			return err
		}},
		{"update profile", func() error {
			nick := "ghost"
			_, err := e.svc.UpdateProfile(ctx, late, &protocol.UpdateProfileReq{Nickname: &nick})
			return err
		}},
		{"clear conv", func() error {
			_, err := e.svc.ClearConv(ctx, late, &protocol.ClearConvReq{ConvId: p2p,
				UpToSeq: sent.Seq})
			return err
		}},
		{"watch presence", func() error {
			_, err := e.svc.WatchPresence(ctx, late, &protocol.WatchPresenceReq{
				UserIds: []int64{bob}})
			return err
		}},
		{"mark read", func() error {
			_, err := e.svc.MarkRead(ctx, late, &protocol.MarkReadReq{ConvId: p2p, Seq: sent.Seq})
			return err
		}},
		{"create group", func() error {
			_, err := e.svc.CreateGroup(ctx, late, &protocol.CreateGroupReq{ClientMsgId: "late",
				Name: "G2", MemberIds: []int64{bob}})
			return err
		}},
		{"manage group", func() error {
			_, err := e.svc.ManageGroup(ctx, late, &protocol.ManageGroupReq{ClientMsgId: "late-add",
				ConvId: grp, Action: common.GroupAction_ADD, UserIds: []int64{carol}})
			return err
		}},
		{"recall", func() error {
			_, err := e.svc.Recall(ctx, late, &protocol.RecallReq{ClientMsgId: "late-recall",
				ConvId: p2p, Seq: sent.Seq})
			return err
		}},
		{"edit", func() error {
			_, err := e.svc.Edit(ctx, late, &protocol.EditReq{ClientMsgId: "late-edit",
				ConvId: p2p, Seq: sent.Seq, ContentType: common.ContentType_TEXT, Content: text})
			return err
		}},
		{"react", func() error {
			_, err := e.svc.React(ctx, late, &protocol.ReactReq{ClientMsgId: "late-react",
				ConvId: p2p, Seq: sent.Seq, Emoji: "👍"})
			return err
		}},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			wantCode(t, c.call(), common.ErrorCode_TOKEN_INVALID)
		})
	}

	left := map[string]int64{
		"push tokens": e.countRows(t, &pushTokenRow{}, "user_id = ?", alice),
		"settings":    e.countRows(t, &settingsRow{}, "user_id = ?", alice),
		"mutes":       e.countRows(t, &muteRow{}, "user_id = ?", alice),
		"blocks":      e.countRows(t, &blockRow{}, "blocker_id = ?", alice),
	}
	for what, n := range left {
		if n != 0 {
			t.Errorf("%d %s of the deleted user written back", n, what)
		}
	}
}

// A deleted account's late SEND is refused without a check of its own: it
// left every group, and the 1:1 send reads the deletion of both its users
// in the statement that reads their blocks. Neither a message nor a new
// conversation is stored.
func TestDeleteAccount_LateSendsAreRefused(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	alice, bob, carol := e.register(t, "alice"), e.register(t, "bob"), e.register(t, "carol")
	e.sendN(t, alice, bob, 1, "before")
	grp := e.group(t, alice, "G", bob)
	if err := e.deleteAccount(session(alice, 1), testPassword); err != nil {
		t.Fatal(err)
	}
	stored := e.countMessages(t)
	for _, conv := range []string{p2pConvID(alice, bob), p2pConvID(alice, carol), grp} {
		_, err := e.sendTo(alice, conv, "late-"+conv)
		wantCode(t, err, common.ErrorCode_FORBIDDEN)
	}
	if n := e.countMessages(t); n != stored {
		t.Fatalf("%d messages stored after the deletion, want %d", n, stored)
	}
	fresh := p2pConvID(alice, carol)
	convs, members := e.countRows(t, &convRow{}, "id = ?", fresh),
		e.countRows(t, &memberRow{}, "conv_id = ?", fresh)
	if convs != 0 || members != 0 {
		t.Fatalf("new conversation of the deleted user stored: %d conv, %d member rows",
			convs, members)
	}
}

// A deleted account's late TYPING reaches no one: its 1:1 peer is told
// nothing, as across a block.
func TestDeleteAccount_LateTypingIsDropped(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	alice, bob := e.register(t, "alice"), e.register(t, "bob")
	e.sendN(t, alice, bob, 1, "hi")
	if err := e.deleteAccount(session(alice, 1), testPassword); err != nil {
		t.Fatal(err)
	}
	sub := e.subscribe(t, e.names.NotifySubject())
	_, err := e.svc.Typing(context.Background(), session(alice, 2),
		typingReq(p2pConvID(alice, bob), true))
	wantCode(t, err, common.ErrorCode_OK)
	noMore(t, e, sub)
}
