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
// one live route. A user who blocked the asker reads offline. since_ms is 0:
// the route store keeps no change times.
func (s *Service) GetPresence(ctx context.Context, session *logicrpc.Session,
	req *protocol.GetPresenceReq) (*protocol.GetPresenceResp, error) {
	if err := s.authorizeRead(ctx, "get_presence", session); err != nil {
		return nil, err
	}
	if req == nil {
		req = &protocol.GetPresenceReq{} // a missing body reads as empty
	}
	ids, err := s.presenceIDs(session, req.GetUserIds())
	var resp *protocol.GetPresenceResp
	if err == nil {
		resp, err = s.presenceOf(ctx, session.UserId, ids)
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
// every login. Users who blocked the watcher are left out of the set (and
// read offline); a block made later takes the blocker out of the set at once.
func (s *Service) WatchPresence(ctx context.Context, session *logicrpc.Session,
	req *protocol.WatchPresenceReq) (*protocol.GetPresenceResp, error) {
	if err := s.authorizeWrite(ctx, "watch_presence", session); err != nil {
		return nil, err
	}
	if req == nil {
		req = &protocol.WatchPresenceReq{} // a missing body reads as empty
	}
	ids, err := s.presenceIDs(session, req.GetUserIds())
	var resp *protocol.GetPresenceResp
	if err == nil {
		resp, err = s.watchPresence(ctx, session.UserId, ids)
	}
	if err != nil {
		return nil, s.fail("watch_presence", err, sessionIDs(session))
	}
	return resp, nil
}

// presenceIDs takes one request from the user's presence budget and returns
// ids without duplicates and non-positive ids, in first-seen order. Over
// MaxPresenceIDs is TOO_LARGE, as every list over its limit is.
func (s *Service) presenceIDs(session *logicrpc.Session, ids []int64) ([]int64, error) {
	if len(ids) > MaxPresenceIDs {
		return nil, fmt.Errorf("%w: more than %d user ids", ErrTooLarge, MaxPresenceIDs)
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

// watchPresence stores ids, less those who blocked watcher, as watcher's
// watch set and returns their presence.
func (s *Service) watchPresence(ctx context.Context, watcher int64,
	ids []int64) (*protocol.GetPresenceResp, error) {
	hidden, err := s.blockedBy(ctx, watcher, ids)
	if err != nil {
		return nil, err
	}
	watched := make([]int64, 0, len(ids))
	for _, id := range ids {
		if !hidden[id] {
			watched = append(watched, id)
		}
	}
	if s.onWatchChecked != nil {
		s.onWatchChecked()
	}
	if err := s.eph.watches.SetWatched(ctx, watcher, watched); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	late, err := s.unwatchLateBlockers(ctx, watcher, watched)
	if err != nil {
		return nil, err
	}
	for b := range late {
		if hidden == nil {
			hidden = make(map[int64]bool, len(late))
		}
		hidden[b] = true
	}
	return s.lookupPresence(ctx, ids, hidden)
}

// unwatchLateBlockers checks watched, just saved as watcher's set, for
// blocks again and takes their blockers out of it; it returns them. A block
// stored after watchPresence's first check and unwatched before the save
// would otherwise stay in the set. Block stores before it unwatches, so
// either this check sees the block or the block's unwatch comes after the
// save.
func (s *Service) unwatchLateBlockers(ctx context.Context, watcher int64,
	watched []int64) (map[int64]bool, error) {
	late, err := s.blockedBy(ctx, watcher, watched)
	if err != nil {
		return nil, err
	}
	for b := range late {
		if err := s.eph.watches.Unwatch(ctx, watcher, b); err != nil {
			return nil, fmt.Errorf("%w: unwatch %d for %d, who blocked: %w", ErrUnavailable,
				b, watcher, err)
		}
	}
	return late, nil
}

// presenceOf returns the presence of ids as asker may see it: users who
// blocked asker read offline.
func (s *Service) presenceOf(ctx context.Context, asker int64,
	ids []int64) (*protocol.GetPresenceResp, error) {
	hidden, err := s.blockedBy(ctx, asker, ids)
	if err != nil {
		return nil, err
	}
	return s.lookupPresence(ctx, ids, hidden)
}

// lookupPresence reads the routes of ids in one batch; hidden users read
// offline.
func (s *Service) lookupPresence(ctx context.Context, ids []int64,
	hidden map[int64]bool) (*protocol.GetPresenceResp, error) {
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
		online[r.UserID] = !hidden[r.UserID]
	}
	for i, id := range ids {
		resp.Presences[i] = &protocol.Presence{UserId: id, Online: online[id]}
	}
	return resp, nil
}

// blockedBy returns which of ids blocked user, in one query, on the read
// pool: a block committed before the query began is seen (Block commits
// before it unwatches; see unwatchLateBlockers), and on SQLite the query
// does not wait behind the writer's commits.
func (s *Service) blockedBy(ctx context.Context, user int64, ids []int64) (map[int64]bool, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var blockers []int64
	err := s.rdc(ctx).Model(&blockRow{}).Where("blocked_id = ? AND blocker_id IN ?", user, ids).
		Pluck("blocker_id", &blockers).Error
	if err != nil {
		return nil, fmt.Errorf("%w: blockers of user %d among %d: %w", ErrUnavailable, user,
			len(ids), err)
	}
	out := make(map[int64]bool, len(blockers))
	for _, b := range blockers {
		out[b] = true
	}
	return out, nil
}
