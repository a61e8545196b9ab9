package logic

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// sendN sends n messages from one user to another and returns the last ack.
func (e *env) sendN(t *testing.T, from, to int64, n int, tag string) *protocol.SendResp {
	t.Helper()
	var resp *protocol.SendResp
	for i := range n {
		var err error
		resp, err = e.svc.Send(context.Background(), session(from, 1),
			textReq(fmt.Sprintf("%s-%d", tag, i), to))
		if err != nil {
			t.Fatalf("send %s %d: %v", tag, i, err)
		}
	}
	return resp
}

// syncConvs calls SyncConvs and fails t on error.
func (e *env) syncConvs(t *testing.T, ss *logicrpc.Session, cursor string,
	limit int32) *protocol.SyncConvsResp {
	t.Helper()
	resp, err := e.svc.SyncConvs(context.Background(), ss,
		&protocol.SyncConvsReq{Cursor: cursor, Limit: limit})
	if err != nil {
		t.Fatalf("sync convs: %v", err)
	}
	return resp
}

// convIDs lists the conversation ids of a SyncConvs page.
func convIDs(resp *protocol.SyncConvsResp) []string {
	var ids []string
	for _, c := range resp.Convs {
		ids = append(ids, c.ConvId)
	}
	return ids
}

func TestSend_FiftyConcurrentSendersGetDenseSeqs(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		const senders = 50
		acks := make([]*protocol.SendResp, senders)
		errs := make([]error, senders)
		var wg sync.WaitGroup
		for i := range senders {
			from, to := alice, bob
			if i%2 == 1 {
				from, to = bob, alice
			}
			wg.Go(func() {
				acks[i], errs[i] = e.svc.Send(context.Background(), session(from, int64(i)),
					textReq(fmt.Sprintf("n%d", i), to))
			})
		}
		wg.Wait()
		seqs := make([]int64, 0, senders)
		var last *protocol.SendResp
		for i, err := range errs {
			if err != nil {
				t.Fatalf("sender %d: %v", i, err)
			}
			seqs = append(seqs, acks[i].Seq)
			if last == nil || acks[i].Seq > last.Seq {
				last = acks[i]
			}
		}
		slices.Sort(seqs)
		for i, s := range seqs {
			if s != int64(i+1) {
				t.Fatalf("sorted seqs = %v, want 1..%d", seqs, senders)
			}
		}
		var c convRow
		if err := e.db.Where("id = ?", last.ConvId).Take(&c).Error; err != nil {
			t.Fatal(err)
		}
		if c.LastSeq != senders || c.LastMsgID != last.MsgId || c.UpdatedMs != last.SendTimeMs {
			t.Fatalf("conversation = %+v, want last seq %d msg %d at %d",
				c, senders, last.MsgId, last.SendTimeMs)
		}
		// Fifty senders at once share commits (batch.go).
		if b, w := e.svc.stats.batches.Load(), e.svc.stats.batchedWrites.Load(); w <= b {
			t.Fatalf("%d writes in %d commits: none shared one", w, b)
		}
		e.waitPublished(t, senders)
	})
}

func TestSyncConvs_PagesWithSummaries(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		carol, dave := e.register(t, "carol"), e.register(t, "dave")
		e.sendN(t, bob, alice, 3, "b")   // alice: 3 unread
		e.sendN(t, alice, carol, 2, "a") // her own: 0 unread
		lastDave := e.sendN(t, dave, alice, 5, "d")
		e.sendN(t, carol, bob, 1, "x") // not alice's

		phone := session(alice, 1)
		_, err := e.svc.Delivered(context.Background(), phone, &protocol.DeliveredReq{
			Positions: []*protocol.ConvPos{{ConvId: p2pConvID(alice, dave), Seq: 4}}})
		if err != nil {
			t.Fatal(err)
		}
		first := e.syncConvs(t, phone, "", 2)
		second := e.syncConvs(t, phone, first.Cursor, 2)
		wantOrder := []string{p2pConvID(alice, bob), p2pConvID(alice, carol),
			p2pConvID(alice, dave)}
		if got := append(convIDs(first), convIDs(second)...); !slices.Equal(got, wantOrder) ||
			!first.HasMore || second.HasMore {
			t.Fatalf("pages = %v (more %v) + %v (more %v), want %v",
				convIDs(first), first.HasMore, convIDs(second), second.HasMore, wantOrder)
		}
		cases := []struct {
			name string
			got  *protocol.ConvSummary
			peer int64
			last int64
			read int64
			want int64 // unread
			dlv  int64
		}{
			{name: "bob wrote", got: first.Convs[0], peer: bob, last: 3, read: 0, want: 3},
			{name: "alice wrote", got: first.Convs[1], peer: carol, last: 2, read: 2, want: 0},
			{name: "delivered to phone", got: second.Convs[0], peer: dave, last: 5, read: 0,
				want: 5, dlv: 4},
		}
		for _, tc := range cases {
			c := tc.got
			if c.PeerUserId != tc.peer || c.LastSeq != tc.last || c.ReadSeq != tc.read ||
				c.Unread != tc.want || c.DeliveredSeq != tc.dlv || c.Type != common.ConvType_P2P ||
				c.LastMessage == nil || c.LastMessage.Seq != tc.last ||
				c.UpdatedMs != c.LastMessage.SendTimeMs {
				t.Errorf("%s: summary = %+v", tc.name, c)
			}
		}
		if lm := second.Convs[0].LastMessage; lm.MsgId != lastDave.MsgId {
			t.Errorf("last message = %d, want %d", lm.MsgId, lastDave.MsgId)
		}
		// Another device of alice has delivered nothing.
		tablet := &logicrpc.Session{UserId: alice, DeviceId: "tablet", Gateway: "gw-1:9000",
			ConnId: 9}
		for _, c := range e.syncConvs(t, tablet, "", 10).Convs {
			if c.DeliveredSeq != 0 {
				t.Errorf("tablet delivered %d in %s, want 0", c.DeliveredSeq, c.ConvId)
			}
		}
		_, err = e.svc.SyncConvs(context.Background(), phone, &protocol.SyncConvsReq{Cursor: "!!"})
		wantCode(t, err, common.ErrorCode_BAD_REQUEST)
	})
}

// TestSyncConvs_CursorWaitsForLateCommits plays a transaction that took its
// time before another one but committed after a sync read past both: the
// next sync must still report it, and the cursor settles once the safety
// margin has passed.
func TestSyncConvs_CursorWaitsForLateCommits(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob, carol := e.register(t, "alice"), e.register(t, "bob"), e.register(t, "carol")
		base := time.Now()
		at := func(d time.Duration) { e.svc.now = func() time.Time { return base.Add(d) } }
		t.Cleanup(func() { e.svc.now = time.Now })
		phone := session(alice, 1)

		at(0)
		e.sendN(t, bob, alice, 1, "early")
		first := e.syncConvs(t, phone, "", 10)
		if !slices.Equal(convIDs(first), []string{p2pConvID(alice, bob)}) {
			t.Fatalf("first sync = %v", convIDs(first))
		}

		at(-time.Second) // committed after the sync, stamped before it
		e.sendN(t, carol, alice, 1, "late")
		at(time.Second)
		second := e.syncConvs(t, phone, first.Cursor, 10)
		if !slices.Contains(convIDs(second), p2pConvID(alice, carol)) {
			t.Fatalf("sync after the late commit = %v, want it to hold %s",
				convIDs(second), p2pConvID(alice, carol))
		}

		at(time.Minute) // past the margin: reported once more, then nothing
		third := e.syncConvs(t, phone, second.Cursor, 10)
		fourth := e.syncConvs(t, phone, third.Cursor, 10)
		if len(third.Convs) != 2 || len(fourth.Convs) != 0 || fourth.HasMore {
			t.Fatalf("after the margin: %v then %v, want both then none",
				convIDs(third), convIDs(fourth))
		}
		cur, err := decodeCursor(fourth.Cursor)
		newest := third.Convs[1]
		if err != nil || cur.pos != (convPos{ms: newest.UpdatedMs, conv: newest.ConvId}) {
			t.Fatalf("settled cursor = %+v, %v; want at the newest conversation read", cur, err)
		}
	})
}

func TestNextCursor(t *testing.T) {
	floor := int64(1000)
	cur := convCursor{pos: convPos{ms: 10, conv: "a"}, floor: floor}
	cases := []struct {
		name    string
		fresh   bool
		last    convPos
		hasMore bool
		want    convCursor
	}{
		{name: "mid run follows rows", last: convPos{ms: 2000, conv: "b"}, hasMore: true,
			want: convCursor{pos: convPos{ms: 2000, conv: "b"}, floor: floor}},
		{name: "end of run moves back to the floor", last: convPos{ms: 2000, conv: "b"},
			want: convCursor{pos: convPos{ms: floor}}},
		{name: "end of run never ahead of what was read", last: convPos{ms: 500, conv: "b"},
			want: convCursor{pos: convPos{ms: 500, conv: "b"}}},
		{name: "a fresh run stays fresh", fresh: true, last: convPos{ms: 2000, conv: "p2p:1:2"},
			hasMore: true,
			want:    convCursor{pos: convPos{ms: 2000, conv: "p2p:1:2"}, floor: floor, fresh: true}},
		{name: "the run after a fresh one is not", fresh: true, last: convPos{ms: 500, conv: "b"},
			want: convCursor{pos: convPos{ms: 500, conv: "b"}}},
	}
	for _, tc := range cases {
		cur.fresh = tc.fresh
		if got := nextCursor(cur, tc.last, tc.hasMore); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
		back, err := decodeCursor(tc.want.encode())
		if err != nil || back != tc.want {
			t.Errorf("%s: round trip = %+v, %v", tc.name, back, err)
		}
	}
}

// A cursor written before the fresh flag (c1) stays valid, as not fresh.
func TestDecodeCursor_ReadsVersionOne(t *testing.T) {
	old := base64.RawURLEncoding.EncodeToString([]byte("c1:2000:1000:p2p:1:2"))
	got, err := decodeCursor(old)
	want := convCursor{pos: convPos{ms: 2000, conv: "p2p:1:2"}, floor: 1000}
	if err != nil || got != want {
		t.Fatalf("c1 cursor = %+v, %v; want %+v", got, err, want)
	}
	for _, raw := range []string{"c2:2000:1000:p2p:1:2", "c3:1:1:0:a", "c2:1:1:0"} {
		bad := base64.RawURLEncoding.EncodeToString([]byte(raw))
		if _, err := decodeCursor(bad); !errors.Is(err, ErrBadRequest) {
			t.Errorf("cursor %q: %v, want ErrBadRequest", raw, err)
		}
	}
}

func TestDelivered_NeverMovesBack(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob, carol := e.register(t, "alice"), e.register(t, "bob"), e.register(t, "carol")
		e.sendN(t, bob, alice, 5, "b")
		e.sendN(t, bob, carol, 1, "c")
		ab, bc := p2pConvID(alice, bob), p2pConvID(bob, carol)
		phone := session(alice, 1)
		steps := []struct {
			name      string
			positions []*protocol.ConvPos
			want      int64
			code      common.ErrorCode
		}{
			{name: "forward", positions: []*protocol.ConvPos{{ConvId: ab, Seq: 3}}, want: 3},
			{name: "back is ignored", positions: []*protocol.ConvPos{{ConvId: ab, Seq: 2}},
				want: 3},
			{name: "highest of a batch, others' conversation skipped",
				positions: []*protocol.ConvPos{{ConvId: ab, Seq: 4}, {ConvId: bc, Seq: 1},
					{ConvId: ab, Seq: 1}}, want: 4},
			{name: "capped at last seq", positions: []*protocol.ConvPos{{ConvId: ab, Seq: 99}},
				want: 5},
			{name: "malformed conversation", positions: []*protocol.ConvPos{{ConvId: "x", Seq: 1}},
				want: 5, code: common.ErrorCode_BAD_REQUEST},
		}
		for _, st := range steps {
			_, err := e.svc.Delivered(context.Background(), phone,
				&protocol.DeliveredReq{Positions: st.positions})
			wantCode(t, err, st.code)
			var rows []deliveredRow
			if err := e.db.Order("conv_id").Find(&rows).Error; err != nil {
				t.Fatal(err)
			}
			if len(rows) != 1 || rows[0].ConvID != ab || rows[0].Seq != st.want {
				t.Fatalf("%s: delivered rows = %+v, want %s at %d", st.name, rows, ab, st.want)
			}
		}
	})
}

func TestMarkRead_ForwardOnlyAndUnread(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob, carol := e.register(t, "alice"), e.register(t, "bob"), e.register(t, "carol")
		e.sendN(t, bob, alice, 5, "b")
		conv := p2pConvID(alice, bob)
		steps := []struct {
			name   string
			user   int64
			seq    int64
			want   int64
			unread int64
			code   common.ErrorCode
		}{
			{name: "forward", user: alice, seq: 3, want: 3, unread: 2},
			{name: "back is ignored", user: alice, seq: 1, want: 3, unread: 2},
			{name: "capped at last seq", user: alice, seq: 50, want: 5, unread: 0},
			{name: "not a member", user: carol, seq: 1, code: common.ErrorCode_FORBIDDEN},
		}
		for _, st := range steps {
			resp, err := e.svc.MarkRead(context.Background(), session(st.user, 1),
				&protocol.MarkReadReq{ConvId: conv, Seq: st.seq})
			wantCode(t, err, st.code)
			if err != nil {
				continue
			}
			c := e.syncConvs(t, session(alice, 1), "", 10).Convs[0]
			if resp.ReadSeq != st.want || c.ReadSeq != st.want || c.Unread != st.unread {
				t.Fatalf("%s: read_seq %d, summary %+v; want %d with %d unread",
					st.name, resp.ReadSeq, c, st.want, st.unread)
			}
		}
		// Bob reads nothing, but his own messages count as read.
		e.sendN(t, alice, bob, 1, "a")
		for _, c := range e.syncConvs(t, session(bob, 1), "", 10).Convs {
			if c.LastSeq != 6 || c.ReadSeq != 5 || c.Unread != 1 {
				t.Fatalf("bob's summary = %+v, want last 6 read 5 unread 1", c)
			}
		}
	})
}

func TestSync_Backward(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		e.sendN(t, alice, bob, 5, "s")
		conv := p2pConvID(alice, bob)
		cases := []struct {
			name     string
			req      *protocol.SyncReq
			wantSeqs []int64
			wantMore bool
		}{
			{name: "latest page", req: &protocol.SyncReq{ConvId: conv, BeforeSeq: math.MaxInt64,
				Limit: 2}, wantSeqs: []int64{4, 5}, wantMore: true},
			{name: "older page", req: &protocol.SyncReq{ConvId: conv, BeforeSeq: 4, Limit: 2},
				wantSeqs: []int64{2, 3}, wantMore: true},
			{name: "oldest page", req: &protocol.SyncReq{ConvId: conv, BeforeSeq: 2, Limit: 2},
				wantSeqs: []int64{1}},
			{name: "exactly the rest",
				req:      &protocol.SyncReq{ConvId: conv, BeforeSeq: 3, Limit: 2},
				wantSeqs: []int64{1, 2}},
			{name: "forward fills last seq", req: &protocol.SyncReq{ConvId: conv, AfterSeq: 4},
				wantSeqs: []int64{5}},
		}
		for _, tc := range cases {
			resp, err := e.svc.Sync(context.Background(), session(bob, 1), tc.req)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			var seqs []int64
			for _, m := range resp.Messages {
				seqs = append(seqs, m.Seq)
			}
			if !slices.Equal(seqs, tc.wantSeqs) || resp.HasMore != tc.wantMore ||
				resp.LastSeq != 5 {
				t.Errorf("%s: seqs %v more %v last %d; want %v %v 5",
					tc.name, seqs, resp.HasMore, resp.LastSeq, tc.wantSeqs, tc.wantMore)
			}
		}
	})
}
