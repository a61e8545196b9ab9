package logic

import (
	"fmt"
	"slices"
	"testing"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// quoteReq is a text SEND to conv quoting replyTo and mentioning ids.
func quoteReq(clientID, conv string, replyTo int64, all bool, ids ...int64) *protocol.SendReq {
	return &protocol.SendReq{ClientMsgId: clientID, ConvId: conv,
		ContentType: common.ContentType_TEXT, Content: []byte("text " + clientID),
		ReplyToSeq: setIf(replyTo), Mentions: ids, MentionAll: setIf(all)}
}

// Each quote or mention a sender may not make is refused with its code and
// stores nothing; what is allowed is stored as normalised and read back.
func TestSend_QuoteAndMentionRules(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob, carol := e.register(t, "alice"), e.register(t, "bob"), e.register(t, "carol")
		dave, erin := e.register(t, "dave"), e.register(t, "erin")
		g := e.group(t, alice, "g", bob, carol)       // seq 1
		for _, text := range []string{"one", "two"} { // seqs 2, 3
			if _, err := e.sendTo(alice, g, text); err != nil {
				t.Fatal(err)
			}
		}
		added, err := e.manage(alice, g, common.GroupAction_ADD, []int64{erin}, "", 0)
		if err != nil { // seq 4: erin's join
			t.Fatal(err)
		}
		send := func(user int64, req *protocol.SendReq) error {
			_, err := e.svc.Send(ctxBG, session(user, 1), req)
			return err
		}
		p2p := p2pConvID(alice, dave)
		e.sendN(t, alice, dave, 1, "p")
		big := make([]int64, maxMentions+1)
		for i := range big {
			big[i] = int64(1000 + i)
		}
		refused := []struct {
			name string
			user int64
			req  *protocol.SendReq
			code common.ErrorCode
		}{
			{"quote of itself", bob, quoteReq("r1", g, 5, false), common.ErrorCode_BAD_REQUEST},
			{"quote of the future", bob, quoteReq("r2", g, 9, false), common.ErrorCode_BAD_REQUEST},
			{"negative quote", bob, quoteReq("r3", g, -1, false), common.ErrorCode_BAD_REQUEST},
			{"quote from before the join", erin, quoteReq("r4", g, 3, false),
				common.ErrorCode_BAD_REQUEST},
			{"1:1 quote of the future", alice, quoteReq("r5", p2p, 2, false),
				common.ErrorCode_BAD_REQUEST},
			{"1:1 mention", alice, quoteReq("r6", p2p, 0, false, dave),
				common.ErrorCode_BAD_REQUEST},
			{"1:1 mention all", alice, quoteReq("r7", p2p, 0, true), common.ErrorCode_BAD_REQUEST},
			{"over 50 mentions", alice, quoteReq("r8", g, 0, false, big...),
				common.ErrorCode_BAD_REQUEST},
			{"a non-member", alice, quoteReq("r9", g, 0, false, bob, dave),
				common.ErrorCode_BAD_REQUEST},
			{"a bad id", alice, quoteReq("r10", g, 0, false, -3), common.ErrorCode_BAD_REQUEST},
			{"all by a member", bob, quoteReq("r11", g, 0, true), common.ErrorCode_FORBIDDEN},
		}
		for _, tc := range refused {
			wantCodeNamed(t, tc.name, send(tc.user, tc.req), tc.code)
		}
		if n := len(e.syncAll(t, alice, g)); n != int(added.Seq) {
			t.Fatalf("%d messages after the refusals, want %d", n, added.Seq)
		}

		// Allowed: erin quotes her join, duplicates and the sender are
		// dropped, the owner mentions all, a 1:1 quote.
		dups := slices.Repeat([]int64{carol, bob, alice}, maxMentions/3)
		for _, ok := range []struct {
			user int64
			req  *protocol.SendReq
		}{
			{erin, quoteReq("ok1", g, 4, false)},
			{alice, quoteReq("ok2", g, 2, false, dups...)},
			{alice, quoteReq("ok3", g, 0, true)},
			{dave, quoteReq("ok4", p2p, 1, false)},
		} {
			if err := send(ok.user, ok.req); err != nil {
				t.Fatalf("%s: %v", ok.req.ClientMsgId, err)
			}
		}
		msgs := e.syncAll(t, bob, g)
		got := msgs[len(msgs)-3:]
		if got[0].GetReplyToSeq() != 4 || got[1].GetReplyToSeq() != 2 ||
			!slices.Equal(got[1].Mentions, []int64{bob, carol}) || got[1].GetMentionAll() ||
			!got[2].GetMentionAll() || len(got[2].Mentions) != 0 {
			t.Fatalf("stored = %+v", got)
		}
		if pm := e.syncAll(t, alice, p2p); pm[len(pm)-1].GetReplyToSeq() != 1 {
			t.Fatalf("1:1 reply = %+v", pm[len(pm)-1])
		}

		// An edit and a recall keep the quote and the mentions.
		seq := got[1].Seq
		if _, err := e.svc.Edit(ctxBG, session(alice, 1), &protocol.EditReq{ClientMsgId: "e",
			ConvId: g, Seq: seq, ContentType: common.ContentType_TEXT,
			Content: []byte("edited")}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Recall(ctxBG, session(alice, 1),
			&protocol.RecallReq{ClientMsgId: "r", ConvId: g, Seq: seq}); err != nil {
			t.Fatal(err)
		}
		after := e.syncAll(t, bob, g)[seq-1]
		if !after.Recalled || after.GetReplyToSeq() != 2 ||
			!slices.Equal(after.Mentions, []int64{bob, carol}) {
			t.Fatalf("after edit and recall = %+v", after)
		}
	})
}

// wantCodeNamed is wantCode for one case of a table.
func wantCodeNamed(t *testing.T, name string, err error, code common.ErrorCode) {
	t.Helper()
	t.Run(name, func(t *testing.T) { wantCode(t, err, code) })
}

// mentionSeqs returns conv's mention_seq and read_seq as SyncConvs reports
// them to user's device, listing from cursor, with the cursor after.
func (e *env) mentionSeqs(t *testing.T, ss *logicrpc.Session, conv,
	cursor string) (mention, read int64, next string) {
	t.Helper()
	resp := e.syncConvs(t, ss, cursor, 100)
	found := false
	for _, c := range resp.Convs {
		if c.ConvId == conv {
			mention, read, found = c.MentionSeq, c.ReadSeq, true
		}
	}
	if !found {
		t.Fatalf("conv %s not listed after cursor %q: %v", conv, cursor, convIDs(resp))
	}
	return mention, read, resp.Cursor
}

// A mention reaches the mentioned user's other devices through SyncConvs:
// mention_seq is the newest seq mentioning them, by name or @all, and stays
// when they read past it; the sender and members not mentioned have none.
func TestSyncConvs_MentionSeqOnAnotherDevice(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob, carol := e.register(t, "alice"), e.register(t, "bob"), e.register(t, "carol")
		g := e.group(t, alice, "g", bob, carol)
		tablet := &logicrpc.Session{UserId: bob, DeviceId: "tablet", ConnId: 7}
		_, _, cursor := e.mentionSeqs(t, tablet, g, "")

		resp, err := e.svc.Send(ctxBG, session(alice, 1), quoteReq("m1", g, 0, false, bob))
		if err != nil {
			t.Fatal(err)
		}
		mention, read, cursor := e.mentionSeqs(t, tablet, g, cursor)
		if mention != resp.Seq || read >= mention {
			t.Fatalf("bob: mention_seq %d read_seq %d, want %d and below", mention, read, resp.Seq)
		}
		if m, _, _ := e.mentionSeqs(t, session(carol, 1), g, ""); m != 0 {
			t.Fatalf("carol, not mentioned: mention_seq %d", m)
		}

		all, err := e.svc.Send(ctxBG, session(alice, 1), quoteReq("m2", g, 0, true))
		if err != nil {
			t.Fatal(err)
		}
		if mention, _, _ = e.mentionSeqs(t, tablet, g, cursor); mention != all.Seq {
			t.Fatalf("bob after @all: mention_seq %d, want %d", mention, all.Seq)
		}
		if m, _, _ := e.mentionSeqs(t, session(carol, 1), g, ""); m != all.Seq {
			t.Fatalf("carol after @all: mention_seq %d, want %d", m, all.Seq)
		}
		if m, _, _ := e.mentionSeqs(t, session(alice, 1), g, ""); m != 0 {
			t.Fatalf("alice, the sender: mention_seq %d", m)
		}

		// Read on the phone: the tablet sees read_seq pass mention_seq.
		if _, err := e.svc.MarkRead(ctxBG, session(bob, 1),
			&protocol.MarkReadReq{ConvId: g, Seq: all.Seq}); err != nil {
			t.Fatal(err)
		}
		mention, read, _ = e.mentionSeqs(t, tablet, g, cursor)
		if mention != all.Seq || read < mention {
			t.Fatalf("after the read: mention_seq %d read_seq %d", mention, read)
		}
	})
}

// mentionItem is plainItem quoting replyTo and mentioning ids (or all).
func mentionItem(e *env, from int64, conv, clientID string, all bool,
	ids ...int64) *batchItem {
	it := plainItem(e, from, conv, clientID)
	it.w.m.MentionAll = all
	it.w.m.mentionIDs = normalMentions(from, ids)
	it.w.m.Mentions = encodeMentions(it.w.m.mentionIDs)
	return it
}

// One batch of mentions leaves the same mention positions on the plain path
// and the savepoint path: each member's newest mention, an @all leaving its
// own sender out (two @all of different senders in one batch), a refused
// write leaving nothing.
func TestMentions_BothBatchPaths(t *testing.T) {
	for _, plain := range []bool{true, false} {
		t.Run(fmt.Sprintf("plain=%v", plain), func(t *testing.T) {
			forEachStore(t, func(t *testing.T, e *env) {
				if plain && !e.svc.consecutiveIDs {
					t.Skip("this server allots a statement's ids interleaved: no plain path")
				}
				e.svc.consecutiveIDs = plain
				runMentionBatch(t, e, plain)
			})
		})
	}
}

func runMentionBatch(t *testing.T, e *env, plain bool) {
	t.Helper()
	alice, bob := e.register(t, "alice"), e.register(t, "bob")
	carol, dave, erin := e.register(t, "carol"), e.register(t, "dave"), e.register(t, "erin")
	g := e.group(t, alice, "g", bob, carol, dave) // seq 1
	h := e.group(t, bob, "h", alice, carol)       // seq 1
	if _, err := e.manage(alice, g, common.GroupAction_SET_ROLE, []int64{bob}, "",
		common.GroupRole_ADMIN); err != nil { // g seq 2
		t.Fatal(err)
	}
	items := []*batchItem{
		mentionItem(e, alice, g, "a1", false, carol),      // g 3
		mentionItem(e, alice, g, "a2", true),              // g 4
		mentionItem(e, carol, g, "c1", false, erin),       // refused: erin is no member
		mentionItem(e, bob, g, "b1", true),                // g 5
		mentionItem(e, bob, h, "h1", false, alice, carol), // h 2
		mentionItem(e, carol, h, "h2", false, alice),      // h 3
		mentionItem(e, dave, g, "d1", false),              // g 6, no mention
	}
	e.svc.commitBatch(slices.Clone(items))
	for _, it := range items {
		r := <-it.done
		if refused := it.w.m.ClientMsgID == "c1"; refused != (r.err != nil) {
			t.Fatalf("%s: err = %v", it.w.m.ClientMsgID, r.err)
		}
	}
	if n := e.svc.stats.plainBatches.Load(); (n == 1) != plain {
		t.Fatalf("plain batches = %d on the plain=%v path", n, plain)
	}
	want := []struct {
		user  int64
		conv  string
		seq   int64
		label string
	}{
		{alice, g, 5, "alice: bob's @all"},
		{bob, g, 4, "bob: alice's @all, not his own"},
		{carol, g, 5, "carol: the newest @all"},
		{dave, g, 5, "dave: @all"},
		{alice, h, 3, "alice: carol's mention"},
		{carol, h, 2, "carol: bob's mention"},
		{bob, h, 0, "bob: none"},
	}
	for _, w := range want {
		if m, _, _ := e.mentionSeqs(t, session(w.user, 1), w.conv, ""); m != w.seq {
			t.Errorf("%s: mention_seq %d, want %d", w.label, m, w.seq)
		}
	}
}
