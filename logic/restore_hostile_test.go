package logic

import (
	"path/filepath"
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

// What was stored after a backup is lost with it, but devices still hold
// it: the users registered (their tokens still verify, the token key is
// in the backup), the conversations begun, the msg_ids. The restored store
// must issue none of those ids again: a user id given again would let the
// lost user's access token sign in as the new account, and a 1:1
// conversation begun again at seq 1 would have its messages dropped as
// copies by devices holding the lost one's.
func TestMoveSeqsPastRestore_IssuesNoIDLostWithTheStore(t *testing.T) {
	cfg := Config{DBDriver: DriverSQLite, DBDSN: filepath.Join(t.TempDir(), "logic.db")}
	e := newEnv(t, cfg)
	alice, bob := e.register(t, "alice"), e.register(t, "bob")
	backup := filepath.Join(t.TempDir(), "backup.db")
	if err := e.db.Exec("VACUUM INTO ?", backup).Error; err != nil {
		t.Fatalf("backup: %v", err)
	}
	carol := e.register(t, "carol") // lost with the store
	lost := e.sendN(t, alice, bob, 2, "lost")

	r := newEnv(t, Config{DBDriver: DriverSQLite, DBDSN: backup})
	if _, err := MoveSeqsPastRestore(ctxBG, r.db); err != nil {
		t.Fatalf("MoveSeqsPastRestore: %v", err)
	}
	r.restart(t)
	if dave := r.register(t, "dave"); dave <= carol {
		t.Errorf("a user registered after the restore took id %d; one lost with the store "+
			"had %d", dave, carol)
	}
	ack := r.sendN(t, alice, bob, 1, "new")
	if ack.Seq <= lost.Seq || ack.MsgId <= lost.MsgId {
		t.Errorf("a conversation begun again after the restore stored seq %d msg_id %d; "+
			"devices hold seq %d msg_id %d of the lost one", ack.Seq, ack.MsgId, lost.Seq,
			lost.MsgId)
	}

	// A second restore moves the floor once more.
	if _, err := MoveSeqsPastRestore(ctxBG, r.db); err != nil {
		t.Fatalf("MoveSeqsPastRestore again: %v", err)
	}
	if floor, err := seqFloor(ctxBG, r.db); err != nil || floor != 2*RestoreSeqGap {
		t.Errorf("seq floor after two restores = %d (%v), want %d", floor, err,
			2*RestoreSeqGap)
	}
}

// The next user and message ids and a new conversation's seqs move past the
// gap on every store: sqlite_sequence on SQLite, AUTO_INCREMENT on MySQL.
func TestMoveSeqsPastRestore_MovesTheNextIDs(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		first := e.sendN(t, alice, bob, 1, "m")
		if _, err := MoveSeqsPastRestore(ctxBG, e.db); err != nil {
			t.Fatalf("MoveSeqsPastRestore: %v", err)
		}
		e.restart(t)
		carol := e.register(t, "carol")
		if carol <= bob+RestoreSeqGap {
			t.Errorf("a user registered after the move took id %d, want past %d", carol,
				bob+RestoreSeqGap)
		}
		ack := e.sendN(t, alice, carol, 1, "new conversation")
		if ack.MsgId <= first.MsgId+RestoreSeqGap || ack.Seq != RestoreSeqGap+1 {
			t.Errorf("a new conversation's first message took msg_id %d seq %d, want a "+
				"msg_id past %d and seq %d", ack.MsgId, ack.Seq, first.MsgId+RestoreSeqGap,
				RestoreSeqGap+1)
		}
	})
}
