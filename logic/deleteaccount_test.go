package logic

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/internal/ratelimit"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/event"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// deleteAccount runs DeleteAccount for sess with password.
func (e *env) deleteAccount(sess *logicrpc.Session, password string) error {
	_, err := e.svc.DeleteAccount(context.Background(), sess,
		&protocol.DeleteAccountReq{Password: password})
	return err
}

// countRows counts the rows of model matching where.
func (e *env) countRows(t *testing.T, model any, where string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := e.db.Model(model).Where(where, args...).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// accountDeleted returns the connections kicked with ACCOUNT_DELETED.
func (e *env) accountDeleted(t *testing.T) []int64 {
	t.Helper()
	var conns []int64
	for _, k := range e.kickEvents(t) {
		if k.Reason == protocol.CloseReason_ACCOUNT_DELETED {
			conns = append(conns, k.ConnId)
		}
	}
	return conns
}

func TestDeleteAccount_TombstonesAndSignsOut(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		alice, bob, carol := e.register(t, "alice"), e.register(t, "bob"), e.register(t, "carol")
		phone := e.loginDevice(t, "alice", "phone", 1)
		laptop := e.loginDevice(t, "alice", "laptop", 2)
		sent, err := e.svc.Send(ctx, phone.sess, textReq("a1", bob))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Send(ctx, session(bob, 3), textReq("b1", alice)); err != nil {
			t.Fatal(err)
		}
		e.setToken(t, phone.sess, "apns-phone")
		_, err = e.svc.SetDND(ctx, phone.sess, &protocol.SetDNDReq{StartMinute: 60, EndMinute: 120})
		wantCode(t, err, common.ErrorCode_OK)
		_, err = e.svc.MuteConv(ctx, phone.sess, &protocol.MuteConvReq{ConvId: sent.ConvId,
			Muted: true})
		wantCode(t, err, common.ErrorCode_OK)
		_, err = e.svc.Block(ctx, phone.sess, &protocol.BlockReq{UserId: carol, Blocked: true})
		wantCode(t, err, common.ErrorCode_OK)
		_, err = e.svc.Block(ctx, session(carol, 4), &protocol.BlockReq{UserId: alice, Blocked: true})
		wantCode(t, err, common.ErrorCode_OK)

		wantCode(t, e.deleteAccount(phone.sess, "wrong password"),
			common.ErrorCode_INVALID_CREDENTIALS)
		wantCode(t, e.deleteAccount(&logicrpc.Session{}, testPassword),
			common.ErrorCode_UNAUTHENTICATED)
		if err := e.deleteAccount(phone.sess, testPassword); err != nil {
			t.Fatal(err)
		}

		// Signed out everywhere; the gateway closes the asking connection.
		for name, tok := range map[string]string{"phone": phone.token, "laptop": laptop.token,
			"laptop refresh": laptop.refresh} {
			if c := e.tokenLogin(t, tok); c != common.ErrorCode_TOKEN_INVALID {
				t.Fatalf("%s token after deletion: %s", name, c)
			}
		}
		if got := e.accountDeleted(t); len(got) != 1 || got[0] != 2 {
			t.Fatalf("closed with ACCOUNT_DELETED: %v, want the laptop's conn 2", got)
		}
		_, err = e.svc.Login(ctx, &protocol.LoginReq{Username: "alice", Password: testPassword},
			&logicrpc.ConnInfo{Gateway: "gw-1:9000", ConnId: 5})
		wantCode(t, err, common.ErrorCode_INVALID_CREDENTIALS)
		// A late request of a connection not closed yet finds no account.
		wantCode(t, e.deleteAccount(phone.sess, testPassword), common.ErrorCode_TOKEN_INVALID)

		// Everything of the user's but its row and its messages is gone.
		for what, n := range map[string]int64{
			"push tokens": e.countRows(t, &pushTokenRow{}, "user_id = ?", alice),
			"settings":    e.countRows(t, &settingsRow{}, "user_id = ?", alice),
			"mutes":       e.countRows(t, &muteRow{}, "user_id = ?", alice),
			"blocks": e.countRows(t, &blockRow{}, "blocker_id = ? OR blocked_id = ?",
				alice, alice),
		} {
			if n != 0 {
				t.Errorf("%d %s left", n, what)
			}
		}

		// The name is free again, for a new id.
		again := e.register(t, "alice")
		if again == alice {
			t.Fatalf("re-registered alice got the deleted id %d", again)
		}
		got, err := e.svc.GetUser(ctx, session(bob, 3), &protocol.GetUserReq{UserId: alice})
		if err != nil {
			t.Fatal(err)
		}
		if !got.Deleted || got.Username != "" || got.Nickname != "" || got.UserId != alice {
			t.Fatalf("GET_USER of the deleted id = %+v", got)
		}
		got, err = e.svc.GetUser(ctx, session(bob, 3), &protocol.GetUserReq{Username: "alice"})
		if err != nil || got.UserId != again || got.Deleted {
			t.Fatalf("GET_USER alice = %+v, %v; want the new account %d", got, err, again)
		}
		for _, q := range []string{"ali", "del", "deleted"} {
			found, err := e.svc.SearchUsers(ctx, session(bob, 3), &protocol.SearchUsersReq{Query: q})
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range found.Users {
				if u.UserId == alice {
					t.Fatalf("search %q found the deleted user: %+v", q, found.Users)
				}
			}
		}

		// The peer reads the old conversation but may not write to it, nor
		// anyone start one, nor add the deleted user to a group.
		msgs := e.syncAll(t, bob, sent.ConvId)
		if len(msgs) != 2 {
			t.Fatalf("bob reads %d messages of the 1:1, want 2", len(msgs))
		}
		_, err = e.svc.Send(ctx, session(bob, 3), textReq("b2", alice))
		wantCode(t, err, common.ErrorCode_FORBIDDEN)
		_, err = e.svc.Send(ctx, session(carol, 4), textReq("c1", alice))
		wantCode(t, err, common.ErrorCode_FORBIDDEN)
		g := e.group(t, bob, "G")
		_, err = e.manage(bob, g, common.GroupAction_ADD, []int64{alice}, "", 0)
		wantCode(t, err, common.ErrorCode_NOT_FOUND)
	})
}

func TestDeleteAccount_LeavesGroups(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		carol, dave := e.register(t, "carol"), e.register(t, "dave")

		// g1: carol is the only admin, so she inherits though bob joined as
		// early and has the lower id.
		g1 := e.group(t, alice, "G1", bob, carol)
		_, err := e.manage(alice, g1, common.GroupAction_SET_ROLE, []int64{carol}, "",
			common.GroupRole_ADMIN)
		wantCode(t, err, common.ErrorCode_OK)
		// g2: no admin; dave joined first, bob later.
		g2 := e.group(t, alice, "G2", dave)
		_, err = e.manage(alice, g2, common.GroupAction_ADD, []int64{bob}, "", 0)
		wantCode(t, err, common.ErrorCode_OK)
		// g3: alice alone; g4: bob's, alice a member.
		g3 := e.group(t, alice, "G3")
		g4 := e.group(t, bob, "G4", alice)

		if err := e.deleteAccount(session(alice, 1), testPassword); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			conv   string
			reader int64
			owner  int64
			events []common.GroupAction // the last ones, oldest first
		}{
			{conv: g1, reader: carol, owner: carol,
				events: []common.GroupAction{common.GroupAction_SET_ROLE, common.GroupAction_LEAVE}},
			{conv: g2, reader: dave, owner: dave,
				events: []common.GroupAction{common.GroupAction_SET_ROLE, common.GroupAction_LEAVE}},
			{conv: g4, reader: bob, owner: bob,
				events: []common.GroupAction{common.GroupAction_CREATE, common.GroupAction_LEAVE}},
		} {
			info, err := e.svc.GetGroup(ctx, session(tc.reader, 1), &protocol.GetGroupReq{ConvId: tc.conv})
			if err != nil {
				t.Fatal(err)
			}
			if info.OwnerId != tc.owner {
				t.Errorf("%s owner = %d, want %d", info.Name, info.OwnerId, tc.owner)
			}
			for _, m := range info.Members {
				if m.UserId == alice {
					t.Errorf("%s still lists the deleted user: %+v", info.Name, info.Members)
				}
			}
			msgs := e.syncAll(t, tc.reader, tc.conv)
			last := msgs[len(msgs)-len(tc.events):]
			for i, want := range tc.events {
				ev := decodeGroupEvent(t, last[i])
				if ev.Action != want || last[i].SenderId != alice && want != common.GroupAction_CREATE {
					t.Errorf("%s event %d = %s by %d, want %s by alice", info.Name, i, ev.Action,
						last[i].SenderId, want)
				}
				if want == common.GroupAction_SET_ROLE &&
					(ev.Role != common.GroupRole_OWNER || len(ev.Targets) != 1 || ev.Targets[0] != tc.owner) {
					t.Errorf("%s hand-over = %+v, want ownership to %d", info.Name, ev, tc.owner)
				}
			}
		}
		var c convRow
		if err := e.db.Where("id = ?", g3).Take(&c).Error; err != nil {
			t.Fatal(err)
		}
		if !c.Dismissed || c.MemberCount != 0 {
			t.Fatalf("alice's lone group: dismissed %v, %d members", c.Dismissed, c.MemberCount)
		}
		if n := e.countRows(t, &memberRow{}, "user_id = ? AND left_seq = 0", alice); n != 0 {
			t.Fatalf("%d memberships of the deleted user left", n)
		}
	})
}

// TestDeleteAccount_RetryFinishesWhatAFailureLeft plays a first attempt that
// handed a group over and stopped before the rest: the retry leaves the
// group once and hands nothing over twice.
func TestDeleteAccount_RetryFinishesWhatAFailureLeft(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	ctx := context.Background()
	alice, bob := e.register(t, "alice"), e.register(t, "bob")
	g := e.group(t, alice, "G", bob)
	sess := session(alice, 1)
	var r memberRow
	if err := e.db.Where("conv_id = ? AND user_id = ?", g, alice).Take(&r).Error; err != nil {
		t.Fatal(err)
	}
	idFor := func(step string) string { return "account-delete:" + step + ":" + g + ":1" }
	if err := e.svc.handOver(ctx, sess, g, idFor); err != nil {
		t.Fatal(err)
	}

	if err := e.deleteAccount(sess, testPassword); err != nil {
		t.Fatal(err)
	}
	var actions []common.GroupAction
	for _, m := range e.syncAll(t, bob, g) {
		actions = append(actions, decodeGroupEvent(t, m).Action)
	}
	want := []common.GroupAction{common.GroupAction_CREATE, common.GroupAction_SET_ROLE,
		common.GroupAction_LEAVE}
	if len(actions) != len(want) || actions[1] != want[1] || actions[2] != want[2] {
		t.Fatalf("history %v, want %v", actions, want)
	}
	// The tombstone, run again, changes nothing.
	before := e.countRows(t, &userRow{}, "id = ? AND deleted_ms <> 0", alice)
	if err := tombstoneUser(e.db, alice, 1); err != nil {
		t.Fatal(err)
	}
	var u userRow
	if err := e.db.Where("id = ?", alice).Take(&u).Error; err != nil {
		t.Fatal(err)
	}
	if before != 1 || u.DeletedMs == 1 || u.PasswordHash != "" || u.Username != "deleted#1" {
		t.Fatalf("tombstone after a second run: %+v", u)
	}
}

// TestDeleteAccount_WrongPasswordsAreRateLimited checks that a stolen access
// token gives no more password guesses than a login does.
func TestDeleteAccount_WrongPasswordsAreRateLimited(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	alice := e.register(t, "alice")
	e.svc.limits.account = ratelimit.New(ratelimit.Config{Burst: 3, Per: 1 << 40})
	sess := session(alice, 1)
	for i := range 3 {
		wantCode(t, e.deleteAccount(sess, "guess "+string(rune('a'+i))),
			common.ErrorCode_INVALID_CREDENTIALS)
	}
	wantCode(t, e.deleteAccount(sess, testPassword), common.ErrorCode_RATE_LIMITED)
	_, err := e.svc.Login(context.Background(),
		&protocol.LoginReq{Username: "alice", Password: testPassword}, testConn)
	wantCode(t, err, common.ErrorCode_RATE_LIMITED)
}

// A connection the deletion has not closed yet cannot create a group the
// deleted user would own: its session is refused as revoked (see
// authorizeWrite), and usersExist would refuse the owner anyway.
func TestDeleteAccount_LateCreateGroupIsRefused(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	alice, bob := e.register(t, "alice"), e.register(t, "bob")
	if err := e.deleteAccount(session(alice, 1), testPassword); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.CreateGroup(context.Background(), session(alice, 1),
		&protocol.CreateGroupReq{ClientMsgId: "late", Name: "G", MemberIds: []int64{bob}})
	wantCode(t, err, common.ErrorCode_TOKEN_INVALID)
}

// The user's watchers hear that its devices are gone: the routes of the
// connections closed for the deletion are removed before those
// connections' Disconnect, which then publishes nothing.
func TestDeleteAccount_PublishesPresence(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	alice := e.register(t, "alice")
	sub := e.subscribe(t, e.names.PresenceSubject())
	laptop := e.loginDevice(t, "alice", "laptop", 2)
	if err := e.deleteAccount(session(alice, 1), testPassword); err != nil {
		t.Fatal(err)
	}
	for i, what := range []string{"the laptop's login", "the deletion"} {
		msg, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("presence event %d (%s): %v", i, what, err)
		}
		ev := event.NewPresenceEvent()
		if err := codec.ReadBody(msg.Data, ev); err != nil || ev.UserId != alice {
			t.Fatalf("presence event %d = %+v (%v), want user %d", i, ev, err, alice)
		}
	}
	if rs, _ := e.routes.Lookup(context.Background(), []int64{alice}); len(rs) != 0 {
		t.Fatalf("routes left after the deletion: %+v (laptop %+v)", rs, laptop.sess)
	}
}

// A connection whose DELETE_ACCOUNT succeeded without the gateway hearing
// it (the call timed out) stays open as the deleted user; its retry must
// close it with ACCOUNT_DELETED, as the first answer would have.
func TestDeleteAccount_RetryClosesTheConnectionTheAnswerMissed(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	e.register(t, "alice")
	phone := e.loginDevice(t, "alice", "phone", 1)
	if err := e.deleteAccount(phone.sess, testPassword); err != nil {
		t.Fatal(err)
	}
	if got := e.accountDeleted(t); len(got) != 0 {
		t.Fatalf("closed with ACCOUNT_DELETED: %v, want none yet (the gateway closes conn 1)",
			got)
	}

	wantCode(t, e.deleteAccount(phone.sess, testPassword), common.ErrorCode_TOKEN_INVALID)
	if got := e.accountDeleted(t); len(got) != 1 || got[0] != 1 {
		t.Fatalf("closed with ACCOUNT_DELETED after the retry: %v, want conn 1", got)
	}
}

// A deletion that read its membership before the group's owner handed the
// group to the user must hand it over in turn, not fail with the owner's
// LEAVE refused, which told the user FORBIDDEN for a deletion that only
// needed another look at the group.
func TestDeleteAccount_MadeOwnerDuringTheDeletion(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	alice, bob := e.register(t, "alice"), e.register(t, "bob")
	g := e.group(t, bob, "g", alice)
	var stale memberRow
	if err := e.db.Where("conv_id = ? AND user_id = ?", g, alice).Take(&stale).Error; err != nil {
		t.Fatal(err)
	}
	_, err := e.manage(bob, g, common.GroupAction_SET_ROLE, []int64{alice}, "",
		common.GroupRole_OWNER)
	wantCode(t, err, common.ErrorCode_OK)

	if err := e.svc.leaveGroup(ctxBG, session(alice, 1), stale); err != nil {
		t.Fatalf("leaving with the membership read before the transfer: %v", err)
	}
	info, err := e.svc.GetGroup(ctxBG, session(bob, 1), &protocol.GetGroupReq{ConvId: g})
	if err != nil || info.OwnerId != bob || len(info.Members) != 1 {
		t.Fatalf("group after: %+v, %v", info, err)
	}
}

// Two devices delete one account at once while it owns a group and sends
// to it from a third: each deletion succeeds or finds the account gone,
// the group is handed over once and left once, and nothing of the user's
// is sent after its LEAVE.
func TestDeleteAccount_FromTwoDevicesWhileSending(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		g := e.group(t, alice, "g", bob)
		phone := e.loginDevice(t, "alice", "phone", 1)
		laptop := e.loginDevice(t, "alice", "laptop", 2)
		done := make(chan error, 3)
		for _, d := range []device{phone, laptop} {
			go func() { done <- e.deleteAccount(d.sess, testPassword) }()
		}
		go func() {
			for i := range 20 {
				_, err := e.svc.Send(ctxBG, session(alice, 3), quoteReq("x"+strconv.Itoa(i), g,
					0, false, bob))
				if err != nil {
					done <- nil // refused once she left
					return
				}
			}
			done <- nil
		}()
		ok := 0
		for range 3 {
			switch err := <-done; {
			case err == nil:
				ok++
			case codeOf(err) != common.ErrorCode_TOKEN_INVALID:
				t.Fatalf("a concurrent deletion: %v", err)
			}
		}
		if ok < 2 {
			t.Fatalf("%d of 3 calls succeeded", ok)
		}
		var roles, leaves int
		msgs := e.syncAll(t, bob, g)
		for i, m := range msgs {
			if m.ContentType != common.ContentType_GROUP_EVENT {
				if leaves > 0 && m.SenderId == alice {
					t.Fatalf("alice's #%d after her LEAVE", m.Seq)
				}
				continue
			}
			switch decodeGroupEvent(t, msgs[i]).Action {
			case common.GroupAction_SET_ROLE:
				roles++
			case common.GroupAction_LEAVE:
				leaves++
			}
		}
		if roles != 1 || leaves != 1 {
			t.Fatalf("%d hand-overs and %d leaves, want one each", roles, leaves)
		}
		info, err := e.svc.GetGroup(ctxBG, session(bob, 1), &protocol.GetGroupReq{ConvId: g})
		if err != nil || info.OwnerId != bob || len(info.Members) != 1 {
			t.Fatalf("group after: %+v, %v", info, err)
		}
	})
}

// A deletion whose user is removed from a group after it read the
// membership finds the group left, not its LEAVE refused.
func TestDeleteAccount_RemovedDuringTheDeletion(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	alice, bob := e.register(t, "alice"), e.register(t, "bob")
	g := e.group(t, bob, "g", alice)
	var stale memberRow
	if err := e.db.Where("conv_id = ? AND user_id = ?", g, alice).Take(&stale).Error; err != nil {
		t.Fatal(err)
	}
	_, err := e.manage(bob, g, common.GroupAction_REMOVE, []int64{alice}, "", 0)
	wantCode(t, err, common.ErrorCode_OK)

	if err := e.svc.leaveGroup(ctxBG, session(alice, 1), stale); err != nil {
		t.Fatalf("leaving a group removed from since the read: %v", err)
	}
}

// Others see a deleted account from the moment its deletion begins, before
// its groups are left: a member whose app looks the user up on the LEAVE
// event must not be told the live profile (the web app was, and showed the
// old name until a reload). Until the tombstone, the password only
// finishes the deletion: a login with it is refused, a retry goes on.
func TestDeleteAccount_DeletedToOthersFromItsStart(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	ctx := context.Background()
	alice, bob := e.register(t, "alice"), e.register(t, "bob")
	g := e.group(t, alice, "G", bob)

	// A deletion that stopped right after it began (a crash, a timeout).
	if err := e.svc.beginDeletion(ctx, alice); err != nil {
		t.Fatal(err)
	}
	got, err := e.svc.GetUser(ctx, session(bob, 3), &protocol.GetUserReq{UserId: alice})
	if err != nil || !got.Deleted {
		t.Fatalf("GET_USER of a user being deleted = %+v, %v; want deleted", got, err)
	}
	_, err = e.svc.Login(ctx, &protocol.LoginReq{Username: "alice", Password: testPassword},
		testConn)
	wantCode(t, err, common.ErrorCode_INVALID_CREDENTIALS)

	if err := e.deleteAccount(session(alice, 1), testPassword); err != nil {
		t.Fatalf("retry of a begun deletion: %v", err)
	}
	var u userRow
	if err := e.db.Where("id = ?", alice).Take(&u).Error; err != nil {
		t.Fatal(err)
	}
	if u.PasswordHash != "" || u.Username != "deleted#1" || u.DeletedMs == 0 {
		t.Fatalf("user row after the retry: %+v", u)
	}
	last := e.syncAll(t, bob, g)
	if ev := decodeGroupEvent(t, last[len(last)-1]); ev.Action != common.GroupAction_LEAVE {
		t.Fatalf("group's last event %v, want alice's LEAVE", ev.Action)
	}
}
