package logic

import (
	"context"
	"errors"
	"fmt"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/resonance-im/resonance/kitex_gen/common"
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
	q := s.dbc(ctx).Limit(1)
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
	res := s.dbc(ctx).Where("sender_id = ? AND client_msg_id = ?", sender, clientMsgID).
		Limit(1).Find(&m)
	if res.Error != nil {
		return nil, fmt.Errorf("find message sender=%d client=%q: %w", sender, clientMsgID, res.Error)
	}
	if res.RowsAffected == 0 {
		return nil, nil
	}
	return &m, nil
}

// storeMessage assigns m the next seq of its conversation and inserts it, in
// one transaction: the conversation row's lock (taken by the UPDATE) orders
// concurrent senders, so seqs are 1, 2, 3... in commit order with no gap,
// because a failed insert rolls its increment back. A duplicate client id
// returns errDuplicate and stores nothing.
func (s *Service) storeMessage(ctx context.Context, m *messageRow) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = s.dbc(ctx).Transaction(func(tx *gorm.DB) error {
			return insertWithSeq(tx, m)
		})
		retry := isDeadlock(err)
		if errors.Is(err, errNoConv) {
			// The row is created outside the seq transaction: creating it
			// inside lets InnoDB's gap locks deadlock racing first senders.
			if cerr := s.createConv(ctx, m.ConvID, m.CreatedAt); cerr != nil {
				err = cerr
			} else {
				retry = true
			}
		}
		if !retry || attempt == maxTxAttempts {
			break
		}
	}
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return errDuplicate
	}
	if err != nil {
		return fmt.Errorf("store message conv=%s sender=%d client=%q: %w",
			m.ConvID, m.SenderID, m.ClientMsgID, err)
	}
	return nil
}

func insertWithSeq(tx *gorm.DB, m *messageRow) error {
	seq, err := nextSeq(tx, m.ConvID, m.CreatedAt)
	if err != nil {
		return err
	}
	m.ID = 0
	m.Seq = seq
	return tx.Create(m).Error
}

// nextSeq increments and returns last_seq of convID, or errNoConv when the
// conversation has no row yet. The UPDATE takes the row lock that orders
// concurrent senders until the transaction ends.
func nextSeq(tx *gorm.DB, convID string, now time.Time) (int64, error) {
	res := tx.Model(&convRow{}).Where("id = ?", convID).
		Updates(map[string]any{"last_seq": gorm.Expr("last_seq + 1"), "updated_at": now})
	if res.Error != nil {
		return 0, res.Error
	}
	if res.RowsAffected == 0 {
		return 0, errNoConv
	}
	var seq int64
	if err := tx.Model(&convRow{}).Where("id = ?", convID).Pluck("last_seq", &seq).Error; err != nil {
		return 0, err
	}
	return seq, nil
}

// createConv creates the row of a p2p conversation unless it exists; racing
// first senders all succeed.
func (s *Service) createConv(ctx context.Context, convID string, now time.Time) error {
	row := convRow{ID: convID, Type: int16(common.ConvType_P2P), UpdatedAt: now}
	err := s.dbc(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error
	if err != nil {
		return fmt.Errorf("create conv %s: %w", convID, err)
	}
	return nil
}

func isDeadlock(err error) bool {
	var me *gomysql.MySQLError
	return errors.As(err, &me) && me.Number == mysqlDeadlock
}

// listMessages returns up to limit messages of convID with seq > afterSeq,
// oldest first.
func (s *Service) listMessages(ctx context.Context, convID string, afterSeq int64,
	limit int) ([]messageRow, error) {
	var rows []messageRow
	err := s.dbc(ctx).Where("conv_id = ? AND seq > ?", convID, afterSeq).
		Order("seq ASC").Limit(limit).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("list messages conv=%s after=%d: %w", convID, afterSeq, err)
	}
	return rows, nil
}
