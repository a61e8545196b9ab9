package logic

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Sync page sizes.
const (
	defaultSyncLimit = 50
	maxSyncLimit     = 200
)

// Sync returns messages of a conversation the session's user belongs to,
// oldest first. Forward (before_seq 0): seq > after_seq; seqs are assigned in
// commit order, so a client that pages with the last seq it saw never skips
// a message. Backward (before_seq > 0): the newest messages below
// before_seq, with has_more telling whether older ones exist. last_seq is
// read after the page, so it is at least the page's newest seq. History the
// user cleared (see ClearConv) is never returned: backward paging ends there.
func (s *Service) Sync(ctx context.Context, session *logicrpc.Session,
	req *protocol.SyncReq) (*protocol.SyncResp, error) {
	if err := s.authorizeRead(ctx, "sync", session); err != nil {
		return nil, err
	}
	if req == nil {
		req = &protocol.SyncReq{} // a missing body reads as empty
	}
	logIDs := func(e *zerolog.Event) *zerolog.Event {
		return e.Int64("user", session.UserId).Str("conv", req.ConvId)
	}
	rr, err := s.readable(ctx, req.ConvId, session.UserId)
	if err != nil {
		return nil, s.fail("sync", err, logIDs)
	}
	rows, hasMore, err := s.syncPage(ctx, req, rr)
	if err != nil {
		return nil, s.fail("sync", err, logIDs)
	}
	tail, err := s.convTail(ctx, req.ConvId)
	if err != nil {
		return nil, s.fail("sync", err, logIDs)
	}
	resp := &protocol.SyncResp{HasMore: hasMore, Messages: make([]*common.Message, len(rows)),
		LastSeq: rr.clamp(tail.lastSeq)}
	for i := range rows {
		resp.Messages[i] = rows[i].toThrift()
	}
	// Before fitting: the reactions take room in the frame.
	if tail.reacted {
		if err := s.addReactions(ctx, req.ConvId, resp.Messages); err != nil {
			return nil, s.fail("sync", err, logIDs)
		}
	}
	fitReply(resp, req.BeforeSeq > 0)
	return resp, nil
}

// syncTail is what Sync reads of the conversation's row after the page.
type syncTail struct {
	// lastSeq is at least the page's newest seq: the page was read first.
	lastSeq int64
	// reacted says whether the conversation ever had a reaction. Read after
	// the page, it is set for any reaction to the page committed so far; a
	// later one's event has a seq past lastSeq, which the client fetches.
	reacted bool
}

// convTail reads convID's syncTail in one query; a conversation with no
// row (a p2p one before its first message) has neither.
func (s *Service) convTail(ctx context.Context, convID string) (syncTail, error) {
	var c convRow
	err := s.rdc(ctx).Select("last_seq", "reacted").Where("id = ?", convID).Limit(1).
		Find(&c).Error
	if err != nil {
		return syncTail{}, fmt.Errorf("last seq conv=%s: %w", convID, err)
	}
	return syncTail{lastSeq: c.LastSeq, reacted: c.Reacted}, nil
}

// syncPage reads the page req asks for, oldest first. One row beyond the
// limit tells whether another page follows: a newer one going forward, an
// older one going backward.
func (s *Service) syncPage(ctx context.Context, req *protocol.SyncReq,
	rr readRange) ([]messageRow, bool, error) {
	limit := syncLimit(req.Limit)
	if req.BeforeSeq > 0 {
		before := req.BeforeSeq
		if rr.to > 0 {
			before = min(before, rr.to+1)
		}
		rows, err := s.listMessagesBefore(ctx, req.ConvId, before, rr.syncFrom(), limit+1)
		if len(rows) > limit {
			return rows[1:], true, err
		}
		return rows, false, err
	}
	rows, err := s.listMessages(ctx, req.ConvId, max(req.AfterSeq, rr.syncFrom()-1, 0), rr.to,
		limit+1)
	if len(rows) > limit {
		return rows[:limit], true, err
	}
	return rows, false, err
}

func syncLimit(asked int32) int {
	switch {
	case asked <= 0:
		return defaultSyncLimit
	case asked > maxSyncLimit:
		return maxSyncLimit
	}
	return int(asked)
}

// fitReply cuts a page that would not fit in one frame: going forward it
// keeps the oldest messages, going backward the newest, so the next page
// continues without a hole.
func fitReply(resp *protocol.SyncResp, backward bool) {
	msgs := resp.Messages
	if backward {
		if n := fitBack(msgs, replyBudget); n < len(msgs) {
			resp.Messages, resp.HasMore = msgs[len(msgs)-n:], true
		}
		return
	}
	if n := fitFront(msgs, replyBudget); n < len(msgs) {
		resp.Messages, resp.HasMore = msgs[:n], true
	}
}
