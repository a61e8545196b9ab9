package logic

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/resonance-im/resonance/internal/ratelimit"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// pinCalls numbers the client ids of env.pin, so that a repeated pin is a
// new request, not a retry.
var pinCalls int64

// pin pins (or unpins) seq of conv as user, keyed by a fresh client id.
func (e *env) pin(user int64, conv string, seq int64, unpin bool) (*protocol.SendResp, error) {
	pinCalls++
	return e.svc.Pin(ctxBG, session(user, 1), &protocol.PinReq{
		ClientMsgId: fmt.Sprintf("pin-%d-%d", user, pinCalls), ConvId: conv, Seq: seq,
		Unpin: unpin})
}

// mustPin is pin that fails the test on an error or a duplicate.
func (e *env) mustPin(t *testing.T, user int64, conv string, seq int64,
	unpin bool) *protocol.SendResp {
	t.Helper()
	resp, err := e.pin(user, conv, seq, unpin)
	if err != nil || resp.Duplicate {
		t.Fatalf("pin user=%d seq=%d unpin=%t = %+v, %v", user, seq, unpin, resp, err)
	}
	return resp
}

// pinsOf returns conv's pinned_seqs in user's SYNC_CONVS listing.
func (e *env) pinsOf(t *testing.T, user int64, conv string) []int64 {
	t.Helper()
	for _, c := range e.syncConvs(t, session(user, 1), "", 200).Convs {
		if c.ConvId == conv {
			return c.PinnedSeqs
		}
	}
	t.Fatalf("conv %s not listed for user %d", conv, user)
	return nil
}

func wantPins(t *testing.T, what string, got []int64, want ...int64) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: pinned_seqs %v, want %v", what, got, want)
	}
}

func TestPin_EventsAndSummary(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		conv := e.sendN(t, alice, bob, 3, "hi").ConvId

		// Either user of a 1:1 conversation may pin, any message of it.
		ack := e.mustPin(t, bob, conv, 1, false)
		if ack.Seq != 4 {
			t.Fatalf("pin ack %+v, want seq 4", ack)
		}
		e.mustPin(t, alice, conv, 3, false)
		msgs := e.syncAll(t, alice, conv)
		var ev common.PinEvent
		if _, err := ev.FastRead(msgs[3].Content); err != nil ||
			msgs[3].ContentType != common.ContentType_PIN || msgs[3].SenderId != bob ||
			ev.Seq != 1 || ev.MsgId != msgs[0].MsgId || ev.Unpinned {
			t.Fatalf("pin event %+v of %+v (%v)", ev, msgs[3], err)
		}
		wantPins(t, "alice", e.pinsOf(t, alice, conv), 3, 1)
		wantPins(t, "bob", e.pinsOf(t, bob, conv), 3, 1)

		// An unpin is an event too, and the pins follow it.
		un := e.mustPin(t, alice, conv, 1, true)
		msgs = e.syncAll(t, bob, conv)
		last := msgs[len(msgs)-1]
		if _, err := ev.FastRead(last.Content); err != nil || !ev.Unpinned || ev.Seq != 1 ||
			last.Seq != un.Seq || last.SenderId != alice {
			t.Fatalf("unpin event %+v of %+v (%v)", ev, last, err)
		}
		wantPins(t, "after unpin", e.pinsOf(t, bob, conv), 3)
	})
}

func TestPin_AlreadyInThatState(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		conv := e.sendN(t, alice, bob, 2, "hi").ConvId
		first := e.mustPin(t, alice, conv, 1, false) // seq 3

		// Pinning a pinned message and unpinning one that is not store
		// nothing and answer duplicate, without a seq.
		for _, c := range []struct {
			name  string
			seq   int64
			unpin bool
		}{{"pin again", 1, false}, {"unpin unpinned", 2, true}} {
			resp, err := e.pin(bob, conv, c.seq, c.unpin)
			if err != nil || !resp.Duplicate || resp.Seq != 0 || resp.MsgId != 0 {
				t.Fatalf("%s = %+v, %v; want a duplicate without seq", c.name, resp, err)
			}
		}
		// A retry of the first answers its ack.
		retry, err := e.svc.Pin(ctxBG, session(alice, 1), &protocol.PinReq{
			ClientMsgId: fmt.Sprintf("pin-%d-%d", alice, pinCalls-2), ConvId: conv, Seq: 1})
		if err != nil || !retry.Duplicate || retry.Seq != first.Seq {
			t.Fatalf("retry = %+v, %v; want the first ack %+v", retry, err, first)
		}
		if n := len(e.syncAll(t, alice, conv)); n != 3 {
			t.Fatalf("%d messages, want 2 and one pin event", n)
		}
		wantPins(t, "after repeats", e.pinsOf(t, alice, conv), 1)
	})
}

func TestPin_Refusals(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob, carol := e.register(t, "alice"), e.register(t, "bob"), e.register(t, "carol")
		conv := e.sendN(t, alice, bob, 2, "hi").ConvId
		e.mustPin(t, bob, conv, 1, false)        // seq 3
		e.mustReact(t, bob, conv, 1, "👍", false) // seq 4
		if _, err := e.svc.Recall(ctxBG, session(alice, 1), &protocol.RecallReq{ClientMsgId: "r",
			ConvId: conv, Seq: 2}); err != nil { // seq 5
			t.Fatal(err)
		}
		cases := []struct {
			name string
			user int64
			seq  int64
			want common.ErrorCode
		}{
			{"zero seq", bob, 0, common.ErrorCode_BAD_REQUEST},
			{"no such seq", bob, 99, common.ErrorCode_NOT_FOUND},
			{"pin event", bob, 3, common.ErrorCode_BAD_REQUEST},
			{"reaction event", bob, 4, common.ErrorCode_BAD_REQUEST},
			{"recall event", bob, 5, common.ErrorCode_BAD_REQUEST},
			{"recalled", bob, 2, common.ErrorCode_FORBIDDEN},
			{"outsider", carol, 1, common.ErrorCode_FORBIDDEN},
		}
		for _, c := range cases {
			_, err := e.pin(c.user, conv, c.seq, false)
			if err == nil {
				t.Errorf("%s: accepted, want %v", c.name, c.want)
				continue
			}
			wantCode(t, err, c.want)
		}

		// A message the user cleared is gone from their history, and from
		// their pins; the other user still has both.
		e.clear(t, session(bob, 1), conv, 1, false)
		_, err := e.pin(bob, conv, 1, true)
		wantCode(t, err, common.ErrorCode_NOT_FOUND)
		wantPins(t, "bob after clearing", e.pinsOf(t, bob, conv))
		wantPins(t, "alice", e.pinsOf(t, alice, conv), 1)

		// Blocked either way, as SEND.
		if _, err := e.svc.Block(ctxBG, session(alice, 1),
			&protocol.BlockReq{UserId: bob, Blocked: true}); err != nil {
			t.Fatal(err)
		}
		_, err = e.pin(alice, conv, 1, true)
		wantCode(t, err, common.ErrorCode_FORBIDDEN)
	})
}

func TestPin_RecallUnpins(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		conv := e.sendN(t, alice, bob, 2, "hi").ConvId
		e.mustPin(t, bob, conv, 1, false)
		e.mustPin(t, bob, conv, 2, false)
		if _, err := e.svc.Recall(ctxBG, session(alice, 1), &protocol.RecallReq{ClientMsgId: "r",
			ConvId: conv, Seq: 2}); err != nil {
			t.Fatal(err)
		}
		wantPins(t, "after the recall", e.pinsOf(t, bob, conv), 1)
		// It is unpinned for good: unpinning it finds a recalled message.
		_, err := e.pin(bob, conv, 2, true)
		wantCode(t, err, common.ErrorCode_FORBIDDEN)
	})
}

func TestPin_GroupRoles(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		owner, admin := e.register(t, "owner"), e.register(t, "admin")
		member, late := e.register(t, "member"), e.register(t, "late")
		conv := e.group(t, owner, "g", admin, member)
		if _, err := e.manage(owner, conv, common.GroupAction_SET_ROLE, []int64{admin}, "",
			common.GroupRole_ADMIN); err != nil { // seq 2
			t.Fatal(err)
		}
		if _, err := e.sendTo(member, conv, "before late"); err != nil { // seq 3
			t.Fatal(err)
		}

		// The owner and admins pin; a plain member may neither pin nor unpin.
		_, err := e.pin(member, conv, 3, false)
		wantCode(t, err, common.ErrorCode_FORBIDDEN)
		e.mustPin(t, admin, conv, 3, false) // seq 4
		_, err = e.pin(member, conv, 3, true)
		wantCode(t, err, common.ErrorCode_FORBIDDEN)
		wantPins(t, "member", e.pinsOf(t, member, conv), 3)

		// A later admin pins only what they can read, and is not shown the
		// pins of messages from before their joining.
		if _, err := e.manage(owner, conv, common.GroupAction_ADD, []int64{late}, "",
			0); err != nil { // seq 5
			t.Fatal(err)
		}
		if _, err := e.manage(owner, conv, common.GroupAction_SET_ROLE, []int64{late}, "",
			common.GroupRole_ADMIN); err != nil { // seq 6
			t.Fatal(err)
		}
		_, err = e.pin(late, conv, 3, true)
		wantCode(t, err, common.ErrorCode_FORBIDDEN)
		if _, err := e.sendTo(owner, conv, "after late"); err != nil { // seq 7
			t.Fatal(err)
		}
		e.mustPin(t, late, conv, 7, false)
		wantPins(t, "late", e.pinsOf(t, late, conv), 7)
		wantPins(t, "owner", e.pinsOf(t, owner, conv), 7, 3)

		// A member who left sees no pins: later ones are not theirs.
		if _, err := e.manage(member, conv, common.GroupAction_LEAVE, nil, "", 0); err != nil {
			t.Fatal(err)
		}
		wantPins(t, "left", e.pinsOf(t, member, conv))
	})
}

func TestPin_AtMostMaxPins(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		e.svc.limits.pin = ratelimit.New(ratelimit.Config{Burst: 100, Per: time.Hour})
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		conv := e.sendN(t, alice, bob, MaxPins+1, "m").ConvId
		for seq := int64(1); seq <= MaxPins; seq++ {
			e.mustPin(t, alice, conv, seq, false)
		}
		_, err := e.pin(bob, conv, MaxPins+1, false)
		wantCode(t, err, common.ErrorCode_TOO_LARGE)
		// Repeating a pin is still answered, and an unpin makes room.
		if resp, err := e.pin(bob, conv, 1, false); err != nil || !resp.Duplicate {
			t.Fatalf("pin of a pinned message at the limit = %+v, %v", resp, err)
		}
		e.mustPin(t, bob, conv, 1, true)
		e.mustPin(t, bob, conv, MaxPins+1, false)
		if got := e.pinsOf(t, alice, conv); len(got) != MaxPins || got[0] != MaxPins+1 {
			t.Fatalf("pins %v, want %d, newest %d first", got, MaxPins, MaxPins+1)
		}
	})
}

func TestPin_RateLimited(t *testing.T) {
	e := newEnv(t, Config{DBDriver: DriverSQLite, DBDSN: t.TempDir() + "/logic.db",
		PinLimit: ratelimit.Config{Burst: 2, Per: time.Hour}})
	alice, bob := e.register(t, "alice"), e.register(t, "bob")
	conv := e.sendN(t, alice, bob, 2, "hi").ConvId
	e.mustPin(t, alice, conv, 1, false)
	e.mustPin(t, alice, conv, 1, true)
	_, err := e.pin(alice, conv, 2, false)
	wantCode(t, err, common.ErrorCode_RATE_LIMITED)
	e.mustPin(t, bob, conv, 2, false) // a budget per user
}

func TestPin_LoginAnnouncesMaxPins(t *testing.T) {
	l := Config{}.withDefaults().clientLimits()
	if l.GetMaxPins() != MaxPins {
		t.Fatalf("limits %+v, want max_pins %d", l, MaxPins)
	}
}
