package route

import (
	"context"
	"slices"
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
	// Unwatch takes watched out of watcher's set, if there, and watcher out
	// of watched's watchers, leaving the rest of the set and its expiry as
	// they were. A block calls it: the blocked user must stop hearing the
	// blocker's presence before sending its set again.
	Unwatch(ctx context.Context, watcher, watched int64) error
	// Watchers returns the users whose live watch set holds user, in no
	// order.
	Watchers(ctx context.Context, user int64) ([]int64, error)
	// SwapAnnounced records, for each user of states, the presence last
	// announced to its watchers, and returns the users whose record was
	// different or absent (those whose watchers must be told), each with
	// the since_ms to tell: its state's, or the record's when that is
	// later, for a state cannot have begun before the one it replaced. A
	// record that says the same keeps its since. Records lapse after the
	// watch TTL. Sharing the record lets several task instances announce
	// each change once, whichever of them saw the events, with times that
	// never go back. With an error, changed still holds the users whose
	// records were swapped: their watchers must be told all the same.
	SwapAnnounced(ctx context.Context, states map[int64]Presence) (changed map[int64]int64,
		err error)
}

// Presence is a user's presence as found by a check, to be announced.
type Presence struct {
	Online bool
	// SinceMs is when it began, in unix ms; positive.
	SinceMs int64
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
	announced map[int64]announcedState
	nextSweep time.Time
}

type announcedState struct {
	Presence
	expires time.Time
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
		ttl:       ttl,
		now:       time.Now,
		watching:  make(map[int64]watchSet),
		watchers:  make(map[int64]map[int64]struct{}),
		announced: make(map[int64]announcedState),
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

// Unwatch implements Watches.
func (m *MemoryWatches) Unwatch(_ context.Context, watcher, watched int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if set, ok := m.watching[watcher]; ok {
		set.users = slices.DeleteFunc(set.users, func(u int64) bool { return u == watched })
		m.watching[watcher] = set
	}
	delete(m.watchers[watched], watcher)
	if len(m.watchers[watched]) == 0 {
		delete(m.watchers, watched)
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
	for u, a := range m.announced {
		if !a.expires.After(now) {
			delete(m.announced, u)
		}
	}
}

// SwapAnnounced implements Watches.
func (m *MemoryWatches) SwapAnnounced(_ context.Context,
	states map[int64]Presence) (map[int64]int64, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(now)
	changed := make(map[int64]int64)
	for u, st := range states {
		old, ok := m.announced[u]
		if ok && !old.expires.After(now) {
			old, ok = announcedState{}, false
		}
		if ok && old.Online == st.Online {
			st = old.Presence
		} else {
			st.SinceMs = max(st.SinceMs, old.SinceMs)
			changed[u] = st.SinceMs
		}
		m.announced[u] = announcedState{Presence: st, expires: now.Add(m.ttl)}
	}
	return changed, nil
}
