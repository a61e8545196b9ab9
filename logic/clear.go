package logic

import (
	"context"
	"errors"
	"fmt"

	"github.com/rs/zerolog"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// ClearConv clears a conversation's history for the session's user on all
// of the user's devices, and with hide drops it from their list until a
// newer message arrives. The state lives in the user's member row, the same
// for p2p and group conversations, so other members are never affected. A
// group's former member may clear it too; anyone else gets the answer SYNC
// gives them.
func (s *Service) ClearConv(ctx context.Context, session *logicrpc.Session,
	req *protocol.ClearConvReq) (*protocol.ClearConvResp, error) {
	if err := s.authorizeWrite(ctx, "clear_conv", session); err != nil {
		return nil, err
	}
	if req == nil {
		req = &protocol.ClearConvReq{} // a missing body reads as empty
	}
	logIDs := func(e *zerolog.Event) *zerolog.Event {
		return e.Int64("user", session.UserId).Str("conv", req.GetConvId())
	}
	cleared, err := s.clearConv(ctx, session, req)
	if err != nil {
		return nil, s.fail("clear_conv", err, logIDs)
	}
	s.log.Info().Int64("user", session.UserId).Str("conv", req.GetConvId()).
		Int64("cleared_seq", cleared).Bool("hide", req.GetHide()).Msg("conversation cleared")
	return &protocol.ClearConvResp{ClearedSeq: cleared}, nil
}

// notifyCleared tells the user's other devices at once what their next
// SYNC_CONVS would report after a clear: the stored cleared seq and whether
// the conversation is hidden. Sent after every clear that found the member
// row, also one that moved nothing, since the hide may have changed; a lost
// one is repaired by that listing.
func (s *Service) notifyCleared(ctx context.Context, session *logicrpc.Session, conv string,
	clearedSeq int64, hidden bool) {
	n := &protocol.Notify{Cleared: &protocol.ConvCleared{ConvId: conv,
		ClearedSeq: clearedSeq, Hidden: hidden}}
	s.publishNotify(ctx, []int64{session.UserId}, n, ownConn(session))
}

// clearConv raises the user's cleared_seq (and read_seq with it) to the
// request's seq, capped at the last seq the user may read, sets or resets
// the hide, and moves the member's change time so that SyncConvs reports
// the conversation to the user's other devices. It returns the stored
// cleared_seq.
func (s *Service) clearConv(ctx context.Context, session *logicrpc.Session,
	req *protocol.ClearConvReq) (int64, error) {
	user, conv := session.UserId, req.GetConvId()
	if err := checkConvID(conv); err != nil {
		return 0, err
	}
	if req.GetUpToSeq() < 0 {
		return 0, fmt.Errorf("%w: negative up_to_seq", ErrBadRequest)
	}
	if _, err := s.readable(ctx, conv, user); err != nil {
		return 0, err
	}
	before, found, err := s.memberState(ctx, conv, user)
	if err != nil || !found {
		// Not found: a p2p conversation without a message has no rows yet,
		// so nothing to clear and nothing listed to hide.
		return 0, err
	}
	last, err := s.memberLastSeqs(ctx, user, []string{conv})
	if err != nil {
		return 0, err
	}
	target := last[conv]
	if req.GetUpToSeq() > 0 {
		target = min(req.GetUpToSeq(), target)
	}
	if err := s.saveCleared(ctx, conv, user, target, req.GetHide()); err != nil {
		return 0, err
	}
	after, _, err := s.memberState(ctx, conv, user)
	if err != nil {
		return 0, err
	}
	if after.ReadSeq > before.ReadSeq {
		s.notifyRead(ctx, session, conv, after.ReadSeq)
	}
	s.notifyCleared(ctx, session, conv, after.ClearedSeq,
		after.HiddenSeq > 0 && last[conv] <= after.HiddenSeq)
	return after.ClearedSeq, nil
}

// saveCleared writes a clear up to target in one UPDATE. Each column only
// moves forward against concurrent clears and reads; hidden_seq is the
// resulting cleared_seq, written the same whether the store evaluates it
// before or after cleared_seq's own assignment (MySQL does it in order,
// SQLite from the old row), since both give the higher of the two.
func (s *Service) saveCleared(ctx context.Context, conv string, user, target int64,
	hide bool) error {
	raise := func(col string) clause.Expr {
		return gorm.Expr("CASE WHEN "+col+" < ? THEN ? ELSE "+col+" END", target, target)
	}
	var hidden any = 0
	if hide {
		hidden = raise("cleared_seq")
	}
	err := s.dbc(ctx).Model(&memberRow{}).Where("conv_id = ? AND user_id = ?", conv, user).
		Updates(map[string]any{"cleared_seq": raise("cleared_seq"),
			"read_seq": raise("read_seq"), "hidden_seq": hidden,
			"changed_ms": s.now().UnixMilli()}).Error
	if err != nil {
		return fmt.Errorf("clear conv user=%d conv=%s up_to=%d hide=%t: %w",
			user, conv, target, hide, err)
	}
	return nil
}

// memberState reads user's member row of conv from the primary, and whether
// there is one.
func (s *Service) memberState(ctx context.Context, conv string,
	user int64) (memberRow, bool, error) {
	var m memberRow
	err := s.dbc(ctx).Where("conv_id = ? AND user_id = ?", conv, user).Take(&m).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return m, false, nil
	}
	if err != nil {
		return m, false, fmt.Errorf("member row user=%d conv=%s: %w", user, conv, err)
	}
	return m, true, nil
}
