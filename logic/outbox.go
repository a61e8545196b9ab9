package logic

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"gorm.io/gorm"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/event"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
)

// The outbox makes "a stored message is always published" hold across
// crashes. The seq transaction writes the message's event into the outbox
// table; after commit the publisher sends it to JetStream, on the subject of
// its conversation's partition (mq.Names.MessageSubject), and deletes the row
// once acked. Rows left behind (a crash, NATS down, a full queue) are
// republished by the relay of any logic instance. Every publish carries the
// Nats-Msg-Id "msg-<id>", so the stream drops a second copy inside its
// duplicate window and several relays may run at once.
//
// Order: the group commit hands events to the publisher in commit order
// (batch.go), so one conversation's events reach the stream in seq order.
// A relayed row, a full queue, overlapping MySQL commit workers or several
// logic instances may still land one out of order; clients treat that as a
// seq gap and sync.
const (
	// outboxQueueLen bounds the events waiting for the publisher. When full,
	// Send does not wait: the row stays for the relay, whose events come
	// seconds late and out of order. 4,096 was a fifth of a second of 1:1
	// chat at 20,000 msgs/s, and a pause of the publisher that long (the
	// collector, the scheduler of a busy 2-core machine) sent a few hundred
	// events to the relay; 16,384 of about 200 bytes each hold most of a
	// second.
	outboxQueueLen = 16384
	// outboxBatch is how many events one async publish round (and one relay
	// query) takes; their acks are awaited together and their rows deleted
	// in one statement.
	outboxBatch = 256
	// relayAge is how old a row must be before the relay takes it, so that
	// it rarely races the publisher with a row whose publish is in flight.
	relayAge = 5 * time.Second
	// relayInterval is how often the relay looks for old rows.
	relayInterval = time.Second
	// deleteLinger is how long the rows of acked events may wait to be
	// deleted together (see runPublisher).
	deleteLinger = 100 * time.Millisecond
)

// outboxItem is one committed outbox row on its way to JetStream.
type outboxItem struct {
	rowID   int64
	msgID   int64
	subject string // the partition subject of the message's conversation
	payload []byte
}

// outboxStats counts publishes for logs and tests: acked on the normal path,
// acked on the relay's (usually events that were not in the stream), and
// failed on either, which leaves the row for a later relay pass.
type outboxStats struct {
	published atomic.Int64
	relayed   atomic.Int64
	failed    atomic.Int64
	// batches and batchedWrites count group commits and the writes in them.
	batches       atomic.Int64
	batchedWrites atomic.Int64
	// plainBatches counts the batches committed on the plain path, and
	// plainFallbacks those it failed and left to the savepoint path.
	plainBatches, plainFallbacks atomic.Int64
}

// insertOutbox writes the event of m, for recipients, inside the seq
// transaction tx.
func (s *Service) insertOutbox(tx *gorm.DB, m *messageRow, origin *logicrpc.Session,
	recipients []int64) (*outboxRow, error) {
	row := newOutboxRow(m, origin, recipients)
	var err error
	if row.ID, err = insertID(tx, s.queries.insertOutbox, row.MsgID, row.Payload,
		row.CreatedMs); err != nil {
		return nil, err
	}
	return row, nil
}

// newOutboxRow returns the outbox row, not yet inserted, of m's event for
// recipients.
func newOutboxRow(m *messageRow, origin *logicrpc.Session, recipients []int64) *outboxRow {
	ev := &event.MessageEvent{
		Message:       m.toThrift(),
		Recipients:    recipients,
		OriginGateway: origin.Gateway,
		OriginConnId:  origin.ConnId,
	}
	buf := make([]byte, ev.BLength())
	buf = buf[:ev.FastWrite(buf)]
	// The wall clock, not the service's: only the relay's age test reads it.
	return &outboxRow{MsgID: m.ID, Payload: buf, CreatedMs: time.Now().UnixMilli(),
		ConvID: m.ConvID}
}

// enqueue hands a committed outbox row to the publisher without waiting. A
// full queue leaves the row to the relay, a few seconds later.
func (s *Service) enqueue(row *outboxRow) {
	select {
	case s.outboxQueue <- outboxItem{rowID: row.ID, msgID: row.MsgID,
		subject: s.deps.MQ.MessageSubject(row.ConvID), payload: row.Payload}:
	default:
		s.failLog.Warn().Int64("msg", row.MsgID).Msg("outbox queue full; relay will publish")
	}
}

// runPublisher publishes queued events until ctx is done, without waiting
// for one event's ack before publishing the next: up to publishWindow events
// are in flight, and their acks are taken in publish order. Events still
// queued at the end stay in the outbox table for a relay, as do events in
// flight then (the stream drops a second copy inside its duplicate window).
//
// The row ids of acked events go to runDeleter, which deletes them in
// batches: the publisher never waits for the database (on MariaDB under
// load a delete of 256 rows took 300 ms, and a publisher that waited for it
// let the outbox queue fill, leaving events to the relay, late and out of
// order). It used to publish a batch and await all of its acks before the
// next: one ack round trip per 256 events bounded 1:1 chat near 23,000
// events a second, and past it the queue filled the same way.
func (s *Service) runPublisher(ctx context.Context, deletes chan<- []int64) {
	defer close(deletes)
	var (
		inflight []inflightEvent // oldest first
		acked    = make([]int64, 0, outboxBatch)
		timeout  = time.NewTimer(time.Hour)
	)
	defer timeout.Stop()
	flush := func() {
		if len(acked) == 0 {
			return
		}
		s.stats.published.Add(int64(len(acked)))
		s.undeleted.add(acked)
		// Blocks only when the deleter is deleteQueueLen batches behind.
		deletes <- acked
		acked = make([]int64, 0, outboxBatch)
	}
	for {
		var queue <-chan outboxItem
		if len(inflight) < publishWindow {
			queue = s.outboxQueue
		}
		if len(inflight) == 0 {
			flush()
			select {
			case <-ctx.Done():
				return
			case it := <-queue:
				inflight = s.publishEvent(inflight, it)
			}
			continue
		}
		head := &inflight[0]
		if len(head.f.Ok()) == 0 && len(head.f.Err()) == 0 {
			// Nothing to take at once (the future's channels are buffered;
			// were they not, this would only flush more often): hand what is
			// acked to the deleter before waiting.
			flush()
		}
		// Since Go 1.23 a Reset timer never delivers a stale fire.
		timeout.Reset(max(time.Until(head.deadline), 0))
		var outcome headOutcome
		select {
		case <-ctx.Done():
			flush()
			return
		case it := <-queue:
			inflight = s.publishEvent(inflight, it)
			continue
		case <-head.f.Ok():
			outcome = headAcked
		case err := <-head.f.Err():
			outcome = s.headFailed(head, err)
		case <-timeout.C:
			outcome = s.headFailed(head, nil)
		}
		if outcome == headAcked {
			acked = append(acked, head.it.rowID)
		}
		inflight[0] = inflightEvent{}
		inflight = inflight[1:]
		if len(acked) == outboxBatch {
			flush()
		}
	}
}

// headOutcome is how the oldest event in flight ended.
type headOutcome int

const (
	headAcked headOutcome = iota + 1
	headLost              // not acked: its row stays for the relay
)

// headFailed counts ev failed, with err, or nil for a timeout, and logs it.
func (s *Service) headFailed(ev *inflightEvent, err error) headOutcome {
	if err != nil {
		s.failLog.Warn().Err(err).Int64("msg", ev.it.msgID).Msg("outbox publish not acked")
	} else {
		s.failLog.Warn().Int64("msg", ev.it.msgID).Msg("outbox publish ack timed out")
	}
	s.stats.failed.Add(1)
	return headLost
}

// publishWindow bounds the events published and not yet acked. With 2,048,
// 1:1 chat at 20,000 msgs/s filled the outbox queue within 10 s (acks came
// back 100 ms late on the loaded machine: 2,048 per 100 ms is 20,000 a
// second) and spilled events to the relay; with 8,192 the queue stayed
// near empty.
const publishWindow = 8192

// PublishAsyncMaxPending is the bound on pending async publishes that the
// JetStream context Deps.JS must allow (jetstream.WithPublishAsyncMaxPending;
// nats.go's default is 4,000): above publishWindow, so that PublishAsync
// never stalls the publisher, with room for the relay's batches.
const PublishAsyncMaxPending = 2 * publishWindow

// inflightEvent is an event published and waiting for its ack.
type inflightEvent struct {
	f        jetstream.PubAckFuture
	it       outboxItem
	deadline time.Time
}

// publishEvent publishes it asynchronously and appends it to inflight, or
// counts it failed (its row stays for the relay).
func (s *Service) publishEvent(inflight []inflightEvent, it outboxItem) []inflightEvent {
	msgID := "msg-" + strconv.FormatInt(it.msgID, 10)
	f, err := s.deps.JS.PublishAsync(it.subject, it.payload, jetstream.WithMsgID(msgID))
	if err != nil {
		s.failLog.Warn().Err(err).Int64("msg", it.msgID).Msg("outbox publish")
		s.stats.failed.Add(1)
		return inflight
	}
	return append(inflight, inflightEvent{f: f, it: it,
		deadline: time.Now().Add(s.cfg.PublishTimeout)})
}

// deleteQueueLen bounds the slices of acked rows waiting for runDeleter:
// under a load the database cannot keep up with, deletes lag rather than
// hold up the publisher.
const deleteQueueLen = 1024

// undeletedRows are the outbox rows whose events the publisher saw acked
// and whose delete has not run yet: the relay skips them rather than publish
// them again while the deletes lag.
type undeletedRows struct {
	mu  sync.Mutex
	ids map[int64]struct{}
}

func (u *undeletedRows) add(ids []int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.ids == nil {
		u.ids = make(map[int64]struct{}, len(ids))
	}
	for _, id := range ids {
		u.ids[id] = struct{}{}
	}
}

func (u *undeletedRows) remove(ids []int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, id := range ids {
		delete(u.ids, id)
	}
}

// without returns the items whose rows are not waiting for their delete.
func (u *undeletedRows) without(items []outboxItem) []outboxItem {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.DeleteFunc(items, func(it outboxItem) bool {
		_, ok := u.ids[it.rowID]
		return ok
	})
}

// runDeleter deletes the outbox rows whose ids arrive on deletes, together,
// at the latest deleteLinger after they arrive: one delete per message would
// cost a commit (an fsync) per message, and on SQLite take the only
// connection from the senders. It returns once deletes is closed and
// drained. A crash inside the linger leaves rows whose events are in the
// stream; the relay publishes them again and the stream drops the copies.
func (s *Service) runDeleter(ctx context.Context, deletes <-chan []int64) {
	ctx = context.WithoutCancel(ctx) // the last rows are deleted after stop
	pending := make([]int64, 0, outboxBatch)
	linger := time.NewTicker(deleteLinger)
	defer linger.Stop()
	for {
		select {
		case ids, ok := <-deletes:
			if !ok {
				s.deleteAcked(ctx, pending)
				return
			}
			pending = append(pending, ids...)
			if len(pending) < outboxBatch {
				continue
			}
		case <-linger.C:
		}
		pending = s.deleteAcked(ctx, pending)
	}
}

// deleteAcked deletes the outbox rows of acked events and returns acked
// emptied for reuse. A failed delete is logged and forgotten: the rows are
// published again by a relay, and the stream drops the copies.
func (s *Service) deleteAcked(ctx context.Context, acked []int64) []int64 {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if err := s.deleteOutbox(ctx, acked); err != nil {
		s.failLog.Warn().Err(err).Int("rows", len(acked)).Msg("outbox delete")
	}
	s.undeleted.remove(acked)
	return acked[:0]
}

// publishBatch publishes items asynchronously, waits for their acks (bounded
// by PublishTimeout together) and appends the outbox row ids of the acked
// ones to acked. Failed items keep their rows for the relay.
func (s *Service) publishBatch(acked []int64, items []outboxItem) []int64 {
	futures := make([]jetstream.PubAckFuture, len(items))
	for i, it := range items {
		msgID := "msg-" + strconv.FormatInt(it.msgID, 10)
		f, err := s.deps.JS.PublishAsync(it.subject, it.payload, jetstream.WithMsgID(msgID))
		if err != nil {
			s.failLog.Warn().Err(err).Int64("msg", it.msgID).Msg("outbox publish")
			continue
		}
		futures[i] = f
	}
	n := len(acked)
	timeout := time.NewTimer(s.cfg.PublishTimeout)
	defer timeout.Stop()
	for i, f := range futures {
		if f != nil && s.awaitAck(f, timeout.C, items[i].msgID) {
			acked = append(acked, items[i].rowID)
		}
	}
	s.stats.failed.Add(int64(len(items) - (len(acked) - n)))
	return acked
}

// awaitAck waits for f's ack until timeout fires (and stays fired for the
// rest of the batch).
func (s *Service) awaitAck(f jetstream.PubAckFuture, timeout <-chan time.Time, msgID int64) bool {
	select {
	case <-f.Ok():
		return true
	case err := <-f.Err():
		s.failLog.Warn().Err(err).Int64("msg", msgID).Msg("outbox publish not acked")
	case <-timeout:
		s.failLog.Warn().Int64("msg", msgID).Msg("outbox publish ack timed out")
	}
	return false
}

// deleteOutbox deletes the outbox rows with the given ids.
func (s *Service) deleteOutbox(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	if err := s.dbc(ctx).Where("id IN ?", ids).Delete(&outboxRow{}).Error; err != nil {
		return fmt.Errorf("delete outbox rows %d..%d: %w", ids[0], ids[len(ids)-1], err)
	}
	return nil
}

// runRelay republishes every outbox row at once, then rows older than
// relayAge every relayInterval, until ctx is done.
func (s *Service) runRelay(ctx context.Context) {
	// At start every row is an orphan of a previous run (or of another
	// instance, in which case the stream drops the copy).
	s.relay(ctx, 0)
	tick := time.NewTicker(relayInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.relay(ctx, relayAge)
		}
	}
}

// relay publishes, in id order, the outbox rows older than minAge, a batch
// at a time, until none is left or a batch fails. It returns how many it
// published.
func (s *Service) relay(ctx context.Context, minAge time.Duration) int {
	total := 0
	for ctx.Err() == nil {
		items, err := s.oldOutbox(ctx, minAge)
		if err != nil {
			s.failLog.Warn().Err(err).Msg("outbox relay")
			return total
		}
		if len(items) == 0 {
			return total
		}
		full := len(items) == outboxBatch
		if items = s.undeleted.without(items); len(items) == 0 {
			return total // all published; their deletes lag
		}
		acked := s.publishBatch(nil, items)
		n := len(acked)
		total += n
		s.stats.relayed.Add(int64(n))
		if err := s.deleteOutbox(ctx, acked); err != nil {
			s.failLog.Warn().Err(err).Int("rows", n).Msg("outbox relay delete")
			return total
		}
		if n > 0 {
			// Rare: only rows the publisher could not publish get here, so
			// this logs outages and restarts, not messages.
			s.log.Info().Int("rows", len(items)).Int("published", n).Msg("outbox relayed")
		}
		if n < len(items) || !full {
			return total
		}
	}
	return total
}

// oldOutbox returns up to outboxBatch rows older than minAge, oldest first.
//
// TODO: several instances read the same rows; SELECT ... FOR UPDATE SKIP
// LOCKED on MariaDB would split them, at the cost of holding a transaction
// over the publish. The Nats-Msg-Id dedupe already makes the overlap safe.
func (s *Service) oldOutbox(ctx context.Context, minAge time.Duration) ([]outboxItem, error) {
	var rows []outboxRow
	cutoff := time.Now().Add(-minAge).UnixMilli()
	err := s.dbc(ctx).Where("created_ms <= ?", cutoff).Order("id ASC").
		Limit(outboxBatch).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("read outbox before %d ms: %w", cutoff, err)
	}
	items := make([]outboxItem, len(rows))
	for i, r := range rows {
		items[i] = outboxItem{rowID: r.ID, msgID: r.MsgID, subject: s.relaySubject(r.Payload),
			payload: r.Payload}
	}
	return items, nil
}

// relaySubject returns the subject of a stored event: the partition of the
// conversation it names. Rows do not keep the conversation apart from the
// payload, so that rows written by any build relay the same way. A payload
// that does not decode goes to partition 0, where task dead-letters it.
func (s *Service) relaySubject(payload []byte) string {
	var ev event.MessageEvent
	if err := codec.ReadBody(payload, &ev); err != nil || ev.Message == nil {
		return s.deps.MQ.PartitionSubject(0)
	}
	return s.deps.MQ.MessageSubject(ev.Message.ConvId)
}
