package route

import (
	"context"
	"sync"
	"time"
)

const memoryShards = 64

// Memory is an in-process Table for the single-process mode. It is sharded by
// user id so that logins on many connections do not contend on one lock.
type Memory struct {
	ttl    time.Duration
	now    func() time.Time
	shards [memoryShards]memoryShard
}

type memoryShard struct {
	mu    sync.Mutex
	users map[int64]map[string]memoryEntry // user -> device -> entry
}

type memoryEntry struct {
	route   Route
	expires time.Time
}

// NewMemory returns an empty table whose routes expire after ttl without
// renewal (DefaultTTL when zero).
func NewMemory(ttl time.Duration) *Memory {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	m := &Memory{ttl: ttl, now: time.Now}
	for i := range m.shards {
		m.shards[i].users = make(map[int64]map[string]memoryEntry)
	}
	return m
}

func (m *Memory) shard(userID int64) *memoryShard {
	return &m.shards[uint64(userID)%memoryShards]
}

// Put implements Table.
func (m *Memory) Put(_ context.Context, r Route) (*Route, error) {
	s := m.shard(r.UserID)
	now := m.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	devices := s.users[r.UserID]
	if devices == nil {
		devices = make(map[string]memoryEntry)
		s.users[r.UserID] = devices
	}
	var replaced *Route
	if old, ok := devices[r.DeviceID]; ok && old.expires.After(now) && !sameConn(old.route, r) {
		prev := old.route
		replaced = &prev
	}
	devices[r.DeviceID] = memoryEntry{route: r, expires: now.Add(m.ttl)}
	return replaced, nil
}

// Delete implements Table.
func (m *Memory) Delete(_ context.Context, r Route) error {
	s := m.shard(r.UserID)
	s.mu.Lock()
	defer s.mu.Unlock()
	devices := s.users[r.UserID]
	old, ok := devices[r.DeviceID]
	if !ok {
		return nil
	}
	if !sameConn(old.route, r) {
		return ErrNotOwner
	}
	delete(devices, r.DeviceID)
	if len(devices) == 0 {
		delete(s.users, r.UserID)
	}
	return nil
}

// Renew implements Table.
func (m *Memory) Renew(_ context.Context, rs []Route) error {
	expires := m.now().Add(m.ttl)
	for _, r := range rs {
		s := m.shard(r.UserID)
		s.mu.Lock()
		switch old, ok := s.users[r.UserID][r.DeviceID]; {
		case ok && sameConn(old.route, r):
			s.users[r.UserID][r.DeviceID] = memoryEntry{route: old.route, expires: expires}
		case !ok:
			if s.users[r.UserID] == nil {
				s.users[r.UserID] = make(map[string]memoryEntry)
			}
			s.users[r.UserID][r.DeviceID] = memoryEntry{route: r, expires: expires}
		}
		s.mu.Unlock()
	}
	return nil
}

// Lookup implements Table. Expired routes are skipped and swept lazily.
func (m *Memory) Lookup(_ context.Context, userIDs []int64) ([]Route, error) {
	now := m.now()
	var out []Route
	for _, uid := range userIDs {
		s := m.shard(uid)
		s.mu.Lock()
		for dev, e := range s.users[uid] {
			if !e.expires.After(now) {
				delete(s.users[uid], dev)
				continue
			}
			out = append(out, e.route)
		}
		s.mu.Unlock()
	}
	return out, nil
}

func sameConn(a, b Route) bool {
	return a.Gateway == b.Gateway && a.ConnID == b.ConnID
}
