package logic

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gorm.io/gorm"
)

// Group commit. Each send is one seq transaction, and each commit is a
// flush to disk (SQLite's WAL fsync, InnoDB's redo log): one commit per
// message bounds a store at a few hundred messages per second per
// connection however fast the statements are. The batcher runs the seq
// writes of concurrent sends in one transaction, each under its own
// savepoint, and commits them together: a write that fails rolls back to its
// savepoint alone, and the others commit. A batch forms from what waits
// while the previous one commits, so a lone send is not delayed. The
// batcher also hands the committed events to the publisher, in commit
// order, so that a conversation's events reach the stream in seq order.
const (
	// maxBatch bounds the writes of one transaction, so that locks are not
	// held for long and one commit's latency stays small. A batch passes it
	// only by the last group it took, whole.
	maxBatch = 128
	// batchQueueLen bounds the groups waiting for a batch; a group holds
	// one write, or up to logicrpc.MaxSendBatch for a SendBatch.
	batchQueueLen = 4096
)

// batchItem is one write waiting for its batch. Callers queue items in
// groups: the write of one Send (a group of one) or the writes of one
// SendBatch. The batcher never splits a group across batches, so that its
// writes commit in one transaction, in their order, and never in two batches
// that commit workers could run at once. A write with w.alone comes only in a
// group of one (storeBatched).
type batchItem struct {
	w    seqWrite
	done chan batchResult // buffered: the batcher never waits on a caller
}

type batchResult struct {
	ob  *outboxRow
	err error
}

// batchWorkers is how many batches commit at once: SQLite has one
// connection, so one; MySQL overlaps a few so that one batch's flush does
// not idle the server.
func (s *Service) batchWorkers() int {
	if s.db.Dialector.Name() == DriverMySQL {
		return 4
	}
	return 1
}

// runBatcher commits batches until ctx is done, then fails what still waits.
// A batch takes whole groups while it holds fewer than maxBatch writes, so it
// passes maxBatch only by the last group it took.
func (s *Service) runBatcher(ctx context.Context) {
	for {
		var first []*batchItem
		select {
		case first = <-s.batchQueue:
		case <-ctx.Done():
			s.failQueued()
			return
		}
		// A slice of the batcher's own: commitBatch sorts it, and a group's
		// slice belongs to the caller waiting on it.
		items := append(make([]*batchItem, 0, max(len(first), 16)), first...)
		var alone []*batchItem // a membership change met while gathering
	gather:
		for len(items) < maxBatch && !first[0].w.alone {
			select {
			case group := <-s.batchQueue:
				if group[0].w.alone {
					alone = group
					break gather
				}
				items = append(items, group...)
			default:
				break gather
			}
		}
		s.commitBatch(items)
		if alone != nil {
			s.commitBatch(append([]*batchItem(nil), alone...))
		}
	}
}

// failQueued answers every write still queued when logic stops.
func (s *Service) failQueued() {
	for {
		select {
		case group := <-s.batchQueue:
			for _, it := range group {
				it.done <- batchResult{err: fmt.Errorf("%w: logic is stopping", ErrUnavailable)}
			}
		default:
			return
		}
	}
}

// storeBatched runs w's seq write in the next batch and waits for its
// outcome. A caller that gives up (ctx done) leaves its write to commit or
// fail without it; a retry with the same client id finds it stored.
func (s *Service) storeBatched(ctx context.Context, w seqWrite) (*outboxRow, error) {
	it := &batchItem{w: w, done: make(chan batchResult, 1)}
	select {
	case s.batchQueue <- []*batchItem{it}:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: store queue full", ErrBusy)
	}
	return it.wait(ctx)
}

// storeBatchedGroup runs ws, which must not be alone, in one batch, in their
// order within each conversation, and waits for their outcomes: result i is
// ws[i]'s, as storeBatched would have returned it.
func (s *Service) storeBatchedGroup(ctx context.Context, ws []seqWrite) []batchResult {
	if len(ws) == 0 {
		return nil // the batcher reads group[0]: never queue an empty group
	}
	group := make([]*batchItem, len(ws))
	for i, w := range ws {
		group[i] = &batchItem{w: w, done: make(chan batchResult, 1)}
	}
	results := make([]batchResult, len(ws))
	select {
	case s.batchQueue <- group:
	case <-ctx.Done():
		for i := range results {
			results[i].err = fmt.Errorf("%w: store queue full", ErrBusy)
		}
		return results
	}
	for i, it := range group {
		results[i].ob, results[i].err = it.wait(ctx)
	}
	return results
}

// wait returns the item's outcome once the batcher sent it, or ErrBusy when ctx
// ends first.
func (it *batchItem) wait(ctx context.Context) (*outboxRow, error) {
	select {
	case r := <-it.done:
		return r.ob, r.err
	case <-ctx.Done():
		// Overloaded: the write may still commit; a retry with the same
		// client id finds it.
		return nil, fmt.Errorf("%w: store wait: %v", ErrBusy, ctx.Err())
	}
}

// commitBatch runs items in one transaction, ordered by conversation so
// that concurrent batches lock conversations in one order (keeping each
// conversation's writes in arrival order). If the transaction itself fails
// (a deadlock, a lost connection, the commit), nothing of it was stored and
// each write runs again alone.
func (s *Service) commitBatch(items []*batchItem) {
	slices.SortStableFunc(items, func(a, b *batchItem) int {
		return strings.Compare(a.w.m.ConvID, b.w.m.ConvID)
	})
	s.stats.batches.Add(1)
	s.stats.batchedWrites.Add(int64(len(items)))
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if s.consecutiveIDs && plainBatch(items) {
		results, err := s.commitPlain(ctx, items)
		if err == nil {
			s.stats.plainBatches.Add(1)
			s.finishBatch(items, results)
			return
		}
		// Nothing was stored: the savepoint path runs the batch again, and
		// a write that failed the plain path's statement fails there alone.
		s.stats.plainFallbacks.Add(1)
		s.log.Debug().Err(err).Int("writes", len(items)).Msg("plain batch: savepoint path")
	}
	results := make([]batchResult, len(items))
	err := s.dbc(ctx).Transaction(func(tx *gorm.DB) error {
		locked, err := s.lockBatchConvs(tx, items)
		if err != nil {
			return err
		}
		// conv is the conversation row as the last successful plain write
		// left it (see insertWithSeq); a write rolled back to its savepoint
		// leaves it as it was.
		var conv *convRow
		for i, it := range items {
			results[i] = batchResult{}
			if len(items) == 1 {
				ob, _, err := s.writeSeq(tx, it.w, nil)
				if err != nil {
					return err
				}
				results[i].ob = ob
				continue
			}
			if locked != nil && it.w.create == nil && locked[it.w.m.ConvID] == nil {
				// No row when the batch took its locks: one created since
				// must not be locked now, after the batch's later rows.
				results[i].err = errNoConv
				continue
			}
			sp := "w" + strconv.Itoa(i)
			if err := tx.SavePoint(sp).Error; err != nil {
				return err
			}
			ob, after, err := s.writeSeq(tx, it.w, conv)
			if err == nil {
				results[i].ob, conv = ob, after
				continue
			}
			if isDeadlock(err) {
				return err // MySQL rolled the whole transaction back
			}
			if rerr := tx.RollbackTo(sp).Error; rerr != nil {
				return errors.Join(err, rerr)
			}
			results[i].err = err
		}
		return nil
	}, s.seqTxOptions()...)
	if err != nil && len(items) > 1 {
		for i, it := range items {
			results[i] = s.storeAlone(ctx, it.w)
			if results[i].ob != nil {
				s.onStored(results[i].ob)
			}
		}
		for i, it := range items {
			it.done <- results[i]
		}
		return
	} else if err != nil {
		results[0] = batchResult{err: err}
	}
	s.finishBatch(items, results)
}

// lockBatchConvs takes, on MySQL, the locks of the conversation rows of a
// savepoint batch of several writes before any write runs, with the plain
// path's statement (readConvs). Two commit workers must lock conversations in
// one order or they deadlock, and the order the plain path's single SELECT
// ... FOR UPDATE locks in is the index's, which follows the id column's
// collation: under one that sorts ':' before digits (MySQL 8's default,
// utf8mb4_0900_ai_ci, or MariaDB's utf8mb4_unicode_ci) it is not the bytewise
// order the batch is sorted in. A conversation the batch creates has no row
// yet; its insert locks it. The savepoint path's own locks (insertWithSeq)
// then find each row held already. It returns the rows locked, nil when it
// took no lock: a write whose conversation had no row then fails as
// without one (errNoConv) even if the row was created since, since locking
// it after the batch's later rows could deadlock with a batch holding it.
func (s *Service) lockBatchConvs(tx *gorm.DB, items []*batchItem) (map[string]*convRow, error) {
	if tx.Dialector.Name() != DriverMySQL || len(items) < 2 {
		return nil, nil
	}
	// A batch holds maxBatch writes and one group more, far fewer
	// conversations than one statement reads (1<<maxConvsLog).
	return s.readConvs(tx, items)
}

// finishBatch hands a committed batch's events to the publisher and answers
// its writers. Events go to the publisher in commit order, before anyone is
// answered: one conversation's events reach the stream in seq order (sorted
// by commitBatch, and one batch at a time per worker).
func (s *Service) finishBatch(items []*batchItem, results []batchResult) {
	for _, r := range results {
		if r.ob != nil {
			s.onStored(r.ob)
		}
	}
	for i, it := range items {
		it.done <- results[i]
	}
}

// storeAlone runs one seq write in its own transaction.
func (s *Service) storeAlone(ctx context.Context, w seqWrite) batchResult {
	var ob *outboxRow
	err := s.dbc(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		ob, _, err = s.writeSeq(tx, w, nil)
		return err
	}, s.seqTxOptions()...)
	return batchResult{ob: ob, err: err}
}

// seqTxOptions are the options of a seq transaction. On MySQL it reads
// committed data (READ COMMITTED): under REPEATABLE READ a batch's later
// write read from the snapshot its first write took, while its conversation
// row, read FOR UPDATE, was current. A batch now locks its conversations
// first (lockBatchConvs), so a membership change cannot commit inside it, but
// a block, which takes no conversation lock, can, and the later send went
// through. SQLite has one writer and takes no isolation option.
func (s *Service) seqTxOptions() []*sql.TxOptions {
	if s.cfg.DBDriver != DriverMySQL {
		return nil
	}
	return []*sql.TxOptions{{Isolation: sql.LevelReadCommitted}}
}

// writeSeq creates w's conversation when it asks to, then runs its seq
// write (insertWithSeq, with prev).
func (s *Service) writeSeq(tx *gorm.DB, w seqWrite, prev *convRow) (*outboxRow, *convRow, error) {
	if w.create != nil {
		if err := w.create(tx); err != nil {
			return nil, nil, err
		}
	}
	return s.insertWithSeq(tx, w, prev)
}
