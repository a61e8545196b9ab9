package logic

import (
	"context"
	"strings"
	"testing"

	"github.com/resonance-im/resonance/internal/ratelimit"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

func TestBlock_StopsOneToOneBothWays(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		carol := e.register(t, "carol")
		sent, err := e.svc.Send(ctx, session(bob, 2), textReq("b1", alice))
		if err != nil {
			t.Fatal(err)
		}
		block := func(target int64, on bool) error {
			_, err := e.svc.Block(ctx, session(alice, 1),
				&protocol.BlockReq{UserId: target, Blocked: on})
			return err
		}
		wantCode(t, block(bob, true), common.ErrorCode_OK)
		wantCode(t, block(bob, true), common.ErrorCode_OK) // idempotent
		wantCode(t, block(alice, true), common.ErrorCode_BAD_REQUEST)
		wantCode(t, block(0, true), common.ErrorCode_BAD_REQUEST)
		wantCode(t, block(carol+100, true), common.ErrorCode_NOT_FOUND)

		before := e.countMessages(t)
		sends := []struct {
			name string
			from int64
			req  *protocol.SendReq
		}{
			{name: "blocked starts by id", from: bob, req: textReq("b2", alice)},
			{name: "blocked continues by conv", from: bob,
				req: &protocol.SendReq{ClientMsgId: "b3", ConvId: sent.ConvId,
					ContentType: common.ContentType_TEXT, Content: []byte("hi")}},
			{name: "blocker writes", from: alice, req: textReq("a1", bob)},
		}
		for _, tc := range sends {
			_, err := e.svc.Send(ctx, session(tc.from, 3), tc.req)
			wantCode(t, err, common.ErrorCode_FORBIDDEN)
			if strings.Contains(err.Error(), "block") {
				t.Fatalf("%s: error %q says blocked", tc.name, err)
			}
		}
		if n := e.countMessages(t); n != before {
			t.Fatalf("%d messages stored while blocked", n-before)
		}
		if _, err := e.svc.Send(ctx, session(bob, 2), textReq("b4", carol)); err != nil {
			t.Fatalf("bob to carol: %v", err)
		}
		wantCode(t, block(bob, false), common.ErrorCode_OK)
		if _, err := e.svc.Send(ctx, session(bob, 2), textReq("b5", alice)); err != nil {
			t.Fatalf("after unblock: %v", err)
		}
		_, err = e.svc.Block(ctx, &logicrpc.Session{}, &protocol.BlockReq{UserId: bob})
		wantCode(t, err, common.ErrorCode_UNAUTHENTICATED)
	})
}

func TestLogin_RateLimited(t *testing.T) {
	cfg := sqliteConfig(t)
	e := newEnv(t, cfg)
	e.register(t, "alice")
	e.svc.limits.account = ratelimit.New(ratelimit.Config{Burst: 3, Per: 1 << 40})
	e.svc.limits.addr = ratelimit.New(ratelimit.Config{Burst: 5, Per: 1 << 40})
	login := func(user, pw, remote string) common.ErrorCode {
		_, err := e.svc.Login(context.Background(),
			&protocol.LoginReq{Username: user, Password: pw},
			&logicrpc.ConnInfo{Gateway: "gw-1:9000", ConnId: 1, RemoteAddr: remote})
		return codeOf(err)
	}
	for _, user := range []string{"alice", "nobody"} {
		for i := range 3 {
			if c := login(user, "wrong password", "10.0.0."+string(rune('1'+i))+":1"); c !=
				common.ErrorCode_INVALID_CREDENTIALS {
				t.Fatalf("%s attempt %d: %s", user, i, c)
			}
		}
		// Over the account budget: refused even with the right password,
		// and the same for a user that does not exist.
		if c := login(user, testPassword, "10.0.0.9:1"); c != common.ErrorCode_RATE_LIMITED {
			t.Fatalf("%s past the account budget: %s", user, c)
		}
	}
	for i := range 5 {
		name := "user" + string(rune('a'+i))
		if c := login(name, "wrong password", "10.9.9.9:1"); c == common.ErrorCode_RATE_LIMITED {
			t.Fatalf("address attempt %d limited", i)
		}
	}
	if c := login("userz", "wrong password", "10.9.9.9:2"); c != common.ErrorCode_RATE_LIMITED {
		t.Fatalf("past the address budget (another port): %s", c)
	}
}

// An attacker who spends an account's password budget from addresses of
// their own must not lock its owner out of a password login from where the
// owner signed in before: that address has a budget of its own.
func TestLogin_SpentAccountBudgetSparesKnownAddress(t *testing.T) {
	cfg := sqliteConfig(t)
	e := newEnv(t, cfg)
	e.register(t, "alice")
	e.svc.limits.account = ratelimit.New(ratelimit.Config{Burst: 3, Per: 1 << 40})
	e.svc.limits.accountAddr = ratelimit.New(ratelimit.Config{Burst: 3, Per: 1 << 40})
	login := func(pw, remote string) common.ErrorCode {
		_, err := e.svc.Login(context.Background(),
			&protocol.LoginReq{Username: "alice", Password: pw, DeviceId: "phone"},
			&logicrpc.ConnInfo{Gateway: "gw-1:9000", ConnId: 1, RemoteAddr: remote})
		return codeOf(err)
	}
	if c := login(testPassword, "198.51.100.7:4000"); c != common.ErrorCode_OK {
		t.Fatalf("first login from home: %s", c)
	}
	for i := range 5 {
		login("wrong password", "203.0.113."+string(rune('1'+i))+":1")
	}
	if c := login(testPassword, "203.0.113.99:1"); c != common.ErrorCode_RATE_LIMITED {
		t.Fatalf("right password from a new address past the account budget: %s, want RATE_LIMITED", c)
	}
	if c := login(testPassword, "198.51.100.7:4001"); c != common.ErrorCode_OK {
		t.Fatalf("owner's password login from the address it used before: %s, want OK", c)
	}
	// The known address's own budget still bounds guesses made from it.
	for range 3 {
		login("wrong password", "198.51.100.7:4002")
	}
	if c := login(testPassword, "198.51.100.7:4003"); c != common.ErrorCode_RATE_LIMITED {
		t.Fatalf("past the known address's own budget: %s, want RATE_LIMITED", c)
	}
}

func TestValidation_TextFields(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		sends := []struct {
			name string
			req  *protocol.SendReq
			want common.ErrorCode
		}{
			{name: "text not utf8", req: &protocol.SendReq{ClientMsgId: "c1", ToUserId: bob,
				ContentType: common.ContentType_TEXT, Content: []byte("a\xffb")},
				want: common.ErrorCode_BAD_REQUEST},
			{name: "binary not utf8", req: &protocol.SendReq{ClientMsgId: "c2", ToUserId: bob,
				ContentType: common.ContentType_BINARY, Content: []byte("a\xffb")}},
			{name: "client id not utf8", req: &protocol.SendReq{ClientMsgId: "c\xff",
				ToUserId: bob, ContentType: common.ContentType_TEXT, Content: []byte("x")},
				want: common.ErrorCode_BAD_REQUEST},
			{name: "sql text verbatim", req: textReq("'; DELETE FROM message; --", bob)},
		}
		for _, tc := range sends {
			t.Run(tc.name, func(t *testing.T) {
				_, err := e.svc.Send(ctx, session(alice, 1), tc.req)
				wantCode(t, err, tc.want)
			})
		}
		if n := e.countMessages(t); n != 2 {
			t.Fatalf("%d messages stored, want 2", n)
		}
		logins := []struct {
			name string
			req  *protocol.LoginReq
			want common.ErrorCode
		}{
			{name: "device not utf8", req: &protocol.LoginReq{Username: "alice",
				Password: testPassword, DeviceId: "ph\xffone"}, want: common.ErrorCode_BAD_REQUEST},
			{name: "device control", req: &protocol.LoginReq{Username: "alice",
				Password: testPassword, DeviceId: "ph\x00one"}, want: common.ErrorCode_BAD_REQUEST},
			{name: "device too long", req: &protocol.LoginReq{Username: "alice",
				Password: testPassword, DeviceId: strings.Repeat("d", 65)},
				want: common.ErrorCode_TOO_LARGE},
			{name: "platform not utf8", req: &protocol.LoginReq{Username: "alice",
				Password: testPassword, Platform: "\xfe"}, want: common.ErrorCode_BAD_REQUEST},
			{name: "sql device verbatim", req: &protocol.LoginReq{Username: "alice",
				Password: testPassword, DeviceId: `x' OR '1'='1`}},
		}
		for _, tc := range logins {
			t.Run(tc.name, func(t *testing.T) {
				_, err := e.svc.Login(ctx, tc.req, &logicrpc.ConnInfo{Gateway: "gw-1:9000",
					ConnId: 7})
				wantCode(t, err, tc.want)
			})
		}
		dev, err := e.svc.findDevice(ctx, alice, `x' OR '1'='1`)
		if err != nil || dev == nil {
			t.Fatalf("device stored verbatim: %+v, %v", dev, err)
		}
		_, err = e.svc.GetUser(ctx, session(alice, 1), &protocol.GetUserReq{Username: "a'--"})
		wantCode(t, err, common.ErrorCode_BAD_REQUEST)
	})
}

// A first message to a user who blocked the sender, or was blocked by them,
// or does not exist, is refused before the conversation exists: it shows in
// neither user's list.
func TestBlock_FirstMessageCreatesNoConversation(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob, carol := e.register(t, "alice"), e.register(t, "bob"), e.register(t, "carol")
		if _, err := e.svc.Block(ctxBG, session(bob, 2),
			&protocol.BlockReq{UserId: alice, Blocked: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Block(ctxBG, session(alice, 1),
			&protocol.BlockReq{UserId: carol, Blocked: true}); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			from, to int64
			code     common.ErrorCode
		}{
			{alice, bob, common.ErrorCode_FORBIDDEN}, // blocked by the peer
			{carol, alice, common.ErrorCode_FORBIDDEN},
			{alice, carol, common.ErrorCode_FORBIDDEN}, // the blocker writes
			{alice, carol + 100, common.ErrorCode_NOT_FOUND},
		} {
			_, err := e.svc.Send(ctxBG, session(tc.from, 1), textReq("first", tc.to))
			wantCode(t, err, tc.code)
		}
		var convs, members int64
		if err := e.db.Model(&convRow{}).Count(&convs).Error; err != nil {
			t.Fatal(err)
		}
		if err := e.db.Model(&memberRow{}).Count(&members).Error; err != nil {
			t.Fatal(err)
		}
		if convs != 0 || members != 0 {
			t.Fatalf("%d conversations and %d member rows after refused first messages",
				convs, members)
		}
		if _, err := e.svc.Send(ctxBG, session(bob, 2), textReq("b1", carol)); err != nil {
			t.Fatalf("bob to carol: %v", err)
		}
	})
}
