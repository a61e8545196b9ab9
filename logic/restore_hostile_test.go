package logic

import (
	"testing"
)

// A conversation the user cleared whole, and did not hide, shows no last
// message; the restore's gap must not bring the cleared one back, though
// last_seq is now past cleared_seq with no message in between.
func TestMoveSeqsPastRestore_ClearedLastMessageStaysCleared(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		conv := e.sendN(t, alice, bob, 3, "m").ConvId
		e.clear(t, session(bob, 1), conv, 0, false)
		if s := listed(e.syncConvs(t, session(bob, 1), "", 50), conv); s == nil ||
			s.LastMessage != nil {
			t.Fatalf("bob's cleared summary before the move = %+v, want no last message", s)
		}

		if _, err := MoveSeqsPastRestore(ctxBG, e.db); err != nil {
			t.Fatalf("MoveSeqsPastRestore: %v", err)
		}
		e.restart(t)
		s := listed(e.syncConvs(t, session(bob, 1), "", 50), conv)
		if s == nil || s.LastMessage != nil || s.Unread != 0 {
			t.Fatalf("bob's cleared summary after the move = %+v, want no last message, "+
				"0 unread", s)
		}
	})
}
