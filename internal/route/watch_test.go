package route

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// watchStores returns the Watches to run a case on: Memory always, Redis
// when RESONANCE_TEST_REDIS_ADDR is set (unique prefix, keys removed
// afterwards). Both read time from c.
func watchStores(t *testing.T, ttl time.Duration, c *clock) map[string]Watches {
	t.Helper()
	m := NewMemoryWatches(ttl)
	m.now = c.now
	out := map[string]Watches{"memory": m}
	addr := os.Getenv("RESONANCE_TEST_REDIS_ADDR")
	if addr == "" {
		return out
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	prefix := "resonance-test-" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() { deleteKeys(t, rdb, prefix) })
	r := NewRedisWatches(rdb, prefix, ttl)
	r.now = c.now
	out["redis"] = r
	return out
}

func watchersOf(t *testing.T, w Watches, user int64) []int64 {
	t.Helper()
	ids, err := w.Watchers(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	return ids
}

func setWatched(t *testing.T, w Watches, watcher int64, watched ...int64) {
	t.Helper()
	if err := w.SetWatched(context.Background(), watcher, watched); err != nil {
		t.Fatal(err)
	}
}

func TestWatches_ReplaceClearAndExpire(t *testing.T) {
	c := &clock{t: time.Now()}
	for name, w := range watchStores(t, time.Minute, c) {
		t.Run(name, func(t *testing.T) {
			c.t = time.Now()
			setWatched(t, w, 1, 10, 11)
			setWatched(t, w, 2, 11)
			if got := watchersOf(t, w, 11); !slices.Equal(got, []int64{1, 2}) {
				t.Fatalf("watchers of 11 = %v, want [1 2]", got)
			}

			// A new set replaces the old one: 1 stops watching 10.
			setWatched(t, w, 1, 11, 12)
			if got := watchersOf(t, w, 10); len(got) != 0 {
				t.Fatalf("watchers of 10 after replace = %v, want none", got)
			}
			if got := watchersOf(t, w, 12); !slices.Equal(got, []int64{1}) {
				t.Fatalf("watchers of 12 = %v, want [1]", got)
			}

			// An empty set clears.
			setWatched(t, w, 2)
			if got := watchersOf(t, w, 11); !slices.Equal(got, []int64{1}) {
				t.Fatalf("watchers of 11 after clear = %v, want [1]", got)
			}

			// A set not set again lapses after the TTL; a renewed one stays.
			c.t = c.t.Add(40 * time.Second)
			setWatched(t, w, 3, 12)
			c.t = c.t.Add(30 * time.Second)
			if got := watchersOf(t, w, 12); !slices.Equal(got, []int64{3}) {
				t.Fatalf("watchers of 12 after 70s = %v, want [3]", got)
			}
		})
	}
}

func TestWatches_SwapAnnounced(t *testing.T) {
	c := &clock{t: time.Now()}
	for name, w := range watchStores(t, time.Minute, c) {
		t.Run(name, func(t *testing.T) {
			c.t = time.Now()
			swap := func(online map[int64]bool) []int64 {
				t.Helper()
				changed, err := w.SwapAnnounced(context.Background(), online)
				if err != nil {
					t.Fatal(err)
				}
				slices.Sort(changed)
				return changed
			}
			if got := swap(map[int64]bool{1: true, 2: false}); !slices.Equal(got, []int64{1, 2}) {
				t.Fatalf("first swap changed %v, want [1 2] (nothing recorded)", got)
			}
			if got := swap(map[int64]bool{1: true, 2: true}); !slices.Equal(got, []int64{2}) {
				t.Fatalf("second swap changed %v, want [2]", got)
			}
			if got := swap(map[int64]bool{1: true, 2: true}); len(got) != 0 {
				t.Fatalf("repeat swap changed %v, want none", got)
			}
		})
	}
}
