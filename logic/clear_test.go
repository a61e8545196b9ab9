package logic

import (
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/event"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// clear calls ClearConv for ss and returns the cleared seq.
func (e *env) clear(t *testing.T, ss *logicrpc.Session, conv string, upTo int64,
	hide bool) int64 {
	t.Helper()
	resp, err := e.svc.ClearConv(ctxBG, ss,
		&protocol.ClearConvReq{ConvId: conv, UpToSeq: upTo, Hide: hide})
	if err != nil {
		t.Fatalf("clear %s up to %d (hide %t): %v", conv, upTo, hide, err)
	}
	return resp.ClearedSeq
}

// syncPage calls Sync for user and returns the page's seqs and has_more.
func (e *env) syncPage(t *testing.T, user int64, req *protocol.SyncReq) ([]int64, bool) {
	t.Helper()
	resp, err := e.svc.Sync(ctxBG, session(user, 1), req)
	if err != nil {
		t.Fatalf("sync user %d %+v: %v", user, req, err)
	}
	return seqsOf(resp.Messages), resp.HasMore
}

// listed returns conv's summary in resp, or nil.
func listed(resp *protocol.SyncConvsResp, conv string) *protocol.ConvSummary {
	for _, c := range resp.Convs {
		if c.ConvId == conv {
			return c
		}
	}
	return nil
}

// laterClock moves the service clock past the SyncConvs cursor margin, so
// that a cursor taken before is behind what happens next.
func (e *env) laterClock(steps int) {
	ahead := time.Duration(steps) * (convCursorMargin + time.Second)
	e.svc.now = func() time.Time { return time.Now().Add(ahead) }
}

func TestClearConv_SyncPagesAroundTheClear(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		conv := e.sendN(t, alice, bob, 6, "m").ConvId
		if got := e.clear(t, session(bob, 1), conv, 4, false); got != 4 {
			t.Fatalf("cleared_seq = %d, want 4", got)
		}
		pages := []struct {
			name    string
			req     *protocol.SyncReq
			want    []int64
			hasMore bool
		}{
			{"forward from 0", &protocol.SyncReq{Limit: 50}, []int64{5, 6}, false},
			{"forward one", &protocol.SyncReq{Limit: 1}, []int64{5}, true},
			{"forward from inside", &protocol.SyncReq{AfterSeq: 2, Limit: 1}, []int64{5}, true},
			{"backward all", &protocol.SyncReq{BeforeSeq: 7, Limit: 2}, []int64{5, 6}, false},
			{"backward one", &protocol.SyncReq{BeforeSeq: 7, Limit: 1}, []int64{6}, true},
			{"backward last", &protocol.SyncReq{BeforeSeq: 6, Limit: 1}, []int64{5}, false},
			{"backward below", &protocol.SyncReq{BeforeSeq: 4, Limit: 5}, []int64{}, false},
		}
		for _, p := range pages {
			p.req.ConvId = conv
			got, more := e.syncPage(t, bob, p.req)
			if !slices.Equal(got, p.want) || more != p.hasMore {
				t.Errorf("%s: seqs %v has_more %t, want %v %t", p.name, got, more, p.want, p.hasMore)
			}
		}
		if got := seqsOf(e.syncAll(t, alice, conv)); len(got) != 6 {
			t.Errorf("the peer reads %v after bob's clear, want all six", got)
		}
		s := listed(e.syncConvs(t, session(bob, 1), "", 50), conv)
		if s == nil || s.ClearedSeq != 4 || s.ReadSeq < 4 || s.Unread != 2 || s.Hidden {
			t.Errorf("bob's summary = %+v, want cleared 4, read >= 4, 2 unread", s)
		}
		peer := listed(e.syncConvs(t, session(alice, 1), "", 50), conv)
		if peer == nil || peer.ClearedSeq != 0 || peer.LastMessage == nil {
			t.Errorf("alice's summary = %+v, want untouched", peer)
		}
	})
}

func TestClearConv_OnlyMovesForward(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		conv := e.sendN(t, alice, bob, 6, "m").ConvId
		steps := []struct {
			upTo, want int64
		}{{4, 4}, {2, 4}, {100, 6}, {5, 6}}
		for _, st := range steps {
			if got := e.clear(t, session(bob, 1), conv, st.upTo, false); got != st.want {
				t.Errorf("clear up to %d: cleared_seq %d, want %d", st.upTo, got, st.want)
			}
		}
		e.sendN(t, alice, bob, 2, "n")
		if got := e.clear(t, session(bob, 1), conv, 0, false); got != 8 {
			t.Errorf("clear up to 0: cleared_seq %d, want the last seq 8", got)
		}
		if got := seqsOf(e.syncAll(t, bob, conv)); len(got) != 0 {
			t.Errorf("bob reads %v after clearing everything", got)
		}
		_, err := e.svc.ClearConv(ctxBG, session(bob, 1),
			&protocol.ClearConvReq{ConvId: conv, UpToSeq: -1})
		wantCode(t, err, common.ErrorCode_BAD_REQUEST)
	})
}

// A hide reaches the user's other device once, is left out of a fresh
// listing, and is undone by the next message.
func TestClearConv_HiddenReportedOnceThenBackOnNewMessage(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		conv := e.sendN(t, alice, bob, 3, "m").ConvId
		tablet := session(bob, 2)
		tablet.DeviceId = "tablet"
		first := e.syncConvs(t, tablet, "", 50)
		e.laterClock(1)
		if got := e.clear(t, session(bob, 1), conv, 0, true); got != 3 {
			t.Fatalf("cleared_seq = %d, want 3", got)
		}

		next := e.syncConvs(t, tablet, first.Cursor, 50)
		s := listed(next, conv)
		if s == nil || !s.Hidden || s.ClearedSeq != 3 || s.LastMessage != nil || s.Unread != 0 {
			t.Fatalf("the tablet's summary after the hide = %+v, want hidden, cleared 3", s)
		}
		laptop := session(bob, 3)
		laptop.DeviceId = "laptop"
		if s := listed(e.syncConvs(t, laptop, "", 50), conv); s != nil {
			t.Errorf("a new device lists the hidden conversation: %+v", s)
		}
		// A finished run leaves its cursor convCursorMargin back (see
		// nextCursor): the run after the margin is the first past the hide.
		e.laterClock(2)
		again := e.syncConvs(t, tablet, next.Cursor, 50)
		e.laterClock(3)
		if s := listed(e.syncConvs(t, tablet, again.Cursor, 50), conv); s != nil {
			t.Errorf("the hidden conversation is reported again: %+v", s)
		}
		if s := listed(e.syncConvs(t, session(alice, 1), "", 50), conv); s == nil || s.Hidden {
			t.Errorf("the peer's summary = %+v, want listed, not hidden", s)
		}

		e.sendN(t, alice, bob, 1, "back")
		s = listed(e.syncConvs(t, laptop, "", 50), conv)
		if s == nil || s.Hidden || s.LastMessage == nil || s.LastMessage.Seq != 4 || s.Unread != 1 {
			t.Fatalf("after a new message bob's summary = %+v, want listed with seq 4", s)
		}
		if got := seqsOf(e.syncAll(t, bob, conv)); !slices.Equal(got, []int64{4}) {
			t.Errorf("bob reads %v, want only the new message", got)
		}
	})
}

// Clearing without hide shows a hidden conversation again.
func TestClearConv_ClearWithoutHideUnhides(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		conv := e.sendN(t, alice, bob, 2, "m").ConvId
		e.clear(t, session(bob, 1), conv, 0, true)
		e.clear(t, session(bob, 1), conv, 0, false)
		s := listed(e.syncConvs(t, session(bob, 1), "", 50), conv)
		if s == nil || s.Hidden || s.ClearedSeq != 2 {
			t.Errorf("summary = %+v, want listed, not hidden, cleared 2", s)
		}
	})
}

// Only a participant may clear: others get SYNC's answer.
func TestClearConv_OutsiderRefused(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob, eve := e.register(t, "alice"), e.register(t, "bob"), e.register(t, "eve")
		conv := e.sendN(t, alice, bob, 2, "m").ConvId
		g := e.group(t, alice, "club", bob)
		for _, c := range []string{conv, g} {
			_, syncErr := e.svc.Sync(ctxBG, session(eve, 1), &protocol.SyncReq{ConvId: c})
			wantCode(t, syncErr, common.ErrorCode_FORBIDDEN)
			_, err := e.svc.ClearConv(ctxBG, session(eve, 1),
				&protocol.ClearConvReq{ConvId: c, Hide: true})
			wantCode(t, err, common.ErrorCode_FORBIDDEN)
		}
		if got := seqsOf(e.syncAll(t, bob, conv)); len(got) != 2 {
			t.Errorf("bob reads %v after eve's attempt", got)
		}
		_, err := e.svc.ClearConv(ctxBG, nil, &protocol.ClearConvReq{ConvId: conv})
		wantCode(t, err, common.ErrorCode_UNAUTHENTICATED)
	})
}

// A former group member clears and hides the group up to their leaving;
// the members who stayed see no change.
func TestClearConv_FormerGroupMemberClearsAndHides(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob, carol := e.register(t, "alice"), e.register(t, "bob"), e.register(t, "carol")
		g := e.group(t, alice, "club", bob, carol)
		if _, err := e.sendTo(alice, g, "hello"); err != nil {
			t.Fatal(err)
		}
		left, err := e.manage(bob, g, common.GroupAction_LEAVE, nil, "", 0)
		if err != nil {
			t.Fatalf("bob leaves: %v", err)
		}
		if _, err := e.sendTo(alice, g, "after"); err != nil {
			t.Fatal(err)
		}
		tablet := session(bob, 2)
		tablet.DeviceId = "tablet"
		first := e.syncConvs(t, tablet, "", 50)
		e.laterClock(1)
		if got := e.clear(t, session(bob, 1), g, 0, true); got != left.Seq {
			t.Fatalf("cleared_seq = %d, want the leaving's seq %d", got, left.Seq)
		}
		if got := seqsOf(e.syncAll(t, bob, g)); len(got) != 0 {
			t.Errorf("bob reads %v after clearing", got)
		}
		if s := listed(e.syncConvs(t, tablet, first.Cursor, 50), g); s == nil || !s.Hidden {
			t.Errorf("bob's tablet summary = %+v, want hidden", s)
		}
		if s := listed(e.syncConvs(t, session(bob, 3), "", 50), g); s != nil {
			t.Errorf("a fresh listing shows the hidden group: %+v", s)
		}
		if got := seqsOf(e.syncAll(t, carol, g)); len(got) != 4 {
			t.Errorf("carol reads %v, want the group's four messages", got)
		}
		if s := listed(e.syncConvs(t, session(carol, 1), "", 50), g); s == nil || s.Hidden ||
			s.ClearedSeq != 0 {
			t.Errorf("carol's summary = %+v, want untouched", s)
		}
	})
}

// A group member's clear hides history from their SYNC only: GET_GROUP and
// READ_COUNTS answer them as before, and the other members read it all.
func TestClearConv_GroupMemberKeepsGroupAndCounts(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob, carol := e.register(t, "alice"), e.register(t, "bob"), e.register(t, "carol")
		g := e.group(t, alice, "club", bob, carol)
		sent, err := e.sendTo(alice, g, "hello")
		if err != nil {
			t.Fatal(err)
		}
		if got := e.clear(t, session(bob, 1), g, 0, false); got != sent.Seq {
			t.Fatalf("cleared_seq = %d, want %d", got, sent.Seq)
		}
		info, err := e.svc.GetGroup(ctxBG, session(bob, 1), &protocol.GetGroupReq{ConvId: g})
		if err != nil || len(info.Members) != 3 {
			t.Fatalf("GET_GROUP after the clear: %+v, %v", info, err)
		}
		counts, err := e.svc.ReadCounts(ctxBG, session(bob, 1),
			&protocol.ReadCountsReq{ConvId: g, Seqs: []int64{sent.Seq}})
		if err != nil || len(counts.Counts) != 1 {
			t.Fatalf("READ_COUNTS after the clear: %+v, %v", counts, err)
		}
		if got := seqsOf(e.syncAll(t, bob, g)); len(got) != 0 {
			t.Errorf("bob reads %v after clearing", got)
		}
		if got := seqsOf(e.syncAll(t, carol, g)); !slices.Equal(got, []int64{1, sent.Seq}) {
			t.Errorf("carol reads %v, want [1 %d]", got, sent.Seq)
		}
	})
}

// A device with no cursor yet leaves hidden conversations out of every page
// of its first listing, not only the first page.
func TestClearConv_FreshListingHidesOnEveryPage(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		bob := e.register(t, "bob")
		var convs []string
		for _, name := range []string{"alice", "carol", "dave"} {
			convs = append(convs, e.sendN(t, e.register(t, name), bob, 1, "m").ConvId)
		}
		// Hiding moves the conversation to the end of the listing's order.
		e.clear(t, session(bob, 1), convs[0], 0, true)

		laptop := session(bob, 2)
		laptop.DeviceId = "laptop"
		var seen []string
		cursor := ""
		for page := 0; ; page++ {
			resp := e.syncConvs(t, laptop, cursor, 1)
			for _, c := range resp.Convs {
				if c.ConvId == convs[0] || c.Hidden {
					t.Errorf("page %d lists the hidden conversation: %+v", page, c)
				}
				seen = append(seen, c.ConvId)
			}
			if !resp.HasMore || page > 5 {
				break
			}
			cursor = resp.Cursor
		}
		if !slices.Equal(seen, convs[1:]) {
			t.Errorf("the fresh listing gave %v, want %v", seen, convs[1:])
		}
	})
}

// nextCleared returns the next ConvCleared notify on sub, skipping the read
// notifications a clear may send before it.
func nextCleared(t *testing.T, sub *nats.Subscription) *event.NotifyEvent {
	t.Helper()
	for {
		if ev := nextNotify(t, sub); ev.Notify.Cleared != nil {
			return ev
		}
	}
}

// A clear reaches the user's other devices at once, as NOTIFY {cleared},
// not the connection that cleared and nobody else.
func TestClearConv_NotifiesOwnOtherDevices(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		conv := e.sendN(t, alice, bob, 4, "m").ConvId
		sub := e.subscribe(t, e.names.NotifySubject())

		steps := []struct {
			upTo int64
			hide bool
			want protocol.ConvCleared
		}{
			{2, false, protocol.ConvCleared{ConvId: conv, ClearedSeq: 2}},
			// Hidden only with nothing newer than the clear.
			{3, true, protocol.ConvCleared{ConvId: conv, ClearedSeq: 3}},
			{0, true, protocol.ConvCleared{ConvId: conv, ClearedSeq: 4, Hidden: true}},
			// A clear that moves nothing still says the hide is undone.
			{1, false, protocol.ConvCleared{ConvId: conv, ClearedSeq: 4}},
		}
		for _, st := range steps {
			e.clear(t, session(bob, 7), conv, st.upTo, st.hide)
			ev := nextCleared(t, sub)
			if *ev.Notify.Cleared != st.want || !slices.Equal(ev.Recipients, []int64{bob}) ||
				ev.OriginConnId != 7 {
				t.Fatalf("clear up to %d hide %t: event %+v, want %+v to [%d] from conn 7",
					st.upTo, st.hide, ev, st.want, bob)
			}
		}
	})
}
