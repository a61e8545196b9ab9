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

// maxDeliveredPositions bounds the positions of one Delivered request, and
// so the size of its one upsert statement.
const maxDeliveredPositions = 500

// Delivered records this device's delivered positions: per conversation the
// highest seq, which never moves back and never passes the conversation's
// last seq. All positions of the request are written in one statement.
//
// A position in a conversation the user is not a member of is skipped, not
// refused: a device may report a conversation it has since left, and failing
// the batch would make it resend the same batch for ever. A malformed
// conversation id is BAD_REQUEST.
func (s *Service) Delivered(ctx context.Context, session *logicrpc.Session,
	req *protocol.DeliveredReq) (*protocol.DeliveredResp, error) {
	if err := s.authorizeRead(ctx, "delivered", session); err != nil {
		return nil, err
	}
	if req == nil {
		req = &protocol.DeliveredReq{} // a missing body reads as empty
	}
	logIDs := func(e *zerolog.Event) *zerolog.Event {
		return e.Int64("user", session.UserId).Int64("conn", session.ConnId)
	}
	want, err := highestPositions(req.GetPositions())
	if err != nil {
		return nil, s.fail("delivered", err, logIDs)
	}
	if err := s.saveDelivered(ctx, session, want); err != nil {
		return nil, s.fail("delivered", err, logIDs)
	}
	return &protocol.DeliveredResp{}, nil
}

// highestPositions validates positions and keeps the highest seq per
// conversation.
func highestPositions(positions []*protocol.ConvPos) (map[string]int64, error) {
	if len(positions) > maxDeliveredPositions {
		return nil, fmt.Errorf("%w: over %d positions", ErrTooLarge, maxDeliveredPositions)
	}
	out := make(map[string]int64, len(positions))
	for _, p := range positions {
		if p == nil || p.Seq < 0 {
			return nil, fmt.Errorf("%w: negative or missing position", ErrBadRequest)
		}
		if err := checkConvID(p.ConvId); err != nil {
			return nil, err
		}
		out[p.ConvId] = max(out[p.ConvId], p.Seq)
	}
	return out, nil
}

// saveDelivered upserts the positions of the conversations session's user is
// a member of, each capped at its conversation's last seq.
func (s *Service) saveDelivered(ctx context.Context, session *logicrpc.Session,
	want map[string]int64) error {
	if len(want) == 0 {
		return nil
	}
	convIDs := make([]string, 0, len(want))
	for id := range want {
		convIDs = append(convIDs, id)
	}
	lastSeqs, err := s.memberLastSeqs(ctx, session.UserId, convIDs)
	if err != nil {
		return err
	}
	rows := make([]deliveredRow, 0, len(lastSeqs))
	for id, last := range lastSeqs {
		if seq := min(want[id], last); seq > 0 {
			rows = append(rows, deliveredRow{UserID: session.UserId, DeviceID: session.DeviceId,
				ConvID: id, Seq: seq})
		}
	}
	if len(rows) == 0 {
		return nil
	}
	err = s.dbc(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "user_id"}, {Name: "device_id"}, {Name: "conv_id"}},
		DoUpdates: clause.Set{{Column: clause.Column{Name: "seq"}, Value: s.keepHigherSeq()}},
	}).Create(&rows).Error
	if err != nil {
		return fmt.Errorf("save delivered user=%d device=%q (%d convs): %w",
			session.UserId, session.DeviceId, len(rows), err)
	}
	return nil
}

// keepHigherSeq is the upsert's new seq: the higher of the stored and the
// offered one, so a late or replayed report never moves a position back.
func (s *Service) keepHigherSeq() clause.Expr {
	if s.db.Dialector.Name() == DriverMySQL {
		return gorm.Expr("GREATEST(seq, VALUES(seq))")
	}
	return gorm.Expr("MAX(seq, excluded.seq)")
}

// memberLastSeqs returns the last seq user may read of each of convIDs
// that user is or was a member of: a former group member's ends where the
// membership did.
func (s *Service) memberLastSeqs(ctx context.Context, user int64,
	convIDs []string) (map[string]int64, error) {
	var rows []struct {
		ID      string
		LastSeq int64
	}
	err := s.dbc(ctx).Table(s.tables.member+" AS m").
		Select("c.id, CASE WHEN m.left_seq > 0 THEN m.left_seq ELSE c.last_seq END AS last_seq").
		Joins("JOIN "+s.tables.conv+" AS c ON c.id = m.conv_id").
		Where("m.user_id = ? AND m.conv_id IN ?", user, convIDs).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("member convs user=%d (%d convs): %w", user, len(convIDs), err)
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.ID] = r.LastSeq
	}
	return out, nil
}

// deliveredSeqs returns device's delivered positions in convIDs; a missing
// conversation has none (0).
func (s *Service) deliveredSeqs(ctx context.Context, user int64, device string,
	convIDs []string) (map[string]int64, error) {
	var rows []deliveredRow
	err := s.rdc(ctx).
		Where("user_id = ? AND device_id = ? AND conv_id IN ?", user, device, convIDs).
		Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("delivered seqs user=%d device=%q: %w", user, device, err)
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.ConvID] = r.Seq
	}
	return out, nil
}

// MarkRead moves the user's read position of a conversation forward to the
// request's seq, capped at the conversation's last seq, and returns the
// resulting position, which is never lower than before. FORBIDDEN when the
// user is not a member.
func (s *Service) MarkRead(ctx context.Context, session *logicrpc.Session,
	req *protocol.MarkReadReq) (*protocol.MarkReadResp, error) {
	if err := s.authorizeWrite(ctx, "mark_read", session); err != nil {
		return nil, err
	}
	if req == nil {
		req = &protocol.MarkReadReq{} // a missing body reads as empty
	}
	logIDs := func(e *zerolog.Event) *zerolog.Event {
		return e.Int64("user", session.UserId).Str("conv", req.GetConvId())
	}
	if err := checkConvID(req.GetConvId()); err != nil {
		return nil, s.fail("mark_read", err, logIDs)
	}
	if req.Seq < 0 {
		return nil, s.fail("mark_read", fmt.Errorf("%w: negative seq", ErrBadRequest), logIDs)
	}
	readSeq, moved, err := s.markRead(ctx, session.UserId, req.ConvId, req.Seq)
	if err != nil {
		return nil, s.fail("mark_read", err, logIDs)
	}
	if moved {
		s.notifyRead(ctx, session, req.ConvId, readSeq)
	}
	return &protocol.MarkReadResp{ReadSeq: readSeq}, nil
}

// markRead raises user's read_seq in convID to min(seq, last_seq) and
// returns the stored read_seq, and whether this call moved it. The
// conditional UPDATE keeps it monotonic against concurrent calls; last_seq
// only grows, so reading it first is safe.
func (s *Service) markRead(ctx context.Context, user int64, convID string,
	seq int64) (readSeq int64, moved bool, err error) {
	lastSeqs, err := s.memberLastSeqs(ctx, user, []string{convID})
	if err != nil {
		return 0, false, err
	}
	last, ok := lastSeqs[convID]
	if !ok {
		return 0, false, fmt.Errorf("%w: not a member of the conversation", ErrForbidden)
	}
	target := min(seq, last)
	// changed_ms makes SyncConvs report the conversation again, so the
	// user's other devices learn the new position (see changedConvs).
	res := s.dbc(ctx).Model(&memberRow{}).
		Where("conv_id = ? AND user_id = ? AND read_seq < ?", convID, user, target).
		Updates(map[string]any{"read_seq": target, "changed_ms": s.now().UnixMilli()})
	if err = res.Error; err != nil {
		return 0, false, fmt.Errorf("mark read user=%d conv=%s seq=%d: %w",
			user, convID, target, err)
	}
	var m memberRow
	err = s.dbc(ctx).Where("conv_id = ? AND user_id = ?", convID, user).Take(&m).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return 0, false, fmt.Errorf("%w: not a member of the conversation", ErrForbidden)
	}
	if err != nil {
		return 0, false, fmt.Errorf("read position user=%d conv=%s: %w", user, convID, err)
	}
	return m.ReadSeq, res.RowsAffected > 0, nil
}
