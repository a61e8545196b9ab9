package logic

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// sendBatch calls SendBatch as user on connection 1 and fails t unless the
// call succeeds with one outcome per request.
func (e *env) sendBatch(t *testing.T, user int64,
	reqs ...*protocol.SendReq) []*logicrpc.SendOutcome {
	t.Helper()
	out, err := e.svc.SendBatch(context.Background(), session(user, 1), reqs)
	if err != nil {
		t.Fatalf("send batch of %d: %v", len(reqs), err)
	}
	if len(out) != len(reqs) {
		t.Fatalf("%d outcomes for %d requests", len(out), len(reqs))
	}
	return out
}

// wantAck fails t unless o is an ack of seq in conv, duplicate or not.
func wantAck(t *testing.T, i int, o *logicrpc.SendOutcome, conv string, seq int64,
	duplicate bool) {
	t.Helper()
	if o.Err != nil || o.Resp == nil {
		t.Fatalf("outcome %d = %v, %v; want seq %d in %s", i, o.Resp, o.Err, seq, conv)
	}
	if r := o.Resp; r.ConvId != conv || r.Seq != seq || r.Duplicate != duplicate {
		t.Fatalf("outcome %d = %+v; want seq %d in %s, duplicate %v", i, r, seq, conv, duplicate)
	}
}

// A batch of one session's sends to one conversation is stored in order,
// with consecutive seqs, in one commit, and published in that order.
func TestSendBatch_StoresInOrderInOneCommit(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		e.sendN(t, alice, bob, 1, "open") // the conversation exists: one round
		conv := p2pConvID(alice, bob)
		const n = 30
		reqs := make([]*protocol.SendReq, n)
		for i := range reqs {
			reqs[i] = textReq(fmt.Sprintf("b%02d", i), bob)
		}
		commits, writes := e.svc.stats.batches.Load(), e.svc.stats.batchedWrites.Load()
		out := e.sendBatch(t, alice, reqs...)
		if c, w := e.svc.stats.batches.Load()-commits,
			e.svc.stats.batchedWrites.Load()-writes; c != 1 || w != n {
			t.Fatalf("%d commits of %d writes; want 1 of %d", c, w, n)
		}
		for i, o := range out {
			wantAck(t, i, o, conv, int64(i+2), false)
		}
		msgs := e.syncAll(t, bob, conv)
		for i, m := range msgs[1:] {
			if m.MsgId != out[i].Resp.MsgId || string(m.Content) != string(reqs[i].Content) {
				t.Fatalf("message seq %d = %d %q; want %d %q", m.Seq, m.MsgId, m.Content,
					out[i].Resp.MsgId, reqs[i].Content)
			}
		}
		e.waitPublished(t, n+1)
		if seqs := e.streamSeqs(t); !slices.Equal(seqs, seqsOf(msgs)) {
			t.Fatalf("stream holds seqs %v; want %v", seqs, seqsOf(msgs))
		}
	})
}

// A request that Send would refuse gets its own error; the others of the
// batch are stored in order around it.
func TestSendBatch_RefusesRequestsAlone(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		carol, owner := e.register(t, "carol"), e.register(t, "owner")
		if _, err := e.svc.Block(ctx, session(carol, 1),
			&protocol.BlockReq{UserId: alice, Blocked: true}); err != nil {
			t.Fatal(err)
		}
		mine, theirs := e.group(t, alice, "mine", bob), e.group(t, owner, "theirs", bob)
		e.sendN(t, alice, bob, 1, "open")
		toGroup := func(client, conv string) *protocol.SendReq {
			return &protocol.SendReq{ClientMsgId: client, ConvId: conv,
				ContentType: common.ContentType_TEXT, Content: []byte(client)}
		}
		empty := textReq("empty", bob)
		empty.Content = nil
		cases := []struct {
			name string
			req  *protocol.SendReq
			code common.ErrorCode // OK: stored
			conv string
			seq  int64
		}{
			{name: "first to bob", req: textReq("b1", bob), conv: p2pConvID(alice, bob), seq: 2},
			{name: "empty content", req: empty, code: common.ErrorCode_BAD_REQUEST},
			{name: "to a blocking peer", req: textReq("c1", carol),
				code: common.ErrorCode_FORBIDDEN},
			{name: "to a group of others", req: toGroup("t1", theirs),
				code: common.ErrorCode_FORBIDDEN},
			{name: "to her group", req: toGroup("m1", mine), conv: mine, seq: 2},
			{name: "to nobody", req: textReq("x1", owner+100), code: common.ErrorCode_NOT_FOUND},
			{name: "to herself", req: textReq("a1", alice), code: common.ErrorCode_BAD_REQUEST},
			{name: "second to bob", req: textReq("b2", bob), conv: p2pConvID(alice, bob), seq: 3},
			{name: "second to her group", req: toGroup("m2", mine), conv: mine, seq: 3},
		}
		reqs := make([]*protocol.SendReq, len(cases))
		for i, tc := range cases {
			reqs[i] = tc.req
		}
		out := e.sendBatch(t, alice, reqs...)
		for i, tc := range cases {
			if tc.code != common.ErrorCode_OK {
				if out[i].Resp != nil {
					t.Fatalf("%s: stored as %+v, want %s", tc.name, out[i].Resp, tc.code)
				}
				wantCode(t, out[i].Err, tc.code)
				continue
			}
			wantAck(t, i, out[i], tc.conv, tc.seq, false)
		}
		if got := seqsOf(e.syncAll(t, bob, theirs)); !slices.Equal(got, []int64{1}) {
			t.Fatalf("the group alice is not in holds seqs %v", got)
		}
	})
}

// A client id sent again, in the same batch or a later one, gets the first
// ack marked duplicate and stores nothing.
func TestSendBatch_RetriesGetTheFirstAck(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		conv := p2pConvID(alice, bob)
		first := e.sendBatch(t, alice, textReq("a1", bob), textReq("a2", bob), textReq("a1", bob))
		wantAck(t, 0, first[0], conv, 1, false)
		wantAck(t, 1, first[1], conv, 2, false)
		wantAck(t, 2, first[2], conv, 1, true)
		if first[2].Resp.MsgId != first[0].Resp.MsgId ||
			first[2].Resp.SendTimeMs != first[0].Resp.SendTimeMs {
			t.Fatalf("retry in the batch = %+v; first ack %+v", first[2].Resp, first[0].Resp)
		}

		// Across batches, and once the peer blocks: still the first ack.
		again := e.sendBatch(t, alice, textReq("a2", bob), textReq("a3", bob))
		wantAck(t, 0, again[0], conv, 2, true)
		wantAck(t, 1, again[1], conv, 3, false)
		if again[0].Resp.MsgId != first[1].Resp.MsgId {
			t.Fatalf("retry across batches = %+v; first ack %+v", again[0].Resp, first[1].Resp)
		}
		if _, err := e.svc.Block(context.Background(), session(bob, 1),
			&protocol.BlockReq{UserId: alice, Blocked: true}); err != nil {
			t.Fatal(err)
		}
		blocked := e.sendBatch(t, alice, textReq("a3", bob), textReq("a4", bob))
		wantAck(t, 0, blocked[0], conv, 3, true)
		wantCode(t, blocked[1].Err, common.ErrorCode_FORBIDDEN)

		if n := e.countMessages(t); n != 3 {
			t.Fatalf("store holds %d messages, want 3", n)
		}
		e.waitPublished(t, 3)
	})
}

// The first messages to new peers, interleaved with messages to a
// conversation that exists, are all stored, each conversation in order:
// the batch creates the missing conversations and stores their messages
// in a second round.
func TestSendBatch_FirstMessagesToNewPeers(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		carol, dave := e.register(t, "carol"), e.register(t, "dave")
		e.sendN(t, alice, bob, 1, "open")
		peers := []int64{carol, bob, carol, dave, bob, carol, dave}
		reqs := make([]*protocol.SendReq, len(peers))
		for i, p := range peers {
			reqs[i] = textReq(fmt.Sprintf("n%d", i), p)
		}
		out := e.sendBatch(t, alice, reqs...)
		next := map[int64]int64{carol: 1, bob: 2, dave: 1}
		for i, p := range peers {
			wantAck(t, i, out[i], p2pConvID(alice, p), next[p], false)
			next[p]++
		}
		for _, p := range []int64{carol, dave} {
			if convs := e.syncConvs(t, session(p, 1), "", 10).Convs; len(convs) != 1 {
				t.Fatalf("user %d lists %d conversations, want the new one", p, len(convs))
			}
		}
	})
}

// A call with no request or more than MaxSendBatch, or without a session, is
// refused whole.
func TestSendBatch_Bounds(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	alice, bob := e.register(t, "alice"), e.register(t, "bob")
	many := func(n int) []*protocol.SendReq {
		reqs := make([]*protocol.SendReq, n)
		for i := range reqs {
			reqs[i] = textReq(fmt.Sprintf("m%d", i), bob)
		}
		return reqs
	}
	cases := []struct {
		name    string
		session *logicrpc.Session
		reqs    []*protocol.SendReq
		code    common.ErrorCode
	}{
		{name: "none", session: session(alice, 1), code: common.ErrorCode_BAD_REQUEST},
		{name: "one over", session: session(alice, 1), reqs: many(logicrpc.MaxSendBatch + 1),
			code: common.ErrorCode_BAD_REQUEST},
		{name: "no session", reqs: many(1), code: common.ErrorCode_UNAUTHENTICATED},
		{name: "no user", session: session(0, 1), reqs: many(1),
			code: common.ErrorCode_UNAUTHENTICATED},
		{name: "the bound", session: session(alice, 1), reqs: many(logicrpc.MaxSendBatch)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := e.svc.SendBatch(context.Background(), tc.session, tc.reqs)
			wantCode(t, err, tc.code)
			if tc.code != common.ErrorCode_OK {
				if out != nil {
					t.Fatalf("refused call returned %d outcomes", len(out))
				}
				return
			}
			for i, o := range out {
				wantAck(t, i, o, p2pConvID(alice, bob), int64(i+1), false)
			}
		})
	}
	if n := e.countMessages(t); n != logicrpc.MaxSendBatch {
		t.Fatalf("store holds %d messages, want %d", n, logicrpc.MaxSendBatch)
	}
}

// A write of a batch that must run again (here: its p2p conversation had no
// row) runs again only if no later message of its conversation in the
// batch is stored already; otherwise it fails UNAVAILABLE rather than be
// stored after that one. Only a conversation row created by another
// transaction between two writes of one batch (MySQL) leads there, so the
// outcomes are set up by hand.
func TestSendBatch_RerunKeepsOrder(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	alice, bob, carol := e.register(t, "alice"), e.register(t, "bob"), e.register(t, "carol")
	withBob, withCarol := p2pConvID(alice, bob), p2pConvID(alice, carol)
	item := func(conv, client string, stored bool) sendItem {
		it := sendItem{req: textReq(client, 0), valid: true, stored: stored,
			m: &messageRow{ConvID: conv, SenderID: alice, ClientMsgID: client}}
		if !stored {
			it.err = errNoConv
		}
		return it
	}
	items := []sendItem{
		item(withBob, "b1", false),   // overtaken by b2
		item(withBob, "b2", true),    // stored in the first round
		item(withCarol, "c1", false), // nothing of carol's stored after it
		item(withBob, "b3", false),   // after b2: may run again
		item(withCarol, "c2", false),
	}
	rerun := e.svc.rerunSends(context.Background(), items, []int{0, 2, 3, 4}, true)
	if !slices.Equal(rerun, []int{2, 3, 4}) {
		t.Fatalf("rerun %v, want [2 3 4]", rerun)
	}
	if biz, _ := bizError(items[0].err); biz.Code != common.ErrorCode_UNAVAILABLE {
		t.Fatalf("overtaken write answers %s (%v), want UNAVAILABLE", biz.Code, items[0].err)
	}
	for _, conv := range []string{withBob, withCarol} {
		var n int64
		if err := e.db.Model(&convRow{}).Where("id = ?", conv).Count(&n).Error; err != nil ||
			n != 1 {
			t.Fatalf("conversation %s has %d rows (%v), want created", conv, n, err)
		}
	}
}

// runReqs are n text requests to peer, client ids tag0, tag1...
func runReqs(tag string, peer int64, n int) []*protocol.SendReq {
	reqs := make([]*protocol.SendReq, n)
	for i := range reqs {
		reqs[i] = textReq(fmt.Sprintf("%s%d", tag, i), peer)
	}
	return reqs
}

// The runs of several sessions in one SendRuns call are stored in one
// commit, each run in its order and the runs in theirs; each run gets its
// own outcomes, a refused request among them, and the sender of each
// message is its run's session.
func TestSendRuns_StoresEachRunInOrderInOneCommit(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob, carol := e.register(t, "alice"), e.register(t, "bob"), e.register(t, "carol")
		e.sendN(t, alice, bob, 1, "open")
		e.sendN(t, carol, alice, 1, "open")
		withBob, withCarol := p2pConvID(alice, bob), p2pConvID(alice, carol)
		bobs := runReqs("b", alice, 3)
		bobs[1] = &protocol.SendReq{ClientMsgId: "bad", ToUserId: alice} // no content
		runs := []*logicrpc.SendRun{
			{Session: session(alice, 1), Reqs: runReqs("a", bob, 3)},
			{Session: session(bob, 2), Reqs: bobs},
			{Session: session(carol, 3), Reqs: runReqs("c", alice, 2)},
		}
		commits, writes := e.svc.stats.batches.Load(), e.svc.stats.batchedWrites.Load()
		out, err := e.svc.SendRuns(context.Background(), runs)
		if err != nil {
			t.Fatalf("send runs: %v", err)
		}
		if c, w := e.svc.stats.batches.Load()-commits,
			e.svc.stats.batchedWrites.Load()-writes; c != 1 || w != 7 {
			t.Fatalf("%d commits of %d writes; want 1 of 7", c, w)
		}
		if len(out) != 3 || len(out[0]) != 3 || len(out[1]) != 3 || len(out[2]) != 2 {
			t.Fatalf("outcomes shaped %d runs, want 3 of 3, 3, 2", len(out))
		}
		for i := range 3 {
			wantAck(t, i, out[0][i], withBob, int64(2+i), false)
		}
		wantAck(t, 0, out[1][0], withBob, 5, false)
		if out[1][1].Err == nil || out[1][1].Err.Code != common.ErrorCode_BAD_REQUEST {
			t.Fatalf("request without content answered %+v, want BAD_REQUEST", out[1][1])
		}
		wantAck(t, 2, out[1][2], withBob, 6, false)
		for i := range 2 {
			wantAck(t, i, out[2][i], withCarol, int64(2+i), false)
		}
		msgs := e.syncAll(t, alice, withBob)
		var senders []int64
		for _, m := range msgs {
			senders = append(senders, m.SenderId)
		}
		if want := []int64{alice, alice, alice, alice, bob, bob}; !slices.Equal(senders, want) {
			t.Fatalf("senders in %s %v, want %v", withBob, senders, want)
		}
	})
}

// A call is refused whole for no runs, an empty run, a run without a
// session, or more than MaxSendBatch requests in all; nothing of it is
// stored.
func TestSendRuns_Bounds(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	alice, bob := e.register(t, "alice"), e.register(t, "bob")
	const half = logicrpc.MaxSendBatch / 2
	run := func(user int64, tag string, n int) *logicrpc.SendRun {
		return &logicrpc.SendRun{Session: session(user, user), Reqs: runReqs(tag, alice+bob-user, n)}
	}
	cases := []struct {
		name string
		runs []*logicrpc.SendRun
		code common.ErrorCode
	}{
		{name: "no runs", code: common.ErrorCode_BAD_REQUEST},
		{name: "an empty run", runs: []*logicrpc.SendRun{run(alice, "e", 1), run(bob, "e", 0)},
			code: common.ErrorCode_BAD_REQUEST},
		{name: "a run without session", runs: []*logicrpc.SendRun{run(alice, "s", 1),
			{Reqs: runReqs("s", bob, 1)}}, code: common.ErrorCode_UNAUTHENTICATED},
		{name: "a nil run", runs: []*logicrpc.SendRun{nil},
			code: common.ErrorCode_UNAUTHENTICATED},
		{name: "one over in all", runs: []*logicrpc.SendRun{run(alice, "o", half),
			run(bob, "o", half+1)}, code: common.ErrorCode_BAD_REQUEST},
		{name: "the bound in all", runs: []*logicrpc.SendRun{run(alice, "a", half),
			run(bob, "b", half)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := e.svc.SendRuns(context.Background(), tc.runs)
			wantCode(t, err, tc.code)
			if tc.code != common.ErrorCode_OK && out != nil {
				t.Fatalf("refused call returned %d outcome lists", len(out))
			}
		})
	}
	if n := e.countMessages(t); n != logicrpc.MaxSendBatch {
		t.Fatalf("store holds %d messages, want %d", n, logicrpc.MaxSendBatch)
	}
}
