package logic

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"

	"github.com/resonance-im/resonance/internal/obs"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// blockRow says that BlockerID blocked BlockedID.
type blockRow struct {
	BlockerID int64 `gorm:"primaryKey;autoIncrement:false"`
	BlockedID int64 `gorm:"primaryKey;autoIncrement:false"`
	CreatedMs int64 `gorm:"not null"`
}

// TableName names the table through the namer so that TablePrefix applies.
func (blockRow) TableName(n schema.Namer) string { return n.TableName("block") }

// Block blocks or unblocks req.user_id for the session's user. Either way
// it is idempotent; blocking oneself is BAD_REQUEST and an unknown user
// NOT_FOUND.
func (s *Service) Block(ctx context.Context, session *logicrpc.Session,
	req *protocol.BlockReq) (*protocol.BlockResp, error) {
	if err := s.authorizeWrite(ctx, "block", session); err != nil {
		return nil, err
	}
	if req == nil {
		req = &protocol.BlockReq{} // a missing body reads as empty
	}
	target := req.GetUserId()
	var err error
	switch {
	case target <= 0:
		err = fmt.Errorf("%w: user_id required", ErrBadRequest)
	case target == session.UserId:
		err = fmt.Errorf("%w: cannot block yourself", ErrBadRequest)
	default:
		err = s.setBlocked(ctx, session.UserId, target, req.Blocked)
	}
	if err != nil {
		return nil, s.fail("block", err, func(e *zerolog.Event) *zerolog.Event {
			return sessionIDs(session)(e).Int64("target", target)
		})
	}
	return &protocol.BlockResp{}, nil
}

// setBlocked writes or removes the block of blocked by blocker.
func (s *Service) setBlocked(ctx context.Context, blocker, blocked int64, on bool) error {
	u, err := s.findUser(ctx, "", blocked)
	if err != nil {
		return err
	}
	if u == nil {
		return fmt.Errorf("%w: user", ErrNotFound)
	}
	db := s.dbc(ctx)
	if on {
		row := blockRow{BlockerID: blocker, BlockedID: blocked, CreatedMs: s.now().UnixMilli()}
		err = db.Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error
	} else {
		err = db.Where("blocker_id = ? AND blocked_id = ?", blocker, blocked).
			Delete(&blockRow{}).Error
	}
	if err != nil {
		return fmt.Errorf("set block %d->%d to %v: %w", blocker, blocked, on, err)
	}
	if on {
		// The blocked user reads the blocker offline from now on, so it
		// must stop hearing the blocker's presence changes too, not only
		// once it sends its watch set again. The block is stored already; a
		// failed unwatch is answered UNAVAILABLE, and the client's retry of
		// the block, which stores nothing twice, unwatches again.
		if err := s.eph.watches.Unwatch(ctx, blocked, blocker); err != nil {
			return fmt.Errorf("%w: block %d->%d: %w", ErrUnavailable, blocker, blocked, err)
		}
	}
	return nil
}

// blockedBetween reports whether either of a and b blocked the other, or
// was deleted, in one query on the read pool. A block works both ways for
// 1:1 messages: the blocked user cannot reach the blocker, and the blocker
// must unblock before writing again, so a conversation never runs
// one-sided. A deleted user reads as blocked, as in peerState: nothing
// reaches it, and nothing from a connection its deletion has not closed yet
// reaches its peer (TYPING, read receipts, EDIT).
func (s *Service) blockedBetween(ctx context.Context, a, b int64) (bool, error) {
	var n int64
	err := s.rdb.Statement.ConnPool.QueryRowContext(ctx, s.queries.pairState,
		a, b, b, a, a, b).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("block check %d<->%d: %w", a, b, err)
	}
	return n > 0, nil
}

// refuseBlockers fails with errAddBlocked, naming the first, when any of
// ids blocked adder. It reads in db, the transaction of an ADD (under the
// group's lock) or the read pool before a CREATE_GROUP. Block takes no
// group lock: an add that read no block commits even if the block is
// written meanwhile, as a 1:1 send does.
func refuseBlockers(db *gorm.DB, adder int64, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	var blockers []int64
	err := db.Model(&blockRow{}).Where("blocked_id = ? AND blocker_id IN ?", adder, ids).
		Order("blocker_id").Limit(1).Pluck("blocker_id", &blockers).Error
	if err != nil {
		return fmt.Errorf("blockers of user %d among %d: %w", adder, len(ids), err)
	}
	if len(blockers) > 0 {
		return fmt.Errorf("%w: user %d", errAddBlocked, blockers[0])
	}
	return nil
}

// peerState tells whether user peer exists and whether sender and peer
// block each other, in one query: a 1:1 send asks both. A deleted peer
// exists and reads as blocked: a send to it is refused as one to a
// blocker is (FORBIDDEN), in a new conversation as in an old one. So does a
// deleted sender, a connection its deletion has not closed yet: its first
// message to someone would otherwise store the conversation's rows before
// the seq transaction refuses the message (blockedConvs).
func (s *Service) peerState(ctx context.Context, sender, peer int64) (exists, blocked bool, err error) {
	var users, blocks int64
	err = s.rdb.Statement.ConnPool.QueryRowContext(ctx, s.queries.peerState,
		peer, sender, peer, peer, sender, peer, sender).Scan(&users, &blocks)
	if err != nil {
		return false, false, fmt.Errorf("peer check %d->%d: %w", sender, peer, err)
	}
	return users > 0, blocks > 0, nil
}

// blockedConvs returns which of the p2p conversations convIDs have a block
// between their two users, either way, or a user whose account was deleted, read in tx (a seq transaction, once
// the conversations' rows are locked) with one statement. Block takes no
// conversation lock: a send that read no block commits even if a block is
// written meanwhile, as when the check ran before the transaction.
func (s *Service) blockedConvs(tx *gorm.DB, convIDs []string) (map[string]bool, error) {
	n := padded(len(convIDs))
	args := make([]any, 0, 6*n)
	for j := range n {
		low, high, err := parseP2P(convIDs[min(j, len(convIDs)-1)])
		if err != nil {
			return nil, err
		}
		args = append(args, low, high, high, low)
	}
	for j := range n {
		args = append(args, args[4*j], args[4*j+1]) // each pair's users, for deletion
	}
	start := time.Now()
	defer obs.ObserveDB(tx, "query", start)
	rows, err := tx.Statement.ConnPool.QueryContext(tx.Statement.Context, s.queries.blocks(n),
		args...)
	if err != nil {
		return nil, fmt.Errorf("block check of %d conversations: %w", len(convIDs), err)
	}
	defer rows.Close()
	var blocked map[string]bool
	for rows.Next() {
		var blocker, blockedID int64
		if err := rows.Scan(&blocker, &blockedID); err != nil {
			return nil, err
		}
		if blocked == nil {
			blocked = make(map[string]bool)
		}
		if blockedID == 0 {
			markDeletedPeer(blocked, convIDs, blocker)
			continue
		}
		blocked[p2pConvID(blocker, blockedID)] = true
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return blocked, rows.Close()
}

// checkNewPeer refuses the first message of a p2p conversation, before its
// rows are created, when the peer does not exist or either user blocked the
// other: such a conversation would show in both users' lists though nothing
// may be sent in it.
func (s *Service) checkNewPeer(ctx context.Context, m *messageRow) error {
	peer, err := peerOf(m.ConvID, m.SenderID)
	if err != nil {
		return err
	}
	exists, blocked, err := s.peerState(ctx, m.SenderID, peer)
	switch {
	case err != nil:
		return err
	case !exists:
		return fmt.Errorf("%w: user", ErrNotFound)
	case blocked:
		return errBlocked
	}
	return nil
}

// markDeletedPeer marks in blocked those of convIDs that user, whose
// account was deleted, is one of the two users of.
func markDeletedPeer(blocked map[string]bool, convIDs []string, user int64) {
	for _, id := range convIDs {
		if low, high, err := parseP2P(id); err == nil && (low == user || high == user) {
			blocked[id] = true
		}
	}
}
