package logic

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"gorm.io/gorm"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// react sends one reaction of user's, keyed by a fresh client id.
func (e *env) react(user int64, conv string, seq int64, emoji string,
	remove bool) (*protocol.SendResp, error) {
	return e.svc.React(ctxBG, session(user, 1), &protocol.ReactReq{
		ClientMsgId: fmt.Sprintf("re-%d-%d-%s-%t", user, seq, emoji, remove),
		ConvId:      conv, Seq: seq, Emoji: emoji, Remove: remove})
}

// mustReact is react that fails the test on an error or a duplicate.
func (e *env) mustReact(t *testing.T, user int64, conv string, seq int64, emoji string,
	remove bool) *protocol.SendResp {
	t.Helper()
	resp, err := e.react(user, conv, seq, emoji, remove)
	if err != nil || resp.Duplicate {
		t.Fatalf("react user=%d seq=%d %q remove=%t = %+v, %v", user, seq, emoji, remove, resp, err)
	}
	return resp
}

func TestReact_EventsAndSyncAggregation(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		conv := e.sendN(t, alice, bob, 1, "hi").ConvId

		ack := e.mustReact(t, bob, conv, 1, "👍", false)
		if ack.Seq != 2 {
			t.Fatalf("react ack %+v, want seq 2", ack)
		}
		e.mustReact(t, alice, conv, 1, "👍", false)
		e.mustReact(t, alice, conv, 1, "😂", false)

		msgs := e.syncAll(t, alice, conv)
		if len(msgs) != 4 {
			t.Fatalf("%d messages, want the message and 3 events", len(msgs))
		}
		var ev common.ReactionEvent
		if _, err := ev.FastRead(msgs[1].Content); err != nil ||
			msgs[1].ContentType != common.ContentType_REACTION || msgs[1].SenderId != bob ||
			ev.Seq != 1 || ev.MsgId != msgs[0].MsgId || ev.Emoji != "👍" || ev.Removed {
			t.Fatalf("reaction event %+v of %+v (%v)", ev, msgs[1], err)
		}
		got := msgs[0].Reactions
		if len(got) != 2 || got[0].Emoji != "👍" || got[0].Count != 2 ||
			fmt.Sprint(got[0].UserIds) != fmt.Sprint([]int64{bob, alice}) ||
			got[1].Emoji != "😂" || got[1].Count != 1 {
			t.Fatalf("reactions %v", got)
		}
		for _, m := range msgs[1:] {
			if m.Reactions != nil {
				t.Fatalf("event seq %d carries reactions %v", m.Seq, m.Reactions)
			}
		}

		// A removal is an event too, and the sum follows it.
		rm := e.mustReact(t, bob, conv, 1, "👍", true)
		msgs = e.syncAll(t, bob, conv)
		if _, err := ev.FastRead(msgs[len(msgs)-1].Content); err != nil || !ev.Removed ||
			msgs[len(msgs)-1].Seq != rm.Seq {
			t.Fatalf("removal event %+v (%v)", ev, err)
		}
		if got := msgs[0].Reactions; len(got) != 2 || got[0].Count != 1 ||
			fmt.Sprint(got[0].UserIds) != fmt.Sprint([]int64{alice}) {
			t.Fatalf("reactions after removal %v", got)
		}

		// A recalled message shows none, and takes no more.
		if _, err := e.svc.Recall(ctxBG, session(alice, 1), &protocol.RecallReq{ClientMsgId: "r",
			ConvId: conv, Seq: 1}); err != nil {
			t.Fatal(err)
		}
		if got := e.syncAll(t, bob, conv)[0]; !got.Recalled || got.Reactions != nil {
			t.Fatalf("recalled message %+v", got)
		}
		_, err := e.react(bob, conv, 1, "🎉", false)
		wantCode(t, err, common.ErrorCode_FORBIDDEN)
		var kept int64
		if err := e.db.Model(&reactionRow{}).Where("conv_id = ? AND seq = ?", conv, 1).
			Count(&kept).Error; err != nil || kept != 0 {
			t.Fatalf("%d reaction rows of the recalled message kept (%v)", kept, err)
		}
	})
}

func TestReact_Idempotent(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		conv := e.sendN(t, alice, bob, 1, "hi").ConvId
		req := &protocol.ReactReq{ClientMsgId: "k1", ConvId: conv, Seq: 1, Emoji: "❤️"}
		first, err := e.svc.React(ctxBG, session(bob, 1), req)
		if err != nil || first.Duplicate {
			t.Fatalf("react = %+v, %v", first, err)
		}

		// A retry under the same client id answers the first ack.
		again, err := e.svc.React(ctxBG, session(bob, 1), req)
		if err != nil || !again.Duplicate || again.Seq != first.Seq || again.MsgId != first.MsgId {
			t.Fatalf("retry = %+v, %v; want duplicate of %+v", again, err, first)
		}
		// The same reaction under a new client id stores nothing.
		dup, err := e.svc.React(ctxBG, session(bob, 1), &protocol.ReactReq{ClientMsgId: "k2",
			ConvId: conv, Seq: 1, Emoji: "❤️"})
		if err != nil || !dup.Duplicate || dup.Seq != 0 || dup.MsgId != 0 {
			t.Fatalf("second add = %+v, %v; want a duplicate with no event", dup, err)
		}
		// So does removing one the user does not have.
		dup, err = e.svc.React(ctxBG, session(bob, 1), &protocol.ReactReq{ClientMsgId: "k3",
			ConvId: conv, Seq: 1, Emoji: "👍", Remove: true})
		if err != nil || !dup.Duplicate || dup.Seq != 0 {
			t.Fatalf("removing what bob lacks = %+v, %v", dup, err)
		}
		if n := len(e.syncAll(t, alice, conv)); n != 2 {
			t.Fatalf("%d messages, want the message and one event", n)
		}
	})
}

func TestReact_Refusals(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob, carol := e.register(t, "alice"), e.register(t, "bob"), e.register(t, "carol")
		conv := e.sendN(t, alice, bob, 2, "hi").ConvId
		e.mustReact(t, bob, conv, 1, "👍", false) // seq 3
		if _, err := e.svc.Recall(ctxBG, session(alice, 1), &protocol.RecallReq{ClientMsgId: "r",
			ConvId: conv, Seq: 2}); err != nil { // seq 4
			t.Fatal(err)
		}

		cases := []struct {
			name  string
			user  int64
			conv  string
			seq   int64
			emoji string
			want  common.ErrorCode
		}{
			{"empty emoji", bob, conv, 1, "", common.ErrorCode_BAD_REQUEST},
			{"emoji too long", bob, conv, 1, strings.Repeat("😀", 9), common.ErrorCode_TOO_LARGE},
			{"not UTF-8", bob, conv, 1, "\xff", common.ErrorCode_BAD_REQUEST},
			{"space", bob, conv, 1, "👍 ", common.ErrorCode_BAD_REQUEST},
			{"control", bob, conv, 1, "a\x00", common.ErrorCode_BAD_REQUEST},
			{"zero seq", bob, conv, 0, "👍", common.ErrorCode_BAD_REQUEST},
			{"no such seq", bob, conv, 99, "👍", common.ErrorCode_NOT_FOUND},
			{"reaction event", bob, conv, 3, "👍", common.ErrorCode_BAD_REQUEST},
			{"recall event", bob, conv, 4, "👍", common.ErrorCode_BAD_REQUEST},
			{"recalled", bob, conv, 2, "👍", common.ErrorCode_FORBIDDEN},
			{"outsider", carol, conv, 1, "👍", common.ErrorCode_FORBIDDEN},
		}
		for _, c := range cases {
			_, err := e.react(c.user, c.conv, c.seq, c.emoji, false)
			if err == nil {
				t.Errorf("%s: accepted, want %v", c.name, c.want)
				continue
			}
			wantCode(t, err, c.want)
		}

		// A message the user cleared is gone from their history.
		if _, err := e.svc.ClearConv(ctxBG, session(bob, 1),
			&protocol.ClearConvReq{ConvId: conv, UpToSeq: 1}); err != nil {
			t.Fatal(err)
		}
		_, err := e.react(bob, conv, 1, "😂", false)
		wantCode(t, err, common.ErrorCode_NOT_FOUND)
		e.mustReact(t, alice, conv, 1, "😂", false) // alice's history is whole

		// Blocked either way, as SEND.
		if _, err := e.svc.Block(ctxBG, session(alice, 1),
			&protocol.BlockReq{UserId: bob, Blocked: true}); err != nil {
			t.Fatal(err)
		}
		_, err = e.react(bob, conv, 1, "🎉", false)
		wantCode(t, err, common.ErrorCode_FORBIDDEN)
		_, err = e.react(alice, conv, 1, "🎉", false)
		wantCode(t, err, common.ErrorCode_FORBIDDEN)
	})
}

func TestReact_Group(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob, carol := e.register(t, "alice"), e.register(t, "bob"), e.register(t, "carol")
		conv := e.group(t, alice, "g", bob)
		if _, err := e.sendTo(alice, conv, "before carol"); err != nil { // seq 2
			t.Fatal(err)
		}
		// The group event itself is not a message to react to.
		_, err := e.react(bob, conv, 1, "👍", false)
		wantCode(t, err, common.ErrorCode_BAD_REQUEST)
		_, err = e.react(carol, conv, 2, "👍", false)
		wantCode(t, err, common.ErrorCode_FORBIDDEN) // not a member

		if _, err := e.manage(alice, conv, common.GroupAction_ADD, []int64{carol}, "",
			0); err != nil { // seq 3
			t.Fatal(err)
		}
		// A message from before carol joined is not hers to react to.
		_, err = e.react(carol, conv, 2, "👍", false)
		wantCode(t, err, common.ErrorCode_FORBIDDEN)
		if _, err := e.sendTo(alice, conv, "after"); err != nil { // seq 4
			t.Fatal(err)
		}
		e.mustReact(t, carol, conv, 4, "🎉", false)
		e.mustReact(t, bob, conv, 2, "🎉", false)

		// Each member sees the sum of the messages they can read.
		msgs := e.syncAll(t, bob, conv)
		if got := msgs[1].Reactions; len(got) != 1 || got[0].Count != 1 {
			t.Fatalf("bob's seq 2 reactions %v", got)
		}
		if got := msgs[3].Reactions; len(got) != 1 || got[0].UserIds[0] != carol {
			t.Fatalf("bob's seq 4 reactions %v", got)
		}
	})
}

func TestReact_Limits(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		owner := e.register(t, "owner")
		members := make([]int64, 21)
		for i := range members {
			members[i] = e.register(t, fmt.Sprintf("member%02d", i))
		}
		conv := e.group(t, owner, "g", members...)
		if _, err := e.sendTo(owner, conv, "react to me"); err != nil { // seq 2
			t.Fatal(err)
		}

		// Three reactions per user per message.
		for _, emoji := range []string{"a", "b", "c"} {
			e.mustReact(t, owner, conv, 2, emoji, false)
		}
		_, err := e.react(owner, conv, 2, "d", false)
		wantCode(t, err, common.ErrorCode_TOO_LARGE)
		e.mustReact(t, owner, conv, 2, "c", true) // room again
		e.mustReact(t, owner, conv, 2, "d", false)

		// Twenty distinct emoji per message; an emoji already there is
		// always open to one more user.
		for i := range 17 {
			e.mustReact(t, members[i], conv, 2, fmt.Sprintf("e%02d", i), false)
		}
		_, err = e.react(members[17], conv, 2, "new", false)
		wantCode(t, err, common.ErrorCode_TOO_LARGE)
		for i := range 12 {
			e.mustReact(t, members[i], conv, 2, "a", false)
		}

		// SYNC names the first ten users of an emoji and counts them all.
		msgs := e.syncAll(t, members[20], conv)
		got := msgs[1].Reactions
		if len(got) != 20 {
			t.Fatalf("%d emoji on seq 2, want 20", len(got))
		}
		a := got[0]
		want := append([]int64{owner}, members[:9]...)
		if a.Emoji != "a" || a.Count != 13 || fmt.Sprint(a.UserIds) != fmt.Sprint(want) {
			t.Fatalf("emoji a = %+v, want count 13 and users %v", a, want)
		}
	})
}

func TestReact_NotUnread(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		conv := e.sendN(t, alice, bob, 2, "hi").ConvId
		e.mustReact(t, alice, conv, 1, "👍", false) // alice's own message, bob's unread
		e.mustReact(t, alice, conv, 2, "👍", false)
		e.sendN(t, alice, bob, 1, "more")
		e.mustReact(t, alice, conv, 5, "👀", false)

		page := e.syncConvs(t, session(bob, 1), "", 10)
		if len(page.Convs) != 1 || page.Convs[0].LastSeq != 6 || page.Convs[0].Unread != 3 {
			t.Fatalf("bob's summary %+v, want last_seq 6 and 3 unread", page.Convs)
		}

		// Read past some: only the messages after it count.
		if _, err := e.svc.MarkRead(ctxBG, session(bob, 1),
			&protocol.MarkReadReq{ConvId: conv, Seq: 3}); err != nil {
			t.Fatal(err)
		}
		page = e.syncConvs(t, session(bob, 1), "", 10)
		if page.Convs[0].Unread != 1 {
			t.Fatalf("unread %d after reading to 3, want 1", page.Convs[0].Unread)
		}
	})
}

// countReactionReads counts the reactions reads of SYNC pages (reactionsOf)
// on the read pool from now on.
func countReactionReads(t *testing.T, e *env) *atomic.Int64 {
	t.Helper()
	var n atomic.Int64
	count := func(db *gorm.DB) {
		if strings.Contains(db.Statement.SQL.String(), "ROW_NUMBER() OVER") {
			n.Add(1)
		}
	}
	// Scan runs the row callbacks.
	name := "test:count_reaction_reads"
	if err := e.svc.rdb.Callback().Row().After("gorm:row").Register(name, count); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.svc.rdb.Callback().Row().Remove(name) })
	return &n
}

// Most conversations never see a reaction, and each SYNC page of one read
// the reactions table all the same.
func TestSync_ReadsReactionsOnlyWhereThereWereSome(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		conv := e.sendN(t, alice, bob, 3, "hi").ConvId
		reads := countReactionReads(t, e)

		if msgs := e.syncAll(t, bob, conv); len(msgs) != 3 {
			t.Fatalf("%d messages, want 3", len(msgs))
		}
		if n := reads.Load(); n != 0 {
			t.Fatalf("%d reactions reads for a page of a conversation never reacted in, want 0", n)
		}

		e.mustReact(t, bob, conv, 2, "👍", false)
		msgs := e.syncAll(t, alice, conv)
		if n := reads.Load(); n != 1 {
			t.Fatalf("%d reactions reads for a page of a conversation reacted in, want 1", n)
		}
		if got := msgs[1].Reactions; len(got) != 1 || got[0].Emoji != "👍" || got[0].Count != 1 {
			t.Fatalf("reactions of seq 2: %v", got)
		}

		// Taken back, the conversation still reads them: a flag, not a count.
		e.mustReact(t, bob, conv, 2, "👍", true)
		if msgs := e.syncAll(t, alice, conv); msgs[1].Reactions != nil {
			t.Fatalf("reactions of seq 2 after removal: %v", msgs[1].Reactions)
		}
	})
}
