package registry

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Memory is an in-process Registry for the single-process mode, where the
// gateway and task share one value.
type Memory struct {
	retention time.Duration
	now       func() time.Time

	mu      sync.Mutex
	expires map[string]time.Time // by address; past for a vanished one
}

// NewMemory returns an empty registry keeping vanished addresses for
// retention (DefaultRetention when zero).
func NewMemory(retention time.Duration) *Memory {
	if retention <= 0 {
		retention = DefaultRetention
	}
	return &Memory{retention: retention, now: time.Now, expires: make(map[string]time.Time)}
}

// Register implements Registry.
func (m *Memory) Register(_ context.Context, addr string, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("%w: register %s with ttl %v", ErrBadTTL, addr, ttl)
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expires[addr] = now.Add(ttl)
	m.trimLocked(now)
	return nil
}

// Deregister implements Registry.
func (m *Memory) Deregister(_ context.Context, addr string) error {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if exp, ok := m.expires[addr]; ok && exp.After(now) {
		m.expires[addr] = now
	}
	return nil
}

// Snapshot implements Registry.
func (m *Memory) Snapshot(context.Context) (Snapshot, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	var s Snapshot
	for addr, exp := range m.expires {
		s.classify(addr, exp, now, m.retention)
	}
	return s, nil
}

// trimLocked forgets the addresses gone for longer than retention. A
// registration is the only write that repeats, so it does the trimming.
func (m *Memory) trimLocked(now time.Time) {
	for addr, exp := range m.expires {
		if now.Sub(exp) > m.retention {
			delete(m.expires, addr)
		}
	}
}
