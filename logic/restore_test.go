package logic

import (
	"slices"
	"testing"

	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// After MoveSeqsPastRestore the next message of every conversation takes a
// seq past the gap; the gap is neither unread, in the list or the badge,
// nor a reason to show a hidden conversation again.
func TestMoveSeqsPastRestore_NextSeqsPastTheGapNotUnread(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob, carol := e.register(t, "alice"), e.register(t, "bob"), e.register(t, "carol")
		conv := e.sendN(t, alice, bob, 3, "m").ConvId
		if _, err := e.svc.MarkRead(ctxBG, session(bob, 1),
			&protocol.MarkReadReq{ConvId: conv, Seq: 1}); err != nil {
			t.Fatalf("MarkRead: %v", err)
		}
		hidden := e.sendN(t, alice, carol, 2, "h").ConvId
		e.clear(t, session(carol, 1), hidden, 0, true)

		moved, err := MoveSeqsPastRestore(ctxBG, e.db)
		if err != nil || moved != 2 {
			t.Fatalf("MoveSeqsPastRestore = %d, %v; want 2 conversations", moved, err)
		}
		e.restart(t) // as a server started on the restored store
		s := listed(e.syncConvs(t, session(bob, 1), "", 50), conv)
		if s == nil || s.LastSeq != 3+RestoreSeqGap || s.Unread != 2 {
			t.Fatalf("bob's summary after the move = %+v, want last seq %d, 2 unread", s,
				3+RestoreSeqGap)
		}
		if s := listed(e.syncConvs(t, session(carol, 1), "", 50), hidden); s != nil {
			t.Errorf("carol's hidden conversation is listed after the move: %+v", s)
		}

		ack := e.sendN(t, alice, bob, 1, "after")
		if ack.Seq != 4+RestoreSeqGap {
			t.Fatalf("the next message took seq %d, want %d", ack.Seq, 4+RestoreSeqGap)
		}
		s = listed(e.syncConvs(t, session(bob, 1), "", 50), conv)
		if s == nil || s.Unread != 3 {
			t.Errorf("bob's summary after a new message = %+v, want 3 unread", s)
		}
		badges, err := e.svc.unreadTotals(ctxBG, []int64{bob})
		if err != nil || badges[bob] != 3 {
			t.Errorf("bob's badge = %d (%v), want 3", badges[bob], err)
		}
		want := []int64{1, 2, 3, 4 + RestoreSeqGap}
		if got := seqsOf(e.syncAll(t, bob, conv)); !slices.Equal(got, want) {
			t.Errorf("bob reads seqs %v, want %v", got, want)
		}
	})
}
