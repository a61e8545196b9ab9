package logic

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/resonance-im/resonance/internal/obs"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
)

// maxTxAttempts bounds the runs of a seq transaction: a rerun follows the
// creation of a conversation row or a MySQL deadlock abort, and is safe
// because the aborted run committed nothing.
const maxTxAttempts = 5

// mysqlDeadlock is ER_LOCK_DEADLOCK.
const mysqlDeadlock = 1213

// createUser inserts a user; a taken username is ErrUsernameTaken, decided by
// the unique index so that two racing registrations cannot both win.
func (s *Service) createUser(ctx context.Context, username, hash string) (int64, error) {
	u := userRow{Username: username, PasswordHash: hash}
	err := s.dbc(ctx).Create(&u).Error
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return 0, fmt.Errorf("%w: %s", ErrUsernameTaken, username)
	}
	if err != nil {
		return 0, fmt.Errorf("create user %q: %w", username, err)
	}
	return u.ID, nil
}

// findUser returns the user with the given username, or by id when username
// is empty. A missing user is (nil, nil).
func (s *Service) findUser(ctx context.Context, username string, id int64) (*userRow, error) {
	var u userRow
	q := s.rdc(ctx).Limit(1)
	if username != "" {
		q = q.Where("username = ?", username)
	} else {
		q = q.Where("id = ?", id)
	}
	res := q.Find(&u)
	if res.Error != nil {
		return nil, fmt.Errorf("find user %q/%d: %w", username, id, res.Error)
	}
	if res.RowsAffected == 0 {
		return nil, nil
	}
	return &u, nil
}

// findByClientID returns the message sender stored under clientMsgID, or nil.
func (s *Service) findByClientID(ctx context.Context, sender int64,
	clientMsgID string) (*messageRow, error) {
	var m messageRow
	res := s.rdc(ctx).Where("sender_id = ? AND client_msg_id = ?", sender, clientMsgID).
		Limit(1).Find(&m)
	if res.Error != nil {
		return nil, fmt.Errorf("find message sender=%d client=%q: %w",
			sender, clientMsgID, res.Error)
	}
	if res.RowsAffected == 0 {
		return nil, nil
	}
	return &m, nil
}

// storeTimeout bounds the seq transaction. It must stay well under
// convCursorMargin: SyncConvs relies on no transaction committing later than
// that after it took its timestamp.
const storeTimeout = 5 * time.Second

// seqWrite is one message for the seq transaction, with what must happen
// with it under the conversation's row lock.
type seqWrite struct {
	m      *messageRow
	origin *logicrpc.Session
	// create, when set, creates the conversation inside the transaction
	// before its row is locked (a new group: its id is fresh, so no other
	// transaction can contend for it).
	create func(tx *gorm.DB) error
	// apply runs once the row is locked and m has its seq and time: it
	// checks what may only be checked under the lock (membership, roles,
	// the state of a message being changed), makes the change m records, and
	// returns the user ids the event goes to.
	apply func(tx *gorm.DB, c *convRow, m *messageRow) ([]int64, error)
	// alone makes the write commit in a transaction of its own (batch.go):
	// writes that change a group's membership, since a batch that rolled
	// back could otherwise leave the member cache ahead of the store.
	alone bool
	// plain says that apply changes nothing of the conversation's row (a
	// send): the row the write leaves is then known without reading it
	// back, and the next write of the conversation in the same transaction
	// takes its seq from it (insertWithSeq).
	plain bool
	// peerCheck makes a 1:1 send fail when either user blocked the other,
	// checked once the row is locked (errBlocked).
	peerCheck bool
	// changes says that the write changes a stored message (recall, edit):
	// a 1:1 conversation not started holds none, so its missing row is
	// NOT_FOUND rather than created, which would list the conversation
	// empty for the peer.
	changes bool
}

// storeMessage assigns w.m the next seq of its conversation and inserts it
// with its outbox row, in one transaction: the conversation row's lock
// (taken by the UPDATE) orders concurrent senders and membership changes,
// so seqs are 1, 2, 3... in commit order with no gap, because a failed
// insert rolls its increment back. A duplicate client id returns
// errDuplicate and stores nothing. The returned outbox row is committed; the
// group commit has handed it to the publisher.
func (s *Service) storeMessage(ctx context.Context, w seqWrite) (*outboxRow, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	var (
		ob  *outboxRow
		err error
	)
	for attempt := 1; ; attempt++ {
		ob, err = s.storeBatched(ctx, w)
		var retry bool
		retry, err = s.retryWrite(ctx, w, err)
		if !retry || attempt == maxTxAttempts {
			break
		}
	}
	if err != nil {
		return nil, storeError(w.m, err)
	}
	return ob, nil
}

// retryWrite tells whether the seq write w, which failed with err, should
// run again: after a MySQL deadlock, or once it created the missing row of
// w's p2p conversation (for a send; a change of a message creates none). It
// returns the error to report when it should not (the creation's, if that
// failed).
func (s *Service) retryWrite(ctx context.Context, w seqWrite, err error) (bool, error) {
	if !errors.Is(err, errNoConv) || isGroupID(w.m.ConvID) {
		return isDeadlock(err), err
	}
	if w.changes {
		return false, fmt.Errorf("%w: message", ErrNotFound)
	}
	// A peer that does not exist, or blocks, gets no conversation.
	if perr := s.checkNewPeer(ctx, w.m); perr != nil {
		return false, perr
	}
	// The rows are created outside the seq transaction: creating them
	// inside lets InnoDB's gap locks deadlock racing first senders.
	if cerr := s.createConv(ctx, w.m.ConvID, w.m.CreatedAt); cerr != nil {
		return isDeadlock(cerr), cerr
	}
	return true, err
}

// storeError is what storeMessage returns for a seq write of m that failed
// with err: errDuplicate, a request error, or err wrapped with m's ids.
func storeError(m *messageRow, err error) error {
	switch {
	case errors.Is(err, gorm.ErrDuplicatedKey):
		return errDuplicate
	case errors.Is(err, errNoConv):
		// Only a group can be missing here: say no more than for a group
		// one is not in.
		return fmt.Errorf("%w: not a member of the conversation", ErrForbidden)
	case isRequestError(err):
		return err
	}
	return fmt.Errorf("store message conv=%s sender=%d client=%q: %w",
		m.ConvID, m.SenderID, m.ClientMsgID, err)
}

// insertWithSeq is the body of the seq transaction: take the seq, apply
// the write's change, insert the message, move the conversation's last
// message and the sender's read position, and write the outbox row.
//
// The seq: on SQLite an UPDATE ... RETURNING takes it and the row lock; on
// MySQL a SELECT ... FOR UPDATE locks and reads the row, and the seq is
// written with the last message. prev, when it is the row of the same
// conversation as an earlier plain write of this transaction left it, gives
// the seq with no statement at all (the transaction already holds the
// row's lock, and nothing else wrote the row since), written with the last
// message too: a group's run of sends in one batch costs a statement less
// per message. It returns the row as this write leaves it when the write
// is plain, else nil.
func (s *Service) insertWithSeq(tx *gorm.DB, w seqWrite, prev *convRow) (*outboxRow, *convRow, error) {
	m := w.m
	// unwritten: c.LastSeq is this message's seq but not in the row yet;
	// the UPDATE of the last message writes it.
	var c *convRow
	unwritten := true
	switch {
	case prev != nil && prev.ID == m.ConvID:
		next := *prev
		next.LastSeq++
		c = &next
	case tx.Dialector.Name() == DriverMySQL:
		// SELECT ... FOR UPDATE takes the lock the UPDATE would and reads
		// the row: a round trip less than UPDATE then SELECT.
		var err error
		if c, err = s.lockConv(tx, m.ConvID); err != nil {
			return nil, nil, err
		}
		c.LastSeq++
	default:
		var err error
		if c, err = s.nextSeq(tx, m.ConvID); err != nil {
			return nil, nil, err
		}
		unwritten = false
	}
	// The time is taken under the row lock and never before the previous
	// message's, so send times and updated_ms grow with seq.
	now := s.now().UTC().Truncate(time.Millisecond)
	if now.UnixMilli() < c.UpdatedMs {
		now = time.UnixMilli(c.UpdatedMs).UTC()
	}
	m.ID, m.Seq, m.CreatedAt = 0, c.LastSeq, now
	if w.peerCheck {
		blocked, err := s.blockedConvs(tx, []string{m.ConvID})
		if err != nil {
			return nil, nil, err
		}
		if blocked[m.ConvID] {
			return nil, nil, errBlocked
		}
	}
	recipients, err := w.apply(tx, c, m)
	if err != nil {
		return nil, nil, err
	}
	q := &s.queries
	m.ID, err = insertID(tx, q.insertMessage, m.ConvID, m.Seq, m.SenderID, m.SenderDevice,
		m.ClientMsgID, m.ContentType, m.Content, m.CreatedAt, m.Recalled, m.EditedMs,
		m.ReplyToSeq, m.Mentions, m.MentionAll)
	if err != nil {
		return nil, nil, err
	}
	if unwritten {
		_, err = execRaw(tx, "update", q.moveConvSeq, c.LastSeq, m.ID, now.UnixMilli(), now, m.ConvID)
	} else {
		_, err = execRaw(tx, "update", q.moveConv, m.ID, now.UnixMilli(), now, m.ConvID)
	}
	if err != nil {
		return nil, nil, err
	}
	// One's own message is read: the sender's read position moves to it.
	if _, err = execRaw(tx, "update", q.moveRead, m.Seq, m.ConvID, m.SenderID, m.Seq); err != nil {
		return nil, nil, err
	}
	if m.MentionAll || len(m.mentionIDs) > 0 {
		if err := s.moveMentions(tx, []*messageRow{m}); err != nil {
			return nil, nil, err
		}
	}
	ob, err := s.insertOutbox(tx, m, w.origin, recipients)
	if err != nil || !w.plain {
		return ob, nil, err
	}
	c.LastMsgID, c.UpdatedMs, c.UpdatedAt = m.ID, now.UnixMilli(), now
	return ob, c, nil
}

// nextSeq increments last_seq of convID and returns the row with the new
// last_seq and the updated_ms of the message before, or errNoConv when the
// conversation has no row yet: one statement, UPDATE ... RETURNING (SQLite
// 3.35; MySQL has no RETURNING, and MariaDB none on UPDATE: see lockConv).
// The UPDATE takes the row lock that orders concurrent writers until the
// transaction ends.
func (s *Service) nextSeq(tx *gorm.DB, convID string) (*convRow, error) {
	return queryConv(tx, "update", s.queries.nextSeq, convID)
}

// lockConv reads convID's row under a write lock held until the
// transaction ends (MySQL), or returns errNoConv.
func (s *Service) lockConv(tx *gorm.DB, convID string) (*convRow, error) {
	return queryConv(tx, "query", s.queries.lockConv, convID)
}

// queryConv runs query, which returns convColumns of the row of convID, in
// tx, observed as op, or returns errNoConv.
func queryConv(tx *gorm.DB, op, query, convID string) (*convRow, error) {
	start := time.Now()
	defer obs.ObserveDB(tx, op, start)
	rows, err := tx.Statement.ConnPool.QueryContext(tx.Statement.Context, query, convID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, err
		}
		return nil, errNoConv
	}
	c, err := scanConv(rows)
	if err != nil {
		return nil, err
	}
	return c, rows.Close()
}

// scanConv scans a row of convColumns.
func scanConv(rows *sql.Rows) (*convRow, error) {
	var c convRow
	var updated sql.NullTime
	if err := rows.Scan(&c.ID, &c.Type, &c.LastSeq, &c.LastMsgID, &c.UpdatedMs, &updated,
		&c.Name, &c.OwnerID, &c.MemberCount, &c.MemberVer, &c.Dismissed); err != nil {
		return nil, err
	}
	c.UpdatedAt = updated.Time
	return &c, nil
}

// createConv creates the row of a p2p conversation and its two member rows
// unless they exist, in one transaction, so that a conversation never lacks
// its members; racing first senders all succeed.
//
// TODO: conversations stored before the members table existed have no member
// rows and so are missing from SyncConvs; a one-off backfill from their p2p
// ids would restore them.
func (s *Service) createConv(ctx context.Context, convID string, now time.Time) error {
	low, high, err := parseP2P(convID)
	if err != nil {
		return fmt.Errorf("create conv %s: %w", convID, err)
	}
	ms := now.UnixMilli()
	// After a restore it starts past the floor: begun after the backup, it
	// was lost with the store, and devices hold its seqs from 1.
	row := convRow{ID: convID, Type: int16(common.ConvType_P2P), LastSeq: s.seqFloor,
		UpdatedMs: ms, UpdatedAt: now}
	members := []memberRow{
		{ConvID: convID, UserID: low, JoinedMs: ms},
		{ConvID: convID, UserID: high, JoinedMs: ms},
	}
	err = s.dbc(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error; err != nil {
			return err
		}
		return tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&members).Error
	})
	if err != nil {
		return fmt.Errorf("create conv %s: %w", convID, err)
	}
	return nil
}

func isDeadlock(err error) bool {
	var me *gomysql.MySQLError
	return errors.As(err, &me) && me.Number == mysqlDeadlock
}

// listMessages returns up to limit messages of convID with seq > afterSeq
// and, unless upTo is 0, seq <= upTo, oldest first.
func (s *Service) listMessages(ctx context.Context, convID string, afterSeq, upTo int64,
	limit int) ([]messageRow, error) {
	var rows []messageRow
	q := s.rdc(ctx).Where("conv_id = ? AND seq > ?", convID, afterSeq)
	if upTo > 0 {
		q = q.Where("seq <= ?", upTo)
	}
	err := q.Order("seq ASC").Limit(limit).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("list messages conv=%s after=%d: %w", convID, afterSeq, err)
	}
	return rows, nil
}

// listMessagesBefore returns the newest limit messages of convID with
// fromSeq <= seq < beforeSeq, oldest first.
func (s *Service) listMessagesBefore(ctx context.Context, convID string, beforeSeq, fromSeq int64,
	limit int) ([]messageRow, error) {
	var rows []messageRow
	err := s.rdc(ctx).Where("conv_id = ? AND seq < ? AND seq >= ?", convID, beforeSeq, fromSeq).
		Order("seq DESC").Limit(limit).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("list messages conv=%s before=%d: %w", convID, beforeSeq, err)
	}
	slices.Reverse(rows)
	return rows, nil
}
