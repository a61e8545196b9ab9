package logic

import (
	"context"
	"fmt"
	"strconv"

	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// GetPresence says, for each user id asked (at most MaxPresenceIDs,
// duplicates and non-positive ids dropped), whether the user has at least
// one live route. since_ms is 0: the route store keeps no change times.
func (s *Service) GetPresence(ctx context.Context, session *logicrpc.Session,
	req *protocol.GetPresenceReq) (*protocol.GetPresenceResp, error) {
	if !authenticated(session) {
		return nil, s.fail("get_presence", ErrUnauthenticated, nil)
	}
	ids, err := s.presenceIDs(session, req.GetUserIds())
	var resp *protocol.GetPresenceResp
	if err == nil {
		resp, err = s.presenceOf(ctx, ids)
	}
	if err != nil {
		return nil, s.fail("get_presence", err, sessionIDs(session))
	}
	return resp, nil
}

// WatchPresence replaces the set of users whose presence changes are sent to
// every device of the session's user (NOTIFY with presence), and returns
// their presence now. An empty list stops watching. The set lapses a day
// after it was last set (route.DefaultWatchTTL): clients send it again after
// every login.
func (s *Service) WatchPresence(ctx context.Context, session *logicrpc.Session,
	req *protocol.WatchPresenceReq) (*protocol.GetPresenceResp, error) {
	if !authenticated(session) {
		return nil, s.fail("watch_presence", ErrUnauthenticated, nil)
	}
	ids, err := s.presenceIDs(session, req.GetUserIds())
	if err == nil {
		err = s.eph.watches.SetWatched(ctx, session.UserId, ids)
		if err != nil {
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	var resp *protocol.GetPresenceResp
	if err == nil {
		resp, err = s.presenceOf(ctx, ids)
	}
	if err != nil {
		return nil, s.fail("watch_presence", err, sessionIDs(session))
	}
	return resp, nil
}

// presenceIDs takes one request from the user's presence budget and returns
// ids without duplicates and non-positive ids, in first-seen order.
func (s *Service) presenceIDs(session *logicrpc.Session, ids []int64) ([]int64, error) {
	if len(ids) > MaxPresenceIDs {
		return nil, fmt.Errorf("%w: more than %d user ids", ErrBadRequest, MaxPresenceIDs)
	}
	if !s.eph.presence.Allow(strconv.FormatInt(session.UserId, 10)) {
		return nil, fmt.Errorf("%w: presence requests", ErrRateLimited)
	}
	seen := make(map[int64]struct{}, len(ids))
	out := make([]int64, 0, len(ids))
	for _, id := range ids {
		if _, dup := seen[id]; dup || id <= 0 {
			continue
		}
		seen[id] = struct{}{}
		out = append(out, id)
	}
	return out, nil
}

// presenceOf looks up the routes of ids in one batch.
func (s *Service) presenceOf(ctx context.Context, ids []int64) (*protocol.GetPresenceResp, error) {
	resp := &protocol.GetPresenceResp{Presences: make([]*protocol.Presence, len(ids))}
	if len(ids) == 0 {
		return resp, nil
	}
	routes, err := s.deps.Routes.Lookup(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("%w: route lookup of %d users: %w", ErrUnavailable, len(ids), err)
	}
	online := make(map[int64]bool, len(routes))
	for _, r := range routes {
		online[r.UserID] = true
	}
	for i, id := range ids {
		resp.Presences[i] = &protocol.Presence{UserId: id, Online: online[id]}
	}
	return resp, nil
}
