// Package ratelimit owns the in-memory, per-key token buckets that bound
// cheap-to-send but costly-to-serve requests (login attempts, user search).
// State lives in one process: behind several instances a client gets each
// instance's budget, which is the accepted price of needing no shared store.
package ratelimit

import (
	"hash/maphash"
	"sync"
	"time"
)

// shardCount spreads keys over locks so that concurrent callers rarely meet.
const shardCount = 16

// Config sets a limiter's budget. A zero field means its default.
type Config struct {
	// Burst is how many events a fresh key may have at once; default 10.
	Burst int
	// Per is how long one event takes to come back; default 1s. A key thus
	// sustains one event per Per after its burst.
	Per time.Duration
	// MaxKeys bounds the keys remembered; default 100000. Past it, keys whose
	// bucket is full again are forgotten first (they are indistinguishable
	// from new keys), then arbitrary ones, so memory stays bounded even when
	// an attacker varies the key.
	MaxKeys int
}

func (c Config) withDefaults() Config {
	if c.Burst <= 0 {
		c.Burst = 10
	}
	if c.Per <= 0 {
		c.Per = time.Second
	}
	if c.MaxKeys <= 0 {
		c.MaxKeys = 100000
	}
	return c
}

// Limiter is a set of token buckets, one per key. It is safe for concurrent
// use.
type Limiter struct {
	cfg    Config
	seed   maphash.Seed
	now    func() time.Time
	shards [shardCount]shard
}

type shard struct {
	// mu guards buckets.
	mu      sync.Mutex
	buckets map[string]*bucket
}

// bucket holds tokens as of last; refills are computed lazily on use.
type bucket struct {
	tokens float64
	last   time.Time
}

// New returns a Limiter with cfg's budget.
func New(cfg Config) *Limiter {
	l := &Limiter{cfg: cfg.withDefaults(), seed: maphash.MakeSeed(), now: time.Now}
	for i := range l.shards {
		l.shards[i].buckets = make(map[string]*bucket)
	}
	return l
}

// Allow takes one event from key's bucket and reports whether there was one.
func (l *Limiter) Allow(key string) bool {
	return l.take(key, true)
}

// Check reports whether key has an event left without taking it.
func (l *Limiter) Check(key string) bool {
	return l.take(key, false)
}

func (l *Limiter) take(key string, consume bool) bool {
	sh := &l.shards[maphash.String(l.seed, key)%shardCount]
	now := l.now()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	b := sh.buckets[key]
	if b == nil {
		if !consume {
			return true
		}
		sh.makeRoom(l, now)
		b = &bucket{tokens: float64(l.cfg.Burst), last: now}
		sh.buckets[key] = b
	}
	l.refill(b, now)
	if b.tokens < 1 {
		return false
	}
	if consume {
		b.tokens--
	}
	return true
}

// refill adds the tokens earned since b.last, up to the burst.
func (l *Limiter) refill(b *bucket, now time.Time) {
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = min(float64(l.cfg.Burst), b.tokens+float64(elapsed)/float64(l.cfg.Per))
		b.last = now
	}
}

// makeRoom keeps the shard under its share of MaxKeys. Called with mu held.
func (sh *shard) makeRoom(l *Limiter, now time.Time) {
	limit := max(1, l.cfg.MaxKeys/shardCount)
	if len(sh.buckets) < limit {
		return
	}
	for k, b := range sh.buckets {
		l.refill(b, now)
		if b.tokens >= float64(l.cfg.Burst) {
			delete(sh.buckets, k)
		}
	}
	// Every key is still throttled: forget one at random rather than grow.
	for k := range sh.buckets {
		if len(sh.buckets) < limit {
			break
		}
		delete(sh.buckets, k)
	}
}

// Len returns how many keys are remembered, for tests and metrics.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.buckets)
		sh.mu.Unlock()
	}
	return n
}
