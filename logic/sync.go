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

// Sync returns the messages of a conversation the session's user belongs to
// with seq > after_seq, oldest first. Seqs are assigned in commit order, so a
// client that pages with the last seq it saw never skips a message.
func (s *Service) Sync(ctx context.Context, session *logicrpc.Session,
	req *protocol.SyncReq) (*protocol.SyncResp, error) {
	if session == nil || session.UserId == 0 {
		return nil, s.fail("sync", ErrUnauthenticated, nil)
	}
	if req == nil {
		return nil, s.fail("sync", fmt.Errorf("%w: empty request", ErrBadRequest), nil)
	}
	logIDs := func(e *zerolog.Event) *zerolog.Event {
		return e.Int64("user", session.UserId).Str("conv", req.ConvId)
	}
	if _, err := peerOf(req.ConvId, session.UserId); err != nil {
		return nil, s.fail("sync", err, logIDs)
	}
	limit := syncLimit(req.Limit)
	// One extra row tells whether another page follows.
	rows, err := s.listMessages(ctx, req.ConvId, max(req.AfterSeq, 0), limit+1)
	if err != nil {
		return nil, s.fail("sync", err, logIDs)
	}
	resp := &protocol.SyncResp{HasMore: len(rows) > limit}
	rows = rows[:min(len(rows), limit)]
	resp.Messages = make([]*common.Message, len(rows))
	for i := range rows {
		resp.Messages[i] = rows[i].toThrift()
	}
	return resp, nil
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
