package logic

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/resonance-im/resonance/internal/obs"
)

// A batch of plain writes (sends) runs a statement per batch or per
// conversation rather than several per write: the conversations' rows are
// read (and on MySQL locked) by one SELECT, the messages and their outbox
// rows are inserted a chunk of rows per statement, and each conversation's
// last message and each sender's read position are moved once, to where
// the batch leaves them. Per message the savepoint path (commitBatch) runs
// a savepoint, the seq, the insert, the last message, the read position and
// the outbox row; on MySQL each of these is a round trip, and on SQLite
// each a statement's setup through database/sql and the C library.
//
// What the savepoints were for is kept: a write whose check fails (apply:
// the sender left the group) is left out of the batch before anything is
// written, and a statement that fails (a retried client id hitting its
// unique index) rolls the whole transaction back, after which the batch
// runs again through the savepoint path, where the failing write fails
// alone.

// maxChunk is the most rows one multi-row INSERT carries. Chunks are powers
// of two (a batch of 11 inserts 8, 2 and 1), so the statements prepared are
// a handful of texts rather than one per batch size.
const maxChunk = 16

// chunks calls f with the offset and size of each chunk of n rows, largest
// first.
func chunks(n int, f func(off, size int) error) error {
	for off := 0; off < n; {
		size := maxChunk
		for size > n-off {
			size /= 2
		}
		if err := f(off, size); err != nil {
			return err
		}
		off += size
	}
	return nil
}

// plainBatch says whether items can take the plain path: several writes,
// each a send (plain: its apply changes nothing of the conversation's row)
// with no conversation to create and no need to commit alone.
func plainBatch(items []*batchItem) bool {
	if len(items) < 2 || len(items) > 1<<maxConvsLog {
		return false
	}
	for _, it := range items {
		if !it.w.plain || it.w.create != nil || it.w.alone {
			return false
		}
	}
	return true
}

// commitPlain runs items, sorted by conversation, in one transaction on the
// plain path and returns their results, or an error when the transaction
// did not commit (then nothing of it is stored).
func (s *Service) commitPlain(ctx context.Context, items []*batchItem) ([]batchResult, error) {
	results := make([]batchResult, len(items))
	err := s.dbc(ctx).Transaction(func(tx *gorm.DB) error {
		clear(results)
		return s.writePlain(tx, items, results)
	}, s.seqTxOptions()...)
	if err != nil {
		return nil, err
	}
	return results, nil
}

// writePlain is commitPlain's transaction.
func (s *Service) writePlain(tx *gorm.DB, items []*batchItem, results []batchResult) error {
	convs, err := s.readConvs(tx, items)
	if err != nil {
		return err
	}
	var checked []string // the 1:1 conversations to check for blocks
	for i, it := range items {
		if it.w.peerCheck && (i == 0 || it.w.m.ConvID != items[i-1].w.m.ConvID) {
			checked = append(checked, it.w.m.ConvID)
		}
	}
	var blocked map[string]bool
	if len(checked) > 0 {
		if blocked, err = s.blockedConvs(tx, checked); err != nil {
			return err
		}
	}
	// Seqs and times, as insertWithSeq takes them under the rows' locks; a
	// write refused by its check gives its seq to the next.
	stored := make([]int, 0, len(items))
	recipients := make([][]int64, len(items))
	for i, it := range items {
		m := it.w.m
		c := convs[m.ConvID]
		if c == nil {
			return errNoConv // the savepoint path says which write
		}
		if it.w.peerCheck && blocked[m.ConvID] {
			results[i].err = errBlocked
			continue
		}
		now := s.now().UTC().Truncate(time.Millisecond)
		if now.UnixMilli() < c.UpdatedMs {
			now = time.UnixMilli(c.UpdatedMs).UTC()
		}
		c.LastSeq++
		m.ID, m.Seq, m.CreatedAt = 0, c.LastSeq, now
		r, err := it.w.apply(tx, c, m)
		if err != nil {
			if isDeadlock(err) {
				return err
			}
			c.LastSeq--
			results[i].err = err
			continue
		}
		c.UpdatedMs, c.UpdatedAt = now.UnixMilli(), now
		recipients[i] = r
		stored = append(stored, i)
	}
	if len(stored) == 0 {
		return nil
	}
	if err := s.insertMessages(tx, items, stored); err != nil {
		return err
	}
	if err := s.moveConvs(tx, items, stored); err != nil {
		return err
	}
	if err := s.moveReads(tx, items, stored); err != nil {
		return err
	}
	if err := s.moveBatchMentions(tx, items, stored); err != nil {
		return err
	}
	rows := make([]*outboxRow, len(stored))
	for j, i := range stored {
		rows[j] = newOutboxRow(items[i].w.m, items[i].w.origin, recipients[i])
		results[i].ob = rows[j]
	}
	return s.insertOutboxRows(tx, rows)
}

// readConvs reads the rows of items' conversations in one statement, locking
// them on MySQL (FOR UPDATE, in the order of the id index, as the savepoint
// path locks them too: lockBatchConvs). A conversation without a row is
// missing from the map.
func (s *Service) readConvs(tx *gorm.DB, items []*batchItem) (map[string]*convRow, error) {
	ids := make([]any, 0, len(items))
	for i, it := range items {
		if i == 0 || it.w.m.ConvID != items[i-1].w.m.ConvID { // sorted by conv
			ids = append(ids, it.w.m.ConvID)
		}
	}
	n := padded(len(ids))
	for len(ids) < n {
		ids = append(ids, ids[len(ids)-1])
	}
	start := time.Now()
	defer obs.ObserveDB(tx, "query", start)
	rows, err := tx.Statement.ConnPool.QueryContext(tx.Statement.Context,
		s.queries.readConvs(n, tx.Dialector.Name() == DriverMySQL), ids...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	convs := make(map[string]*convRow, n)
	for rows.Next() {
		c, err := scanConv(rows)
		if err != nil {
			return nil, err
		}
		convs[c.ID] = c
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return convs, rows.Close()
}

// insertMessages inserts the stored items' messages a chunk per statement
// and sets their ids.
func (s *Service) insertMessages(tx *gorm.DB, items []*batchItem, stored []int) error {
	const cols = 13
	return chunks(len(stored), func(off, size int) error {
		args := make([]any, 0, size*cols)
		for _, i := range stored[off : off+size] {
			m := items[i].w.m
			args = append(args, m.ConvID, m.Seq, m.SenderID, m.SenderDevice, m.ClientMsgID,
				m.ContentType, m.Content, m.CreatedAt, m.Recalled, m.EditedMs, m.ReplyToSeq,
				m.Mentions, m.MentionAll)
		}
		first, err := s.insertRows(tx, s.queries.insertMessages(size), size, args)
		if err != nil {
			return err
		}
		for k, i := range stored[off : off+size] {
			items[i].w.m.ID = first + int64(k)
		}
		return nil
	})
}

// insertOutboxRows inserts rows a chunk per statement and sets their ids.
func (s *Service) insertOutboxRows(tx *gorm.DB, rows []*outboxRow) error {
	return chunks(len(rows), func(off, size int) error {
		args := make([]any, 0, size*3)
		for _, r := range rows[off : off+size] {
			args = append(args, r.MsgID, r.Payload, r.CreatedMs)
		}
		first, err := s.insertRows(tx, s.queries.insertOutboxes(size), size, args)
		if err != nil {
			return err
		}
		for k, r := range rows[off : off+size] {
			r.ID = first + int64(k)
		}
		return nil
	})
}

// insertRows runs a multi-row INSERT of size rows and returns the id of its
// first row. The rows' ids are consecutive in the order of the VALUES: on
// SQLite each new rowid is one more than the largest before it and nothing
// else writes meanwhile, and its last insert id is the last row's; on
// MySQL the last insert id is the first row's, and the rest follow it when
// the server allots a statement's ids in one run (s.consecutiveIDs).
func (s *Service) insertRows(tx *gorm.DB, query string, size int, args []any) (int64, error) {
	res, err := execRaw(tx, "create", query, args...)
	if err != nil {
		return 0, err
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, err
	}
	if n, err := res.RowsAffected(); err != nil || n != int64(size) {
		return 0, fmt.Errorf("multi-row insert: %d rows of %d (%v)", n, size, err)
	}
	if tx.Dialector.Name() == DriverMySQL {
		return id, nil
	}
	return id - int64(size) + 1, nil
}

// moveConvs writes each conversation's last seq, last message and time, as
// the batch leaves them, in one statement (stored is in conversation order).
func (s *Service) moveConvs(tx *gorm.DB, items []*batchItem, stored []int) error {
	var last []*messageRow // each conversation's last message
	for k, i := range stored {
		if k+1 == len(stored) || items[stored[k+1]].w.m.ConvID != items[i].w.m.ConvID {
			last = append(last, items[i].w.m)
		}
	}
	n := padded(len(last))
	args := make([]any, 0, 9*n)
	for _, col := range []func(m *messageRow) any{
		func(m *messageRow) any { return m.Seq },
		func(m *messageRow) any { return m.ID },
		func(m *messageRow) any { return m.CreatedAt.UnixMilli() },
		func(m *messageRow) any { return m.CreatedAt },
	} {
		for j := range n {
			m := last[min(j, len(last)-1)]
			args = append(args, m.ConvID, col(m))
		}
	}
	for j := range n {
		args = append(args, last[min(j, len(last)-1)].ConvID)
	}
	_, err := execRaw(tx, "update", s.queries.moveConvs(n), args...)
	return err
}

// moveReads moves each sender's read position in each conversation to its
// last message of the batch, in one statement.
func (s *Service) moveReads(tx *gorm.DB, items []*batchItem, stored []int) error {
	moves := make([]seqMove, 0, len(stored))
	at := make(map[seqMove]int, len(stored)) // (conv, sender) -> index into moves
	for _, i := range stored {
		m := items[i].w.m
		key := seqMove{conv: m.ConvID, user: m.SenderID}
		if j, ok := at[key]; ok {
			moves[j].seq = m.Seq // seqs grow within a conversation
			continue
		}
		at[key] = len(moves)
		moves = append(moves, seqMove{m.ConvID, m.SenderID, m.Seq})
	}
	return execSeqMoves(tx, s.queries.moveReads, moves)
}

// seqMove is one row of the UPDATEs that move member positions forward by
// CASE (queries.moveReads, moveMentions, moveAllMentions): a conversation,
// a user (the member; for @all the sender, the one member left out) and
// the seq to move to.
type seqMove struct {
	conv string
	user int64
	seq  int64
}

// execSeqMoves runs stmt(n), one of those UPDATEs for n rows, for moves (at
// least one, at most 1<<maxConvsLog): each move's conversation, user and
// seq for the CASE, then the same for the WHERE. n is padded(len(moves)),
// the last move repeated up to it, so that the statements are a fixed few
// kept prepared; a repeated row changes nothing.
func execSeqMoves(tx *gorm.DB, stmt func(n int) string, moves []seqMove) error {
	n := padded(len(moves))
	args := make([]any, 0, 6*n)
	for range 2 {
		for j := range n {
			mv := moves[min(j, len(moves)-1)]
			args = append(args, mv.conv, mv.user, mv.seq)
		}
	}
	_, err := execRaw(tx, "update", stmt(n), args...)
	return err
}

// moveBatchMentions moves the mention positions of the members the stored
// items' messages mention, a statement for the batch (see moveMentions).
func (s *Service) moveBatchMentions(tx *gorm.DB, items []*batchItem, stored []int) error {
	var msgs []*messageRow
	for _, i := range stored {
		if m := items[i].w.m; m.MentionAll || len(m.mentionIDs) > 0 {
			msgs = append(msgs, m)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return s.moveMentions(tx, msgs)
}

// padded returns the power of two at or above n that a list of n is padded
// to with its last entry: a few statement texts to prepare, and a repeated
// entry matches or sets its row as once.
func padded(n int) int {
	p := 1
	for p < n {
		p *= 2
	}
	return p
}

// detectConsecutiveIDs says whether db allots the ids of a multi-row INSERT
// in one run: always on SQLite; on MySQL when InnoDB's auto-increment lock
// mode is traditional or consecutive (0 or 1; MariaDB's default) and ids
// step by one. Interleaved mode (2, MySQL 8's default) and a step other
// than one (Galera, multi-primary rings) leave the plain path off.
func detectConsecutiveIDs(ctx context.Context, db *gorm.DB) (bool, error) {
	if db.Dialector.Name() != DriverMySQL {
		return true, nil
	}
	var mode, step sql.NullInt64
	err := db.WithContext(ctx).Raw("SELECT @@innodb_autoinc_lock_mode, @@auto_increment_increment").
		Row().Scan(&mode, &step)
	if err != nil {
		return false, fmt.Errorf("logic: read auto-increment settings: %w", err)
	}
	return mode.Valid && mode.Int64 <= 1 && step.Int64 == 1, nil
}

// multiRow returns head followed by n copies of row, comma-separated.
func multiRow(head, row string, n int) string {
	var b strings.Builder
	b.Grow(len(head) + n*(len(row)+1))
	b.WriteString(head)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	return b.String()
}
