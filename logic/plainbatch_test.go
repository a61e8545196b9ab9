package logic

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/event"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// A batch of sends committed on the plain path leaves the rows, events and
// answers the savepoint path leaves for the same batch: seqs, ids, times,
// last messages, read positions, refused writes (a non-member of the group,
// both sides of a block) left out.
func TestPlainBatch_LeavesWhatTheSavepointPathLeaves(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		if !e.svc.consecutiveIDs {
			t.Skip("this server allots a statement's ids interleaved: no plain path")
		}
		plain := runPlainScenario(t, e)
		if n := e.svc.stats.plainBatches.Load(); n != 1 {
			t.Fatalf("plain batches = %d, want 1", n)
		}

		cfg := e.cfg
		if cfg.DBDriver == DriverSQLite {
			cfg.DBDSN = t.TempDir() + "/savepoint.db"
		} else {
			cfg.TablePrefix = "t" + randHex(t, 4) + "_"
		}
		other := newEnv(t, cfg)
		other.svc.consecutiveIDs = false
		savepoint := runPlainScenario(t, other)
		if n := other.svc.stats.plainBatches.Load(); n != 0 {
			t.Fatalf("savepoint env: plain batches = %d", n)
		}
		if plain != savepoint {
			t.Errorf("plain path differs from the savepoint path:\n%s",
				lineDiff(savepoint, plain))
		}
	})
}

// runPlainScenario commits one batch of sends over two p2p conversations and
// a group, one of them refused, and returns the answers, the events and the
// tables as text.
func runPlainScenario(t *testing.T, e *env) string {
	t.Helper()
	var tick atomic.Int64
	e.svc.now = func() time.Time {
		return parityEpoch.Add(time.Duration(tick.Add(1)) * time.Millisecond)
	}
	var events []*outboxRow
	e.svc.onStored = func(r *outboxRow) { events = append(events, r) }
	alice, bob := e.register(t, "alice"), e.register(t, "bob")
	carol, dave := e.register(t, "carol"), e.register(t, "dave")
	eve, frank := e.register(t, "eve"), e.register(t, "frank")
	e.sendN(t, alice, bob, 1, "first")
	e.sendN(t, carol, dave, 1, "first")
	e.sendN(t, eve, frank, 1, "first")
	if _, err := e.svc.Block(ctxBG, session(frank, 6),
		&protocol.BlockReq{UserId: eve, Blocked: true}); err != nil {
		t.Fatal(err)
	}
	created, err := e.svc.CreateGroup(ctxBG, session(alice, 1), &protocol.CreateGroupReq{
		ClientMsgId: "g", Name: "g", MemberIds: []int64{bob}})
	if err != nil {
		t.Fatal(err)
	}
	group := created.ConvId
	ab, cd, ef := p2pConvID(alice, bob), p2pConvID(carol, dave), p2pConvID(eve, frank)
	items := []*batchItem{
		plainItem(e, alice, ab, "a1"), plainItem(e, bob, ab, "b1"),
		plainItem(e, carol, cd, "c1"), plainItem(e, alice, group, "ga"),
		plainItem(e, dave, group, "gd"), // not a member
		plainItem(e, eve, ef, "e1"),     // blocked by frank
		plainItem(e, alice, ab, "a2"), plainItem(e, bob, group, "gb"),
		plainItem(e, frank, ef, "f1"), // the blocker writes
		plainItem(e, alice, group, "ga2"),
	}
	events = events[:0]
	e.svc.commitBatch(slices.Clone(items))

	var b strings.Builder
	for _, it := range items {
		r := <-it.done
		m := it.w.m
		if refused := m.ClientMsgID == "gd" || m.ConvID == ef; refused != (r.err != nil) ||
			refused && !errors.Is(r.err, ErrForbidden) {
			t.Errorf("%s: err = %v", m.ClientMsgID, r.err)
		}
		fmt.Fprintf(&b, "answer %s: err=%v", m.ClientMsgID, r.err)
		if r.err == nil {
			fmt.Fprintf(&b, " id=%d seq=%d at=%s outbox=%d", m.ID, m.Seq,
				m.CreatedAt.Format(time.RFC3339Nano), r.ob.ID)
		}
		b.WriteByte('\n')
	}
	for _, r := range events {
		ev := event.NewMessageEvent()
		if _, err := ev.FastRead(r.Payload); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "event row=%d msg=%d conv=%s: %+v %v\n", r.ID, r.MsgID, r.ConvID,
			ev.Message, ev.Recipients)
	}
	return strings.ReplaceAll(b.String()+dumpTables(t, e, group), group, "<group>")
}

// plainItem is a send from user to conv as store makes it, waiting for its
// batch.
func plainItem(e *env, from int64, conv, clientID string) *batchItem {
	m := &messageRow{ConvID: conv, SenderID: from, SenderDevice: "phone", ClientMsgID: clientID,
		ContentType: int16(common.ContentType_TEXT), Content: []byte("text " + clientID)}
	return &batchItem{
		w: seqWrite{m: m, origin: session(from, from), apply: e.svc.sendApply, plain: true,
			peerCheck: !isGroupID(conv)},
		done: make(chan batchResult, 1),
	}
}

// A retried client id in a batch fails the plain path's insert; the batch
// runs again on the savepoint path, where the retry alone fails and the rest
// commit with dense seqs.
func TestPlainBatch_DuplicateFallsBackToSavepoints(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		e.sendN(t, alice, bob, 1, "first")
		conv := p2pConvID(alice, bob)
		items := []*batchItem{
			plainItem(e, alice, conv, "x1"), plainItem(e, bob, conv, "y1"),
			plainItem(e, alice, conv, "first-0"), // sendN's client id
			plainItem(e, alice, conv, "x2"),
		}
		e.svc.commitBatch(slices.Clone(items))
		var seqs []int64
		for _, it := range items {
			r := <-it.done
			switch {
			case it.w.m.ClientMsgID == "first-0":
				if !errors.Is(r.err, gorm.ErrDuplicatedKey) {
					t.Fatalf("retry: err = %v, want a duplicate key", r.err)
				}
			case r.err != nil:
				t.Fatalf("%s: %v", it.w.m.ClientMsgID, r.err)
			default:
				seqs = append(seqs, it.w.m.Seq)
			}
		}
		if !slices.Equal(seqs, []int64{2, 3, 4}) {
			t.Fatalf("seqs = %v, want 2 3 4", seqs)
		}
		if n, f := e.svc.stats.plainBatches.Load(), e.svc.stats.plainFallbacks.Load(); n != 0 ||
			f != 1 {
			t.Fatalf("plain batches = %d, fallbacks = %d; want 0 and 1", n, f)
		}
		msgs := e.syncAll(t, alice, conv)
		if len(msgs) != 4 {
			t.Fatalf("%d messages stored, want 4", len(msgs))
		}
	})
}

// The plain path's statements are chunked by powers of two: every batch
// size up to a few chunks inserts its rows once, in order.
func TestChunks(t *testing.T) {
	for n := range 3*maxChunk + 2 {
		var sizes []int
		next := 0
		err := chunks(n, func(off, size int) error {
			if off != next || size&(size-1) != 0 || size > maxChunk {
				return fmt.Errorf("chunk at %d of %d (want at %d)", off, size, next)
			}
			next += size
			sizes = append(sizes, size)
			return nil
		})
		if err != nil || next != n {
			t.Fatalf("n=%d: %v, covered %d, sizes %v", n, err, next, sizes)
		}
	}
}
