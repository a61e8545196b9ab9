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
	// cleared is the seq up to which the user cleared the history (see
	// ClearConv): SYNC hides what is at or below it, nothing else does.
	cleared int64
}

// syncFrom is the first seq SYNC returns: the range's start, or the first
// after the cleared history.
func (r readRange) syncFrom() int64 {
	return max(r.from, r.cleared+1)
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
	}
	var m memberRow
	res := s.rdc(ctx).Select("join_seq", "left_seq", "cleared_seq").
		Where("conv_id = ? AND user_id = ?", convID, user).Limit(1).Find(&m)
	if res.Error != nil {
		return readRange{}, fmt.Errorf("membership conv=%s user=%d: %w", convID, user, res.Error)
	}
	return rangeOf(convID, m, res.RowsAffected > 0)
}

// rangeOf is what the user whose member row of convID is m (found: there is
// one) may read, as readable answers; a p2p conversation is assumed to be
// the user's, as peerOf checks.
func rangeOf(convID string, m memberRow, found bool) (readRange, error) {
	if !isGroupID(convID) {
		// Both users read a p2p conversation whole, even before its first
		// message creates their rows.
		return readRange{from: 1, cleared: m.ClearedSeq}, nil
	}
	if !found {
		return readRange{}, fmt.Errorf("%w: not a member of the conversation", ErrForbidden)
	}
	return readRange{from: max(1, m.JoinSeq), to: m.LeftSeq, cleared: m.ClearedSeq}, nil
}
