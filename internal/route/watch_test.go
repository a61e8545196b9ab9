package route

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resonance-im/resonance/internal/redistest"
)

// forEachWatches runs fn on every store: Memory, and Redis on each backend
// of redistest. Each store reads time from the clock fn gets.
func forEachWatches(t *testing.T, ttl time.Duration, fn func(t *testing.T, w Watches, c *clock)) {
	t.Helper()
	forEachBackend(t, fn,
		func(c *clock) Watches {
			m := NewMemoryWatches(ttl)
			m.now = c.now
			return m
		},
		func(t *testing.T, b redistest.Backend, c *clock) Watches {
			rdb := b.Open(t)
			r := NewRedisWatches(rdb, redistest.KeyPrefix(t, rdb), ttl)
			r.now = c.now
			return r
		})
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
	forEachWatches(t, time.Minute, func(t *testing.T, w Watches, c *clock) {
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

func TestWatches_UnwatchTakesOneUserOut(t *testing.T) {
	forEachWatches(t, time.Minute, func(t *testing.T, w Watches, c *clock) {
		setWatched(t, w, 1, 10, 11)
		setWatched(t, w, 2, 10)
		if err := w.Unwatch(context.Background(), 1, 10); err != nil {
			t.Fatal(err)
		}
		if got := watchersOf(t, w, 10); !slices.Equal(got, []int64{2}) {
			t.Fatalf("watchers of 10 after 1 unwatched it = %v, want [2]", got)
		}
		if got := watchersOf(t, w, 11); !slices.Equal(got, []int64{1}) {
			t.Fatalf("watchers of 11 = %v, want [1]: the rest of the set stays", got)
		}

		// Setting the set again later drops 10 from the old members cleanly,
		// and an unwatch of a user not watched changes nothing.
		if err := w.Unwatch(context.Background(), 3, 10); err != nil {
			t.Fatal(err)
		}
		setWatched(t, w, 1, 12)
		for user, want := range map[int64][]int64{10: {2}, 11: nil, 12: {1}} {
			if got := watchersOf(t, w, user); !slices.Equal(got, want) {
				t.Fatalf("watchers of %d after reset = %v, want %v", user, got, want)
			}
		}
	})
}

// swapAnnounced swaps states into w and returns the users changed, sorted,
// and the since of each.
func swapAnnounced(t *testing.T, w Watches, states map[int64]Presence) ([]int64,
	map[int64]int64) {
	t.Helper()
	changed, err := w.SwapAnnounced(context.Background(), states)
	if err != nil {
		t.Fatal(err)
	}
	users := slices.Sorted(maps.Keys(changed))
	return users, changed
}

func TestWatches_SwapAnnounced(t *testing.T) {
	forEachWatches(t, time.Minute, func(t *testing.T, w Watches, _ *clock) {
		on, off := Presence{Online: true, SinceMs: 1000}, Presence{SinceMs: 1000}
		if got, _ := swapAnnounced(t, w, map[int64]Presence{1: on, 2: off}); !slices.Equal(got,
			[]int64{1, 2}) {
			t.Fatalf("first swap changed %v, want [1 2] (nothing recorded)", got)
		}
		if got, _ := swapAnnounced(t, w, map[int64]Presence{1: on, 2: on}); !slices.Equal(got,
			[]int64{2}) {
			t.Fatalf("second swap changed %v, want [2]", got)
		}
		if got, _ := swapAnnounced(t, w, map[int64]Presence{1: on, 2: on}); len(got) != 0 {
			t.Fatalf("repeat swap changed %v, want none", got)
		}
		// Every presence record expires with the watches it serves.
		if rw, ok := w.(*RedisWatches); ok {
			for _, u := range []string{"1", "2"} {
				ttl, err := rw.rdb.PTTL(context.Background(), rw.prefix+"presence:"+u).Result()
				if err != nil || ttl <= 0 || ttl > time.Minute {
					t.Fatalf("presence:%s ttl = %v, %v; want (0, 1m]", u, ttl, err)
				}
			}
		}
	})
}

// A change is announced no earlier than the state it replaces began, and a
// swap that changes nothing keeps the time of the state announced.
func TestWatches_SwapAnnouncedSinceNeverGoesBack(t *testing.T) {
	forEachWatches(t, time.Minute, func(t *testing.T, w Watches, _ *clock) {
		steps := []struct {
			state Presence
			since int64 // announced; 0: no change
		}{
			{state: Presence{Online: true, SinceMs: 2000}, since: 2000},
			{state: Presence{SinceMs: 1000}, since: 2000}, // stamped before the login
			{state: Presence{SinceMs: 5000}},              // no change: 2000 kept
			{state: Presence{Online: true, SinceMs: 3000}, since: 3000},
			{state: Presence{SinceMs: 1_800_000_000_123}, since: 1_800_000_000_123},
			{state: Presence{Online: true, SinceMs: 4000}, since: 1_800_000_000_123},
		}
		for i, st := range steps {
			_, changed := swapAnnounced(t, w, map[int64]Presence{7: st.state})
			if got, ok := changed[7]; got != st.since || ok != (st.since != 0) {
				t.Fatalf("step %d, %+v: announced since %d (changed %v), want %d", i,
					st.state, got, ok, st.since)
			}
		}
	})
}

// A Redis that lost the swap script (restarted, flushed) still announces
// each change once.
func TestRedisWatches_SwapWithUnloadedScript(t *testing.T) {
	forEachWatches(t, time.Minute, func(t *testing.T, w Watches, _ *clock) {
		if _, ok := w.(*RedisWatches); !ok {
			t.Skip("Redis only")
		}
		// A unique body has a SHA the server never saw; SCRIPT FLUSH would
		// hit every user of this Redis.
		b := make([]byte, 8)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		saved := swapScript
		swapScript = redis.NewScript("-- " + hex.EncodeToString(b) + swapLua)
		defer func() { swapScript = saved }()
		states := map[int64]Presence{}
		for u := int64(1); u <= 20; u++ {
			states[u] = Presence{Online: true, SinceMs: 1000 + u}
		}
		_, changed := swapAnnounced(t, w, states)
		if len(changed) != len(states) || changed[20] != 1020 {
			t.Fatalf("changed %v, want all 20 users with their since", changed)
		}
		if got, _ := swapAnnounced(t, w, states); len(got) != 0 {
			t.Fatalf("repeat swap changed %v, want none", got)
		}
	})
}

// TestWatches_ManyWatched replaces a watch set large enough to spread its
// users' keys over every master of a cluster.
func TestWatches_ManyWatched(t *testing.T) {
	forEachWatches(t, time.Minute, func(t *testing.T, w Watches, _ *clock) {
		span := func(from, to int64) []int64 {
			var ids []int64
			for u := from; u < to; u++ {
				ids = append(ids, u)
			}
			return ids
		}
		setWatched(t, w, 1, span(100, 140)...)
		setWatched(t, w, 2, span(130, 150)...)
		setWatched(t, w, 1, span(120, 160)...)
		for u := int64(100); u < 160; u++ {
			var want []int64
			if u >= 120 {
				want = append(want, 1)
			}
			if u >= 130 && u < 150 {
				want = append(want, 2)
			}
			if got := watchersOf(t, w, u); !slices.Equal(got, want) {
				t.Fatalf("watchers of %d = %v, want %v", u, got, want)
			}
		}
	})
}

// TestRedisWatches_WatchingSet checks the watcher's own set, which is how
// the next SetWatched finds the entries to remove.
func TestRedisWatches_WatchingSet(t *testing.T) {
	for _, b := range redistest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			rdb := b.Open(t)
			w := NewRedisWatches(rdb, redistest.KeyPrefix(t, rdb), time.Minute)
			ctx := context.Background()
			key := w.prefix + "watching:1"
			members := func() []string {
				t.Helper()
				got, err := rdb.SMembers(ctx, key).Result()
				if err != nil {
					t.Fatal(err)
				}
				slices.Sort(got)
				return got
			}
			setWatched(t, w, 1, 10, 11)
			setWatched(t, w, 1, 11, 12)
			if got := members(); !slices.Equal(got, []string{"11", "12"}) {
				t.Fatalf("%s = %v, want [11 12]", key, got)
			}
			if ttl, err := rdb.PTTL(ctx, key).Result(); err != nil || ttl <= 0 ||
				ttl > time.Minute {
				t.Fatalf("%s ttl = %v, %v; want (0, 1m]", key, ttl, err)
			}
			setWatched(t, w, 1)
			if got := members(); len(got) != 0 {
				t.Fatalf("%s after clear = %v, want gone", key, got)
			}
		})
	}
}

// A swap that fails for some users (here a record of the wrong type) still
// returns the users whose records it did swap: they are recorded as
// announced, so unless their watchers are told now, they never will be.
func TestRedisWatches_PartialSwapReturnsSwapped(t *testing.T) {
	forEachWatches(t, time.Minute, func(t *testing.T, w Watches, _ *clock) {
		rw, ok := w.(*RedisWatches)
		if !ok {
			t.Skip("Redis only")
		}
		ctx := context.Background()
		if err := rw.rdb.HSet(ctx, rw.prefix+"presence:2", "x", "1").Err(); err != nil {
			t.Fatal(err)
		}
		states := map[int64]Presence{
			1: {Online: true, SinceMs: 1001},
			2: {Online: true, SinceMs: 1002},
			3: {Online: true, SinceMs: 1003},
		}
		changed, err := w.SwapAnnounced(ctx, states)
		if err == nil || !strings.Contains(err.Error(), "user 2") {
			t.Fatalf("swap with a broken record: err %v, want one naming user 2", err)
		}
		if len(changed) != 2 || changed[1] != 1001 || changed[3] != 1003 {
			t.Fatalf("changed %v with the error, want users 1 and 3 with their since", changed)
		}
	})
}
