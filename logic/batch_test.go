package logic

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/event"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Sends that fail under the lock (a non-member writing to a group) share
// batches with sends that succeed: each failure rolls back alone, and the
// rest commit with dense seqs.
func TestGroupCommit_FailuresRollBackAlone(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		owner, mem, out := e.register(t, "owner"), e.register(t, "mem"), e.register(t, "out")
		g := e.group(t, owner, "G", mem)
		const each = 40
		var wg sync.WaitGroup
		errs := make(chan error, 3*each)
		for _, who := range []int64{owner, mem, out} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					_, err := e.sendTo(who, g, fmt.Sprintf("u%d-%d", who, i))
					if (who == out) != (err != nil) {
						errs <- fmt.Errorf("user %d send %d: %v", who, i, err)
					}
					if who == out && err != nil {
						wantCode(t, err, common.ErrorCode_FORBIDDEN)
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		msgs := e.syncAll(t, owner, g)
		if len(msgs) != 1+2*each {
			t.Fatalf("%d messages, want %d", len(msgs), 1+2*each)
		}
		for i, m := range msgs {
			if m.Seq != int64(i+1) || m.SenderId == out {
				t.Fatalf("message %d: seq %d from %d", i, m.Seq, m.SenderId)
			}
		}
		e.waitPublished(t, uint64(1+2*each))
	})
}

// The group commit hands events to the publisher in commit order, so one
// conversation's events reach the stream in seq order however many send at
// once. (SQLite: one batch at a time. MySQL overlaps batches and leaves a
// narrow window; clients order by seq either way.)
func TestGroupCommit_EventsInSeqOrder(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	owner := e.register(t, "owner")
	var members []int64
	for i := range 4 {
		members = append(members, e.register(t, fmt.Sprintf("member%d", i)))
	}
	g := e.group(t, owner, "G", members...)
	var wg sync.WaitGroup
	for _, who := range append(members, owner) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				if _, err := e.sendTo(who, g, fmt.Sprintf("u%d-%d", who, i)); err != nil {
					t.Errorf("send: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	const total = 1 + 5*20
	e.waitPublished(t, total)
	s, err := e.js.Stream(ctxBG, e.names.Stream)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= total; seq++ {
		raw, err := s.GetMsg(ctxBG, seq)
		if err != nil {
			t.Fatal(err)
		}
		ev := event.NewMessageEvent()
		if _, err := ev.FastRead(raw.Data); err != nil {
			t.Fatal(err)
		}
		if ev.Message.Seq != int64(seq) {
			t.Fatalf("stream position %d holds seq %d", seq, ev.Message.Seq)
		}
	}
}

// Sends of one conversation in one batch take their seqs from the row the
// one before left (insertWithSeq's prev); a write that fails in the middle
// rolls back alone and the next goes on from the last that stayed.
func TestGroupCommit_RunOfOneConversation(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		first, err := e.svc.Send(ctx, session(alice, 1), textReq("first", bob))
		if err != nil {
			t.Fatal(err)
		}
		conv := p2pConvID(alice, bob)
		item := func(client string) *batchItem {
			return textItem(conv, alice, client, e.svc.sendApply)
		}
		// "first" again: a retry, which fails at its insert.
		items := []*batchItem{item("b1"), item("b2"), item("first"), item("b3")}
		e.svc.commitBatch(items)
		for i, want := range []int64{2, 3, 0, 4} {
			r := <-items[i].done
			if (want == 0) != (r.err != nil) || want != 0 && items[i].w.m.Seq != want {
				t.Fatalf("write %d: seq %d, err %v; want seq %d", i, items[i].w.m.Seq, r.err, want)
			}
		}
		var c convRow
		if err := e.svc.db.Where("id = ?", conv).Take(&c).Error; err != nil {
			t.Fatal(err)
		}
		if last := items[3].w.m; c.LastSeq != 4 || c.LastMsgID != last.ID ||
			c.UpdatedMs != last.CreatedAt.UnixMilli() {
			t.Fatalf("conversation row %+v; want last seq 4, last message %d at %d",
				c, last.ID, last.CreatedAt.UnixMilli())
		}
		next, err := e.svc.Send(ctx, session(alice, 1), textReq("after", bob))
		if err != nil || next.Seq != 5 || first.Seq != 1 {
			t.Fatalf("send after the batch = %+v, %v; want seq 5", next, err)
		}
	})
}

// A seq transaction reads committed data (READ COMMITTED, seqTxOptions): a
// batch's later write sees what committed after its earlier writes read.
// A conversation's row, and the membership changes that lock it, cannot
// change inside a batch (lockBatchConvs takes every row first), but a block
// takes no conversation lock. Under REPEATABLE READ the later send read the
// blocks in the snapshot the earlier write's plain read had taken, and went
// through though the block had committed before its check.
func TestGroupCommit_LaterWriteSeesABlockCommittedMeanwhile(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		if e.cfg.DBDriver != DriverMySQL {
			t.Skip("SQLite has one writer: nothing commits inside a batch")
		}
		e.svc.consecutiveIDs = false // the savepoint path
		alice, bob, carol := e.register(t, "alice"), e.register(t, "bob"), e.register(t, "carol")
		g := e.group(t, alice, "one", carol)
		_, err := e.svc.Send(ctxBG, session(alice, 1), &protocol.SendReq{ClientMsgId: "open",
			ToUserId: bob, ContentType: common.ContentType_TEXT, Content: []byte("hi")})
		if err != nil {
			t.Fatal(err)
		}
		p2p := p2pConvID(alice, bob)
		if g > p2p {
			t.Fatalf("the batch sorts %q before %q", p2p, g)
		}
		first := textItem(g, alice, "g1", func(tx *gorm.DB, c *convRow, m *messageRow) ([]int64, error) {
			r, err := e.svc.sendApply(tx, c, m)
			var n int64 // a plain read, which took REPEATABLE READ's snapshot
			if err == nil {
				err = tx.Model(&memberRow{}).Where("conv_id = ?", c.ID).Count(&n).Error
			}
			// Meanwhile bob blocks alice.
			if _, err := e.svc.Block(ctxBG, session(bob, 1),
				&protocol.BlockReq{UserId: alice, Blocked: true}); err != nil {
				t.Errorf("bob blocks alice: %v", err)
			}
			return r, err
		})
		second := textItem(p2p, alice, "p1", e.svc.sendApply)
		second.w.peerCheck = true
		e.svc.commitBatch([]*batchItem{first, second})
		if r := <-first.done; r.err != nil {
			t.Fatalf("alice's send to the group: %v", r.err)
		}
		if r := <-second.done; !errors.Is(r.err, errBlocked) {
			t.Fatalf("alice's send to bob after bob blocked her: %v, want %v", r.err, errBlocked)
		}
	})
}

// textItem is a plain text send of from's phone to conv, with client as its
// client id and content, ready for commitBatch.
func textItem(conv string, from int64, client string,
	apply func(*gorm.DB, *convRow, *messageRow) ([]int64, error)) *batchItem {
	m := &messageRow{ConvID: conv, SenderID: from, SenderDevice: "phone",
		ClientMsgID: client, ContentType: int16(common.ContentType_TEXT),
		Content: []byte(client), CreatedAt: time.Now()}
	return &batchItem{done: make(chan batchResult, 1), w: seqWrite{m: m,
		origin: session(from, 1), apply: apply, plain: true}}
}

// The batcher takes whole groups: a batch that holds fewer than maxBatch
// writes takes the next group however large, and a group's writes commit in
// one batch, in their order. (SQLite: one commit worker, so the batches
// are deterministic.)
func TestGroupCommit_TakesWholeGroups(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	alice, bob := e.register(t, "alice"), e.register(t, "bob")
	e.sendN(t, alice, bob, 1, "open")
	conv := p2pConvID(alice, bob)

	// batchOf records the commit each write ran in; the batcher counts a
	// commit before running it, and nothing else commits meanwhile.
	var batchOf sync.Map
	record := func(tx *gorm.DB, c *convRow, m *messageRow) ([]int64, error) {
		batchOf.Store(m.ClientMsgID, e.svc.stats.batches.Load())
		return e.svc.sendApply(tx, c, m)
	}
	// A write that holds the batcher until released, while groups queue.
	entered, release := make(chan struct{}), make(chan struct{})
	var blockerBatch int64 // read after entered
	blocker := textItem(conv, alice, "blocker", func(tx *gorm.DB, c *convRow,
		m *messageRow) ([]int64, error) {
		blockerBatch = e.svc.stats.batches.Load()
		close(entered)
		<-release
		return e.svc.sendApply(tx, c, m)
	})
	e.svc.batchQueue <- []*batchItem{blocker}
	<-entered

	const singles, groupLen, after = maxBatch - 28, 64, 10
	var all []*batchItem
	for i := range singles {
		it := textItem(conv, alice, fmt.Sprintf("s%03d", i), record)
		e.svc.batchQueue <- []*batchItem{it}
		all = append(all, it)
	}
	group := make([]*batchItem, groupLen)
	for i := range group {
		group[i] = textItem(conv, alice, fmt.Sprintf("g%03d", i), record)
	}
	e.svc.batchQueue <- group
	all = append(all, group...)
	for i := range after {
		it := textItem(conv, alice, fmt.Sprintf("t%03d", i), record)
		e.svc.batchQueue <- []*batchItem{it}
		all = append(all, it)
	}
	close(release)

	if r := <-blocker.done; r.err != nil {
		t.Fatalf("blocker: %v", r.err)
	}
	for i, it := range all {
		if r := <-it.done; r.err != nil {
			t.Fatalf("write %s: %v", it.w.m.ClientMsgID, r.err)
		}
		if want := int64(i + 3); it.w.m.Seq != want {
			t.Fatalf("write %s has seq %d, want %d", it.w.m.ClientMsgID, it.w.m.Seq, want)
		}
		wantBatch := blockerBatch + 1 // the singles and the whole group
		if i >= singles+groupLen {
			wantBatch++ // the rest: the batch had passed maxBatch
		}
		if got, _ := batchOf.Load(it.w.m.ClientMsgID); got != wantBatch {
			t.Fatalf("write %s ran in commit %v, want %d", it.w.m.ClientMsgID, got, wantBatch)
		}
	}
	if n := e.svc.stats.batches.Load(); n != blockerBatch+2 {
		t.Fatalf("%d commits after the blocker's, want 2", n-blockerBatch)
	}
}

// The publisher keeps many events in flight and takes their acks in order:
// a burst from several senders is all published by it (none left for the
// relay, none failed), each conversation's events in seq order.
func TestOutbox_PublisherPipelinesInOrder(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	const pairs, each = 3, 100
	var wg sync.WaitGroup
	for p := range pairs {
		from := e.register(t, fmt.Sprintf("from%d", p))
		to := e.register(t, fmt.Sprintf("to%d", p))
		wg.Go(func() {
			for i := range each {
				if _, err := e.svc.Send(ctxBG, session(from, 1),
					textReq(fmt.Sprintf("m%d", i), to)); err != nil {
					t.Errorf("send %d: %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	e.waitPublished(t, pairs*each)
	if p, r, f := e.svc.stats.published.Load(), e.svc.stats.relayed.Load(),
		e.svc.stats.failed.Load(); p != pairs*each || r != 0 || f != 0 {
		t.Fatalf("published %d, relayed %d, failed %d; want %d, 0, 0", p, r, f, pairs*each)
	}
	last := make(map[string]int64)
	for _, ev := range e.streamEvents(t, pairs*each) {
		m := ev.Message
		if m.Seq != last[m.ConvId]+1 {
			t.Fatalf("conv %s: seq %d after %d in the stream", m.ConvId, m.Seq, last[m.ConvId])
		}
		last[m.ConvId] = m.Seq
	}
}
