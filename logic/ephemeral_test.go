package logic

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/internal/route"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/event"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// subscribe returns a subscription to subject on e's NATS, flushed so that
// it sees everything published after it returns.
func (e *env) subscribe(t *testing.T, subject string) *nats.Subscription {
	t.Helper()
	sub, err := e.js.Conn().SubscribeSync(subject)
	if err == nil {
		err = e.js.Conn().Flush()
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return sub
}

// nextNotify returns the next NotifyEvent on sub, failing after a few
// seconds.
func nextNotify(t *testing.T, sub *nats.Subscription) *event.NotifyEvent {
	t.Helper()
	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("no notify event: %v", err)
	}
	ev := event.NewNotifyEvent()
	if err := codec.ReadBody(msg.Data, ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// noMore fails t if sub receives anything within a short grace period. It
// follows a request whose publish, if any, went out before it returned.
func noMore(t *testing.T, e *env, sub *nats.Subscription) {
	t.Helper()
	if err := e.js.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	if msg, err := sub.NextMsg(100 * time.Millisecond); err == nil {
		t.Fatalf("unexpected event %q", msg.Data)
	}
}

func typingReq(conv string, typing bool) *protocol.TypingReq {
	return &protocol.TypingReq{ConvId: conv, Typing: typing}
}

func TestTyping_ForwardedToPeerNotStored(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		e.sendN(t, alice, bob, 1, "hi")
		e.waitPublished(t, 1)
		conv := p2pConvID(alice, bob)
		sub := e.subscribe(t, e.names.NotifySubject())

		_, err := e.svc.Typing(context.Background(), session(alice, 7), typingReq(conv, true))
		wantCode(t, err, common.ErrorCode_OK)
		ev := nextNotify(t, sub)
		want := &protocol.TypingUpdate{ConvId: conv, UserId: alice, Typing: true}
		if ev.Notify.Typing == nil || *ev.Notify.Typing != *want ||
			!slices.Equal(ev.Recipients, []int64{bob}) {
			t.Fatalf("event = %+v, want typing %+v to [%d]", ev, want, bob)
		}
		if ev.OriginGateway != "gw-1:9000" || ev.OriginConnId != 7 {
			t.Fatalf("origin = %s/%d, want the typing connection", ev.OriginGateway, ev.OriginConnId)
		}

		// Ephemeral: nothing stored, nothing on the stream.
		if n := e.countMessages(t); n != 1 {
			t.Fatalf("messages stored = %d, want 1", n)
		}
		if n := e.streamMsgs(t); n != 1 {
			t.Fatalf("stream holds %d events, want 1", n)
		}
	})
}

func TestTyping_Refusals(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob, eve := e.register(t, "alice"), e.register(t, "bob"), e.register(t, "eve")
		e.sendN(t, alice, bob, 1, "hi")
		conv := p2pConvID(alice, bob)
		sub := e.subscribe(t, e.names.NotifySubject())
		ctx := context.Background()

		cases := []struct {
			name    string
			session *logicrpc.Session
			req     *protocol.TypingReq
			code    common.ErrorCode
		}{
			{name: "no session", session: nil, req: typingReq(conv, true),
				code: common.ErrorCode_UNAUTHENTICATED},
			{name: "empty conv", session: session(alice, 1), req: typingReq("", true),
				code: common.ErrorCode_BAD_REQUEST},
			{name: "not a member", session: session(eve, 3), req: typingReq(conv, true),
				code: common.ErrorCode_FORBIDDEN},
			{name: "unknown group", session: session(eve, 3), req: typingReq("g:nope", true),
				code: common.ErrorCode_FORBIDDEN},
			// A 1:1 conversation not started: OK, nobody told.
			{name: "p2p not started", session: session(alice, 1),
				req: typingReq(p2pConvID(alice, eve), true), code: common.ErrorCode_OK},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				_, err := e.svc.Typing(ctx, tc.session, tc.req)
				wantCode(t, err, tc.code)
			})
		}
		noMore(t, e, sub)
	})
}

func TestTyping_RateLimited(t *testing.T) {
	cfg := sqliteConfig(t)
	cfg.Ephemeral.TypingUserLimit.Burst = 5
	cfg.Ephemeral.TypingUserLimit.Per = time.Hour
	e := newEnv(t, cfg)
	alice, bob := e.register(t, "alice"), e.register(t, "bob")
	e.sendN(t, alice, bob, 1, "hi")
	conv := p2pConvID(alice, bob)
	sub := e.subscribe(t, e.names.NotifySubject())
	ctx := context.Background()

	// Per conversation and state: one "typing" per 2s goes through, repeats
	// are answered OK and dropped; the "stopped" has its own budget.
	for range 3 {
		_, err := e.svc.Typing(ctx, session(alice, 1), typingReq(conv, true))
		wantCode(t, err, common.ErrorCode_OK)
	}
	_, err := e.svc.Typing(ctx, session(alice, 1), typingReq(conv, false))
	wantCode(t, err, common.ErrorCode_OK)
	if ev := nextNotify(t, sub); !ev.Notify.Typing.Typing {
		t.Fatalf("first event = %+v, want typing", ev.Notify.Typing)
	}
	if ev := nextNotify(t, sub); ev.Notify.Typing.Typing {
		t.Fatalf("second event = %+v, want stopped", ev.Notify.Typing)
	}
	noMore(t, e, sub)

	// Typing again right after stopping is a change: it goes out although
	// a "typing" went out less than 2s ago.
	_, err = e.svc.Typing(ctx, session(alice, 1), typingReq(conv, true))
	wantCode(t, err, common.ErrorCode_OK)
	if ev := nextNotify(t, sub); !ev.Notify.Typing.Typing {
		t.Fatalf("third event = %+v, want typing", ev.Notify.Typing)
	}

	// Per user: past the burst of 5 the request itself is refused.
	_, err = e.svc.Typing(ctx, session(alice, 1), typingReq(conv, true))
	wantCode(t, err, common.ErrorCode_RATE_LIMITED)
}

func TestTyping_GroupFanOutCapped(t *testing.T) {
	cfg := sqliteConfig(t)
	cfg.Ephemeral.TypingMaxMembers = 3
	e := newEnv(t, cfg)
	sub := e.subscribe(t, e.names.NotifySubject())
	ctx := context.Background()
	addMembers := func(conv string, users ...int64) {
		for _, u := range users {
			row := memberRow{ConvID: conv, UserID: u, JoinedMs: 1}
			if err := e.db.Create(&row).Error; err != nil {
				t.Fatal(err)
			}
		}
	}
	addMembers("g:small", 1, 2, 3)
	addMembers("g:big", 1, 2, 3, 4)

	_, err := e.svc.Typing(ctx, session(2, 1), typingReq("g:small", true))
	wantCode(t, err, common.ErrorCode_OK)
	ev := nextNotify(t, sub)
	slices.Sort(ev.Recipients)
	if !slices.Equal(ev.Recipients, []int64{1, 3}) {
		t.Fatalf("recipients = %v, want the other members [1 3]", ev.Recipients)
	}

	_, err = e.svc.Typing(ctx, session(2, 1), typingReq("g:big", true))
	wantCode(t, err, common.ErrorCode_OK)
	noMore(t, e, sub)
}

func TestMarkRead_NotifiesOwnDevicesAndPeer(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		e.sendN(t, bob, alice, 3, "m")
		conv := p2pConvID(alice, bob)
		sub := e.subscribe(t, e.names.NotifySubject())
		ctx := context.Background()

		_, err := e.svc.MarkRead(ctx, session(alice, 9), &protocol.MarkReadReq{ConvId: conv, Seq: 2})
		wantCode(t, err, common.ErrorCode_OK)
		ev := nextNotify(t, sub)
		want := &protocol.ReadUpdate{ConvId: conv, UserId: alice, ReadSeq: 2}
		if ev.Notify.Read_ == nil || *ev.Notify.Read_ != *want ||
			!slices.Equal(ev.Recipients, []int64{alice, bob}) || ev.OriginConnId != 9 {
			t.Fatalf("event = %+v, want read %+v to [%d %d] from conn 9", ev, want, alice, bob)
		}

		// A position that does not move tells nobody.
		_, err = e.svc.MarkRead(ctx, session(alice, 9), &protocol.MarkReadReq{ConvId: conv, Seq: 1})
		wantCode(t, err, common.ErrorCode_OK)
		noMore(t, e, sub)
	})
}

func TestPresence_GetAndWatchReplaces(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	watches := route.NewMemoryWatches(0)
	e.deps.Watches = watches
	e.restart(t)
	// The watcher is a user: WATCH_PRESENCE refuses a session whose account
	// is unknown or deleted.
	if id := e.register(t, "watcher"); id != 1 {
		t.Fatalf("watcher registered as %d, want 1", id)
	}
	ctx := context.Background()
	if _, err := e.routes.Put(ctx, route.Route{UserID: 2, DeviceID: "d", Gateway: "g:1",
		ConnID: 5}); err != nil {
		t.Fatal(err)
	}

	resp, err := e.svc.GetPresence(ctx, session(1, 1),
		&protocol.GetPresenceReq{UserIds: []int64{2, 3, 2, -1}})
	wantCode(t, err, common.ErrorCode_OK)
	if got := presenceString(resp); got != "2:on 3:off" {
		t.Fatalf("presence = %s, want 2:on 3:off", got)
	}

	resp, err = e.svc.WatchPresence(ctx, session(1, 1),
		&protocol.WatchPresenceReq{UserIds: []int64{2, 3}})
	wantCode(t, err, common.ErrorCode_OK)
	if got := presenceString(resp); got != "2:on 3:off" {
		t.Fatalf("watch answer = %s, want 2:on 3:off", got)
	}
	// Replace: watching 3 only drops the watch of 2.
	_, err = e.svc.WatchPresence(ctx, session(1, 1),
		&protocol.WatchPresenceReq{UserIds: []int64{3}})
	wantCode(t, err, common.ErrorCode_OK)
	for user, want := range map[int64][]int64{2: nil, 3: {1}} {
		got, err := watches.Watchers(ctx, user)
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("watchers of %d = %v (%v), want %v", user, got, err, want)
		}
	}

	// Over the list limit is TOO_LARGE, as for every other list.
	tooMany := make([]int64, MaxPresenceIDs+1)
	_, err = e.svc.GetPresence(ctx, session(1, 1), &protocol.GetPresenceReq{UserIds: tooMany})
	wantCode(t, err, common.ErrorCode_TOO_LARGE)
	_, err = e.svc.WatchPresence(ctx, session(1, 1), &protocol.WatchPresenceReq{UserIds: tooMany})
	wantCode(t, err, common.ErrorCode_TOO_LARGE)
}

func TestLoginAndDisconnect_PublishPresence(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	alice := e.register(t, "alice")
	sub := e.subscribe(t, e.names.PresenceSubject())
	ctx := context.Background()
	conn := &logicrpc.ConnInfo{Gateway: "gw-1:9000", ConnId: 4}
	login, err := e.svc.Login(ctx, &protocol.LoginReq{Username: "alice", Password: testPassword,
		DeviceId: "phone"}, conn)
	wantCode(t, err, common.ErrorCode_OK)
	err = e.svc.Disconnect(ctx, &logicrpc.Session{UserId: login.UserId, DeviceId: "phone",
		Gateway: conn.Gateway, ConnId: conn.ConnId})
	wantCode(t, err, common.ErrorCode_OK)
	for i := range 2 {
		msg, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("presence event %d: %v", i, err)
		}
		ev := event.NewPresenceEvent()
		if err := codec.ReadBody(msg.Data, ev); err != nil || ev.UserId != alice || ev.AtMs == 0 {
			t.Fatalf("presence event %d = %+v (%v), want user %d", i, ev, err, alice)
		}
	}
}

// A block stored between a WATCH_PRESENCE's block check and its saving of
// the watch set still keeps the blocker out of the set: the block's own
// unwatch ran before the set was saved, so the watch must find the block
// itself.
func TestBlock_DuringWatchKeepsBlockerOut(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob, carol := e.register(t, "alice"), e.register(t, "bob"), e.register(t, "carol")
		ctx := context.Background()
		if _, err := e.routes.Put(ctx, route.Route{UserID: bob, DeviceID: "d", Gateway: "g:1",
			ConnID: 5}); err != nil {
			t.Fatal(err)
		}
		e.svc.onWatchChecked = func() {
			e.svc.onWatchChecked = nil
			_, err := e.svc.Block(ctx, session(bob, 5),
				&protocol.BlockReq{UserId: alice, Blocked: true})
			wantCode(t, err, common.ErrorCode_OK)
		}
		resp, err := e.svc.WatchPresence(ctx, session(alice, 1),
			&protocol.WatchPresenceReq{UserIds: []int64{bob, carol}})
		wantCode(t, err, common.ErrorCode_OK)
		if e.svc.onWatchChecked != nil {
			t.Fatal("the block did not run between the check and the save")
		}

		for user, want := range map[int64][]int64{bob: nil, carol: {alice}} {
			got, err := e.svc.eph.watches.Watchers(ctx, user)
			if err != nil || !slices.Equal(got, want) {
				t.Errorf("watchers of user %d after bob blocked alice during her watch = %v "+
					"(%v), want %v", user, got, err, want)
			}
		}
		want := fmt.Sprintf("%d:off %d:off", bob, carol)
		if got := presenceString(resp); got != want {
			t.Errorf("watch answer %s, want %s (bob hidden)", got, want)
		}
	})
}

func presenceString(resp *protocol.GetPresenceResp) string {
	s := ""
	for i, p := range resp.Presences {
		state := "off"
		if p.Online {
			state = "on"
		}
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%d:%s", p.UserId, state)
	}
	return s
}

func TestEphemeral_BlockHides(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		e.sendN(t, alice, bob, 1, "hi")
		conv := p2pConvID(alice, bob)
		ctx := context.Background()
		if _, err := e.routes.Put(ctx, route.Route{UserID: bob, DeviceID: "d", Gateway: "g:1",
			ConnID: 5}); err != nil {
			t.Fatal(err)
		}
		_, err := e.svc.Block(ctx, session(bob, 5), &protocol.BlockReq{UserId: alice, Blocked: true})
		wantCode(t, err, common.ErrorCode_OK)
		sub := e.subscribe(t, e.names.NotifySubject())

		// Bob blocked alice: her typing reaches nobody, and he reads offline.
		_, err = e.svc.Typing(ctx, session(alice, 1), typingReq(conv, true))
		wantCode(t, err, common.ErrorCode_OK)
		noMore(t, e, sub)
		resp, err := e.svc.GetPresence(ctx, session(alice, 1),
			&protocol.GetPresenceReq{UserIds: []int64{bob}})
		wantCode(t, err, common.ErrorCode_OK)
		if got := presenceString(resp); got != fmt.Sprintf("%d:off", bob) {
			t.Fatalf("presence = %s, want bob offline", got)
		}
		_, err = e.svc.WatchPresence(ctx, session(alice, 1),
			&protocol.WatchPresenceReq{UserIds: []int64{bob}})
		wantCode(t, err, common.ErrorCode_OK)
		if got, err := e.svc.eph.watches.Watchers(ctx, bob); err != nil || len(got) != 0 {
			t.Fatalf("watchers of bob = %v (%v), want none", got, err)
		}
	})
}

// A block made while the blocked user already watches the blocker takes the
// blocker out of that watch set at once: GET_PRESENCE reads offline, so the
// presence NOTIFYs must stop too, without waiting for the watcher to send
// its set again (a client that never does would hear them for a day).
func TestBlock_StopsAWatchAlreadySet(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob, carol := e.register(t, "alice"), e.register(t, "bob"), e.register(t, "carol")
		ctx := context.Background()
		_, err := e.svc.WatchPresence(ctx, session(alice, 1),
			&protocol.WatchPresenceReq{UserIds: []int64{bob, carol}})
		wantCode(t, err, common.ErrorCode_OK)

		_, err = e.svc.Block(ctx, session(bob, 5), &protocol.BlockReq{UserId: alice, Blocked: true})
		wantCode(t, err, common.ErrorCode_OK)
		for user, want := range map[int64][]int64{bob: nil, carol: {alice}} {
			got, err := e.svc.eph.watches.Watchers(ctx, user)
			if err != nil || !slices.Equal(got, want) {
				t.Fatalf("watchers of user %d after bob blocked alice = %v (%v), want %v",
					user, got, err, want)
			}
		}
	})
}
