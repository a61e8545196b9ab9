package logic

import (
	"context"
	"fmt"
)

// readRange is the part of a conversation one user may read: seqs from
// through to, where to 0 means no end. A p2p conversation is readable whole
// by both users; a group from the member's join on, and up to the event that
// ended the membership.
type readRange struct {
	from, to int64
}

// clamp returns seq capped at the range's end.
func (r readRange) clamp(seq int64) int64 {
	if r.to > 0 {
		return min(seq, r.to)
	}
	return seq
}

// readable returns what user may read of convID, or FORBIDDEN when nothing:
// a stranger learns no more about a group than that it is not theirs.
func (s *Service) readable(ctx context.Context, convID string, user int64) (readRange, error) {
	if !isGroupID(convID) {
		if _, err := peerOf(convID, user); err != nil {
			return readRange{}, err
		}
		return readRange{from: 1}, nil
	}
	var m memberRow
	res := s.rdc(ctx).Where("conv_id = ? AND user_id = ?", convID, user).Limit(1).Find(&m)
	if res.Error != nil {
		return readRange{}, fmt.Errorf("membership conv=%s user=%d: %w", convID, user, res.Error)
	}
	if res.RowsAffected == 0 {
		return readRange{}, fmt.Errorf("%w: not a member of the conversation", ErrForbidden)
	}
	return readRange{from: max(1, m.JoinSeq), to: m.LeftSeq}, nil
}
