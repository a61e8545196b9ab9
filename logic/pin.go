package logic

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/rs/zerolog"
	"gorm.io/gorm"
	"gorm.io/gorm/schema"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// MaxPins is how many messages one conversation may have pinned at once;
// LoginResp.limits announces it and docs/protocol.md states it.
const MaxPins = 20

// pinRow is one pinned message, the state the PIN events of its
// conversation add up to. ID orders pins by when they were pinned.
type pinRow struct {
	ID        int64  `gorm:"primaryKey;autoIncrement"`
	ConvID    string `gorm:"size:64;not null"`
	Seq       int64  `gorm:"not null"`
	UserID    int64  `gorm:"not null"` // who pinned it
	CreatedMs int64  `gorm:"not null"`
}

// TableName names the table through the namer so that TablePrefix applies.
func (pinRow) TableName(n schema.Namer) string { return n.TableName("pin") }

// pinIndexes: a message is pinned once; SYNC_CONVS reads a page's pins by
// conversation through the same index.
var pinIndexes = []tableIndex{
	{model: &pinRow{}, suffix: "_msg", columns: []string{"conv_id", "seq"}, unique: true},
}

// Pin pins a message the session user can read for every member of its
// conversation, or unpins it: a PIN event tells every device, in order, and
// the pins table keeps the current set for SYNC_CONVS. In a group only its
// owner and admins may (see mayPin). Pinning a pinned message, or unpinning
// one that is not, stores nothing and answers duplicate with no msg_id or
// seq, as React does.
func (s *Service) Pin(ctx context.Context, session *logicrpc.Session,
	req *protocol.PinReq) (*protocol.SendResp, error) {
	if err := s.authorizeWrite(ctx, "pin", session); err != nil {
		return nil, err
	}
	if req == nil {
		req = &protocol.PinReq{} // a missing body reads as empty
	}
	logIDs := func(e *zerolog.Event) *zerolog.Event {
		return e.Int64("user", session.UserId).Str("conv", req.GetConvId()).
			Int64("seq", req.GetSeq()).Str("client_msg", req.GetClientMsgId())
	}
	if err := s.limits.allowPin(session.UserId); err != nil {
		return nil, s.fail("pin", err, logIDs)
	}
	ev := &common.PinEvent{Seq: req.Seq, Unpinned: req.Unpin}
	change := func(tx *gorm.DB, c *convRow, target *messageRow, now time.Time) error {
		if err := s.mayPin(tx, c, session.UserId); err != nil {
			return err
		}
		ev.MsgId = target.ID
		if req.Unpin {
			return unpin(tx, target.ConvID, target.Seq)
		}
		return pin(tx, pinRow{ConvID: target.ConvID, Seq: target.Seq,
			UserID: session.UserId, CreatedMs: now.UnixMilli()})
	}
	resp, err := s.toggleMessage(ctx, session, msgChange{clientMsgID: req.ClientMsgId,
		convID: req.ConvId, seq: req.Seq, ct: common.ContentType_PIN, byReader: true,
		event: ev, change: change})
	if err != nil {
		return nil, s.fail("pin", err, logIDs)
	}
	return resp, nil
}

// mayPin refuses a pin or unpin by a plain member of group c. Pins show at
// the top of the conversation for every member, a setting of the whole
// group as its name is, so they follow RENAME: the owner and admins only.
// Either user of a 1:1 conversation may.
func (s *Service) mayPin(tx *gorm.DB, c *convRow, user int64) error {
	if c.Type != int16(common.ConvType_GROUP) {
		return nil
	}
	ms, err := s.activeMembers(tx, c)
	if err != nil {
		return err
	}
	if role := ms.roles[user]; role != common.GroupRole_OWNER && role != common.GroupRole_ADMIN {
		return fmt.Errorf("%w: only the group's owner and admins may pin", ErrForbidden)
	}
	return nil
}

// pin stores r unless its message is pinned (errNoChange), within MaxPins.
// It runs under the conversation's row lock, so the count it reads cannot
// change before its insert.
func pin(tx *gorm.DB, r pinRow) error {
	var pinned []int64
	err := tx.Model(&pinRow{}).Where("conv_id = ?", r.ConvID).Pluck("seq", &pinned).Error
	if err != nil {
		return fmt.Errorf("pins of conv=%s: %w", r.ConvID, err)
	}
	for _, seq := range pinned {
		if seq == r.Seq {
			return errNoChange
		}
	}
	if len(pinned) >= MaxPins {
		return fmt.Errorf("%w: at most %d pinned messages per conversation", ErrTooLarge, MaxPins)
	}
	if err := tx.Create(&r).Error; err != nil {
		return fmt.Errorf("pin conv=%s seq=%d: %w", r.ConvID, r.Seq, err)
	}
	return nil
}

// unpin deletes the pin of the message at seq of convID, or reports
// errNoChange when it is not pinned.
func unpin(tx *gorm.DB, convID string, seq int64) error {
	res := tx.Where("conv_id = ? AND seq = ?", convID, seq).Delete(&pinRow{})
	if res.Error != nil {
		return fmt.Errorf("unpin conv=%s seq=%d: %w", convID, seq, res.Error)
	}
	if res.RowsAffected == 0 {
		return errNoChange
	}
	return nil
}

// pinnedSeqs returns the pinned seqs of rows' conversations that each
// row's user may read, most recently pinned first: from their joining on,
// after what they cleared, and none in a group they left (its later pins
// are not theirs). One query for the page.
func (s *Service) pinnedSeqs(ctx context.Context,
	rows []convSummaryRow) (map[string][]int64, error) {
	ids := make([]string, 0, len(rows))
	for _, r := range rows {
		if r.LeftSeq == 0 {
			ids = append(ids, r.ID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	var pins []pinRow
	err := s.rdc(ctx).Select("conv_id", "seq").Where("conv_id IN ?", ids).
		Order("id DESC").Find(&pins).Error
	if err != nil {
		return nil, fmt.Errorf("pins (%d convs): %w", len(ids), err)
	}
	byConv := make(map[string][]int64)
	for _, p := range pins {
		byConv[p.ConvID] = append(byConv[p.ConvID], p.Seq)
	}
	out := make(map[string][]int64, len(byConv))
	for _, r := range rows {
		for _, seq := range byConv[r.ID] {
			if seq >= r.JoinSeq && seq > r.ClearedSeq {
				out[r.ID] = append(out[r.ID], seq)
			}
		}
	}
	return out, nil
}

// allowPin takes one pin or unpin from the user's budget: each stores an
// event pushed to every member.
func (l limiters) allowPin(user int64) error {
	if !l.pin.Allow(strconv.FormatInt(user, 10)) {
		return fmt.Errorf("%w: pins", ErrRateLimited)
	}
	return nil
}
