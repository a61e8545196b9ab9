package route

import (
	"context"
	"sync"
	"time"
)

// DefaultWatchTTL is how long a watch set lives after it was last set, when
// a store is built with a zero TTL. Clients set it again after every login,
// so only the watches of users who went away lapse.
const DefaultWatchTTL = 24 * time.Hour

// Watches stores who watches whose presence: for each watcher the set of
// users it watches, and the reverse, which task reads when a user's presence
// changes. All methods are safe for concurrent use.
type Watches interface {
	// SetWatched replaces the set of users watcher watches by watched (empty
	// clears it). The caller bounds and deduplicates watched.
	SetWatched(ctx context.Context, watcher int64, watched []int64) error
	// Watchers returns the users whose live watch set holds user, in no
	// order.
	Watchers(ctx context.Context, user int64) ([]int64, error)
}

// MemoryWatches is an in-process Watches for the single-process mode. One
// lock guards it: a watch set changes once per login, far below the rate
// that would make the lock contended.
type MemoryWatches struct {
	ttl time.Duration
	now func() time.Time

	// mu guards the fields below.
	mu        sync.Mutex
	watching  map[int64]watchSet           // watcher -> whom it watches
	watchers  map[int64]map[int64]struct{} // watched -> who watches it
	nextSweep time.Time
}

type watchSet struct {
	users   []int64
	expires time.Time
}

// NewMemoryWatches returns an empty store whose watch sets lapse ttl after
// they were last set (DefaultWatchTTL when zero).
func NewMemoryWatches(ttl time.Duration) *MemoryWatches {
	if ttl <= 0 {
		ttl = DefaultWatchTTL
	}
	return &MemoryWatches{
		ttl:      ttl,
		now:      time.Now,
		watching: make(map[int64]watchSet),
		watchers: make(map[int64]map[int64]struct{}),
	}
}

// SetWatched implements Watches.
func (m *MemoryWatches) SetWatched(_ context.Context, watcher int64, watched []int64) error {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(now)
	m.unlink(watcher)
	if len(watched) == 0 {
		return nil
	}
	m.watching[watcher] = watchSet{users: append([]int64(nil), watched...), expires: now.Add(m.ttl)}
	for _, u := range watched {
		set := m.watchers[u]
		if set == nil {
			set = make(map[int64]struct{})
			m.watchers[u] = set
		}
		set[watcher] = struct{}{}
	}
	return nil
}

// Watchers implements Watches. Lapsed watch sets are skipped here and
// removed by the next sweep.
func (m *MemoryWatches) Watchers(_ context.Context, user int64) ([]int64, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int64
	for w := range m.watchers[user] {
		if m.watching[w].expires.After(now) {
			out = append(out, w)
		}
	}
	return out, nil
}

// unlink removes watcher's set and its reverse entries. Called with mu held.
func (m *MemoryWatches) unlink(watcher int64) {
	for _, u := range m.watching[watcher].users {
		delete(m.watchers[u], watcher)
		if len(m.watchers[u]) == 0 {
			delete(m.watchers, u)
		}
	}
	delete(m.watching, watcher)
}

// sweep unlinks lapsed watch sets, at most once per quarter TTL, so that
// memory held by users who never came back is bounded by the TTL. Called
// with mu held.
func (m *MemoryWatches) sweep(now time.Time) {
	if now.Before(m.nextSweep) {
		return
	}
	m.nextSweep = now.Add(m.ttl / 4)
	for w, set := range m.watching {
		if !set.expires.After(now) {
			m.unlink(w)
		}
	}
}
