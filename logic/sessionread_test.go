package logic

import (
	"context"
	"testing"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// readCalls are the reads and receipts of sess's connection, each returning
// its error: a signed-out device's connection whose close was lost must get
// none of them answered, so that it learns no new history.
func readCalls(e *env, sess *logicrpc.Session, peer int64, grp string) map[string]func() error {
	ctx := context.Background()
	p2p := p2pConvID(sess.UserId, peer)
	return map[string]func() error{
		"sync": func() error {
			_, err := e.svc.Sync(ctx, sess, &protocol.SyncReq{ConvId: p2p})
			return err
		},
		"sync convs": func() error {
			_, err := e.svc.SyncConvs(ctx, sess, &protocol.SyncConvsReq{})
			return err
		},
		"get user": func() error {
			_, err := e.svc.GetUser(ctx, sess, &protocol.GetUserReq{UserId: peer})
			return err
		},
		"get group": func() error {
			_, err := e.svc.GetGroup(ctx, sess, &protocol.GetGroupReq{ConvId: grp})
			return err
		},
		"read counts": func() error {
			_, err := e.svc.ReadCounts(ctx, sess, &protocol.ReadCountsReq{ConvId: p2p,
				Seqs: []int64{1}})
			return err
		},
		"get presence": func() error {
			_, err := e.svc.GetPresence(ctx, sess, &protocol.GetPresenceReq{
				UserIds: []int64{peer}})
			return err
		},
		"watch presence": func() error {
			_, err := e.svc.WatchPresence(ctx, sess, &protocol.WatchPresenceReq{
				UserIds: []int64{peer}})
			return err
		},
		"delivered": func() error {
			_, err := e.svc.Delivered(ctx, sess, &protocol.DeliveredReq{
				Positions: []*protocol.ConvPos{{ConvId: p2p, Seq: 1}}})
			return err
		},
		"mark read": func() error {
			_, err := e.svc.MarkRead(ctx, sess, &protocol.MarkReadReq{ConvId: p2p, Seq: 1})
			return err
		},
		"typing": func() error {
			_, err := e.svc.Typing(ctx, sess, typingReq(p2p, true))
			return err
		},
		"search users": func() error {
			_, err := e.svc.SearchUsers(ctx, sess, &protocol.SearchUsersReq{Query: "bo"})
			return err
		},
		"list devices": func() error {
			_, err := e.svc.ListDevices(ctx, sess, &protocol.ListDevicesReq{})
			return err
		},
		"get settings": func() error {
			_, err := e.svc.GetSettings(ctx, sess, &protocol.GetSettingsReq{})
			return err
		},
	}
}

// A signed-out device's connection whose close was lost reads nothing more:
// every read and receipt answers TOKEN_INVALID, whether the device was
// signed out by its own LOGOUT on another connection, by another device or
// by the deletion of the account, while the device's cached generation is
// still young.
func TestSignedOutSession_ReadsAreRefused(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		signOut func(t *testing.T, e *env, phone, laptop device)
	}{
		{"logout", func(t *testing.T, e *env, _, laptop device) {
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
			_, err := e.svc.ChangePassword(ctx, phone.sess, &protocol.ChangePasswordReq{
				OldPassword: testPassword, NewPassword_: testPassword + "-new"})
			if err != nil {
				t.Fatal(err)
			}
		}},
		{"delete account", func(t *testing.T, e *env, phone, _ device) {
			if err := e.deleteAccount(phone.sess, testPassword); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, sqliteConfig(t))
			alice, bob := e.register(t, "alice"), e.register(t, "bob")
			e.sendN(t, bob, alice, 1, "hello")
			grp := e.group(t, bob, "G", alice)
			phone := e.loginDevice(t, "alice", "phone", 1)
			laptop := e.loginDevice(t, "alice", "laptop", 2)
			// Warm the cache: a revocation must not wait for it to expire.
			callsAnswer(t, readCalls(e, laptop.sess, bob, grp), common.ErrorCode_OK)

			c.signOut(t, e, phone, laptop)
			callsAnswer(t, readCalls(e, laptop.sess, bob, grp), common.ErrorCode_TOKEN_INVALID)
		})
	}
}

// The receipts of a signed-out device's connection reach no one: no
// NOTIFY of its typing, its read position or its devices' positions goes
// out, and its positions are not stored.
func TestSignedOutSession_ReceiptsReachNoPeer(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	alice, bob := e.register(t, "alice"), e.register(t, "bob")
	sent := e.sendN(t, bob, alice, 1, "hello")
	laptop := e.loginDevice(t, "alice", "laptop", 2)
	if _, err := e.svc.Logout(context.Background(), laptop.sess, &protocol.LogoutReq{}); err != nil {
		t.Fatal(err)
	}
	sub := e.subscribe(t, e.names.NotifySubject())
	for name, call := range readCalls(e, laptop.sess, bob, "") {
		switch name {
		case "delivered", "mark read", "typing":
			if got := codeOf(call()); got != common.ErrorCode_TOKEN_INVALID {
				t.Errorf("%s = %v, want TOKEN_INVALID", name, got)
			}
		}
	}
	noMore(t, e, sub)
	conv := p2pConvID(alice, bob)
	if n := e.countRows(t, &memberRow{}, "conv_id = ? AND user_id = ? AND read_seq >= ?",
		conv, alice, sent.Seq); n != 0 {
		t.Errorf("read position stored by the signed-out device")
	}
	if n := e.countRows(t, &deliveredRow{}, "device_id = ?", "laptop"); n != 0 {
		t.Errorf("%d delivered positions stored by the signed-out device", n)
	}
}

// The read paths check the device's generation as the send path does: a
// call whose device is cached costs no query, a call whose device is not
// one at most.
func TestReads_GenerationReadsPerCall(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	alice, bob := e.register(t, "alice"), e.register(t, "bob")
	e.sendN(t, bob, alice, 1, "hello")
	grp := e.group(t, bob, "G", alice)
	laptop := e.loginDevice(t, "alice", "laptop", 2)
	calls := readCalls(e, laptop.sess, bob, grp)
	for _, name := range []string{"sync", "sync convs", "get user", "get group", "read counts",
		"get presence", "delivered", "typing", "search users", "list devices", "get settings"} {
		before := e.svc.gens.reads.Load()
		if err := calls[name](); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := int64(0)
		if name == "sync" { // the first: the cache is cold
			want = 1
		}
		if got := e.svc.gens.reads.Load() - before; got != want {
			t.Errorf("%s: %d generation reads, want %d", name, got, want)
		}
	}
}

// A signed-out device cannot sign out the devices that are still signed in.
func TestSignedOutSession_CannotSignOutOthers(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, sqliteConfig(t))
	alice, bob := e.register(t, "alice"), e.register(t, "bob")
	e.sendN(t, bob, alice, 1, "hello")
	grp := e.group(t, bob, "G", alice)
	phone := e.loginDevice(t, "alice", "phone", 1)
	laptop := e.loginDevice(t, "alice", "laptop", 2)
	if _, err := e.svc.SignOutDevice(ctx, phone.sess,
		&protocol.SignOutDeviceReq{DeviceId: "laptop"}); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.SignOutDevice(ctx, laptop.sess, &protocol.SignOutDeviceReq{DeviceId: "phone"})
	wantCode(t, err, common.ErrorCode_TOKEN_INVALID)
	callsAnswer(t, readCalls(e, phone.sess, bob, grp), common.ErrorCode_OK)
}
