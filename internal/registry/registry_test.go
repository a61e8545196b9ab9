package registry

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resonance-im/resonance/internal/redistest"
)

// clock is a settable time source shared by a registry under test.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

const testRetention = time.Minute

// forEachStore runs fn on every registry: Memory, and Redis on each backend
// of redistest (a standalone Redis at RESONANCE_TEST_REDIS_ADDR, the test
// binary's Redis Cluster). Each reads time from the clock fn gets.
func forEachStore(t *testing.T, fn func(t *testing.T, reg Registry, c *clock)) {
	t.Helper()
	c := &clock{}
	t.Run("memory", func(t *testing.T) {
		c.t = time.Now().Truncate(time.Millisecond)
		m := NewMemory(testRetention)
		m.now = c.now
		fn(t, m, c)
	})
	for _, b := range redistest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			c.t = time.Now().Truncate(time.Millisecond)
			rdb := b.Open(t)
			r := NewRedis(rdb, redistest.KeyPrefix(t, rdb), testRetention)
			r.now = c.now
			fn(t, r, c)
		})
	}
}

func snapshot(t *testing.T, reg Registry) Snapshot {
	t.Helper()
	s, err := reg.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func register(t *testing.T, reg Registry, addr string, ttl time.Duration) {
	t.Helper()
	if err := reg.Register(context.Background(), addr, ttl); err != nil {
		t.Fatal(err)
	}
}

func deregister(t *testing.T, reg Registry, addr string) {
	t.Helper()
	if err := reg.Deregister(context.Background(), addr); err != nil {
		t.Fatal(err)
	}
}

// wantStates checks the state of each address in a fresh snapshot.
func wantStates(t *testing.T, reg Registry, want map[string]State) {
	t.Helper()
	s := snapshot(t, reg)
	for addr, st := range want {
		if got := s.State(addr); got != st {
			t.Errorf("%s is %v, want %v", addr, got, st)
		}
	}
}

func TestRegistry_Lifecycle(t *testing.T) {
	forEachStore(t, func(t *testing.T, reg Registry, c *clock) {
		register(t, reg, "10.0.0.1:7200", 15*time.Second)
		register(t, reg, "10.0.0.2:7200", 5*time.Second)
		wantStates(t, reg, map[string]State{
			"10.0.0.1:7200": Live, "10.0.0.2:7200": Live, "10.0.0.3:7200": Unknown,
		})
		if exp := snapshot(t, reg).Live["10.0.0.1:7200"]; !exp.Equal(c.t.Add(15 * time.Second)) {
			t.Errorf("expiry %v, want %v", exp, c.t.Add(15*time.Second))
		}

		c.t = c.t.Add(6 * time.Second) // .2 expires unrenewed
		deregister(t, reg, "10.0.0.1:7200")
		deregister(t, reg, "10.0.0.3:7200") // never registered: stays unknown
		wantStates(t, reg, map[string]State{
			"10.0.0.1:7200": Vanished, "10.0.0.2:7200": Vanished, "10.0.0.3:7200": Unknown,
		})
		if gone := snapshot(t, reg).Gone["10.0.0.2:7200"]; !gone.Equal(c.t.Add(-time.Second)) {
			t.Errorf("expired at %v, want its expiry %v", gone, c.t.Add(-time.Second))
		}

		register(t, reg, "10.0.0.1:7200", 15*time.Second) // a restart on the same address
		wantStates(t, reg, map[string]State{"10.0.0.1:7200": Live})
	})
}

func TestRegistry_TrimsPastRetention(t *testing.T) {
	forEachStore(t, func(t *testing.T, reg Registry, c *clock) {
		register(t, reg, "10.0.0.1:7200", time.Second)
		register(t, reg, "10.0.0.2:7200", time.Second)
		deregister(t, reg, "10.0.0.2:7200")
		c.t = c.t.Add(testRetention + 2*time.Second)
		// Past retention a snapshot no longer reports them, trimmed or not.
		wantStates(t, reg, map[string]State{
			"10.0.0.1:7200": Unknown, "10.0.0.2:7200": Unknown,
		})
		register(t, reg, "10.0.0.9:7200", time.Second) // trims
		if n := len(snapshot(t, reg).Live); n != 1 {
			t.Errorf("%d live, want 1", n)
		}
		assertTrimmed(t, reg, "10.0.0.1:7200", "10.0.0.2:7200")
	})
}

// assertTrimmed checks that the stores no longer hold addrs at all.
func assertTrimmed(t *testing.T, reg Registry, addrs ...string) {
	t.Helper()
	for _, addr := range addrs {
		switch r := reg.(type) {
		case *Memory:
			r.mu.Lock()
			_, held := r.expires[addr]
			r.mu.Unlock()
			if held {
				t.Errorf("%s not trimmed", addr)
			}
		case *Redis:
			err := r.rdb.ZScore(context.Background(), r.key, addr).Err()
			if !errors.Is(err, redis.Nil) {
				t.Errorf("%s not trimmed: %v", addr, err)
			}
		}
	}
}

func TestRegistry_DeregisterKeepsEarlierExpiry(t *testing.T) {
	forEachStore(t, func(t *testing.T, reg Registry, c *clock) {
		register(t, reg, "10.0.0.1:7200", time.Second)
		c.t = c.t.Add(10 * time.Second)
		deregister(t, reg, "10.0.0.1:7200")
		gone := snapshot(t, reg).Gone["10.0.0.1:7200"]
		if want := c.t.Add(-9 * time.Second); !gone.Equal(want) {
			t.Errorf("gone at %v, want the expiry %v", gone, want)
		}
	})
}

func TestRegistry_RejectsBadTTL(t *testing.T) {
	forEachStore(t, func(t *testing.T, reg Registry, _ *clock) {
		for _, ttl := range []time.Duration{0, -time.Second} {
			err := reg.Register(context.Background(), "10.0.0.1:7200", ttl)
			if !errors.Is(err, ErrBadTTL) {
				t.Errorf("ttl %v: err %v, want ErrBadTTL", ttl, err)
			}
		}
		wantStates(t, reg, map[string]State{"10.0.0.1:7200": Unknown})
	})
}
