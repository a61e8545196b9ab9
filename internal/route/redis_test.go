package route

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resonance-im/resonance/internal/redistest"
)

// clock is a settable time source shared by a table under test.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// forEachTable runs fn on every store: Memory, and Redis on each backend of
// redistest (a standalone Redis at RESONANCE_TEST_REDIS_ADDR, the test
// binary's Redis Cluster). Each store reads time from the clock fn gets.
func forEachTable(t *testing.T, ttl time.Duration, fn func(t *testing.T, tab Table, c *clock)) {
	t.Helper()
	forEachBackend(t, fn,
		func(c *clock) Table {
			m := NewMemory(ttl)
			m.now = c.now
			return m
		},
		func(t *testing.T, b redistest.Backend, c *clock) Table { return openRedis(t, b, ttl, c) })
}

// forEachBackend runs fn on the in-process implementation that memory
// returns and on the one redis returns for each Redis deployment the tests
// reach, each on a clock of its own set to now.
func forEachBackend[T any](t *testing.T, fn func(t *testing.T, impl T, c *clock),
	memory func(c *clock) T, redis func(t *testing.T, b redistest.Backend, c *clock) T) {
	t.Helper()
	c := &clock{}
	t.Run("memory", func(t *testing.T) {
		c.t = time.Now()
		fn(t, memory(c), c)
	})
	for _, b := range redistest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			c.t = time.Now()
			fn(t, redis(t, b, c), c)
		})
	}
}

// openRedis returns a table on backend b under a prefix of its own, whose
// keys are removed when t ends.
func openRedis(t *testing.T, b redistest.Backend, ttl time.Duration, c *clock) *Redis {
	t.Helper()
	rdb := b.Open(t)
	r := NewRedis(rdb, redistest.KeyPrefix(t, rdb), ttl)
	r.now = c.now
	return r
}

func lookup(t *testing.T, tab Table, users ...int64) []Route {
	t.Helper()
	rs, err := tab.Lookup(context.Background(), users)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(rs, func(a, b Route) int {
		if a.UserID != b.UserID {
			return int(a.UserID - b.UserID)
		}
		return int(a.ConnID - b.ConnID)
	})
	return rs
}

var (
	phone1 = Route{UserID: 1, DeviceID: "phone", Gateway: "10.0.0.1:7000", ConnID: 11}
	phone2 = Route{UserID: 1, DeviceID: "phone", Gateway: "10.0.0.2:7000", ConnID: 12}
	laptop = Route{UserID: 1, DeviceID: "laptop", Gateway: "10.0.0.1:7000", ConnID: 13}
	other  = Route{UserID: 2, DeviceID: "phone", Gateway: "10.0.0.2:7000", ConnID: 21}
)

func TestTable_PutReturnsReplaced(t *testing.T) {
	forEachTable(t, time.Minute, func(t *testing.T, tab Table, _ *clock) {
		ctx := context.Background()
		cases := []struct {
			name string
			put  Route
			want *Route
		}{
			{name: "first", put: phone1},
			{name: "same conn again", put: phone1},
			{name: "other device", put: laptop},
			{name: "moved gateway", put: phone2, want: &phone1},
			{name: "other user", put: other},
		}
		for _, tc := range cases {
			got, err := tab.Put(ctx, tc.put)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if (got == nil) != (tc.want == nil) || got != nil && *got != *tc.want {
				t.Fatalf("%s: replaced = %+v, want %+v", tc.name, got, tc.want)
			}
		}
		if rs := lookup(t, tab, 1, 2, 3); !slices.Equal(rs, []Route{phone2, laptop, other}) {
			t.Fatalf("lookup = %+v", rs)
		}
	})
}

func TestTable_DeleteOnlyByOwner(t *testing.T) {
	forEachTable(t, time.Minute, func(t *testing.T, tab Table, _ *clock) {
		ctx := context.Background()
		for _, r := range []Route{phone2, laptop} {
			if _, err := tab.Put(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		cases := []struct {
			name    string
			del     Route
			wantErr error
			left    []Route
		}{
			{name: "stale conn", del: phone1, wantErr: ErrNotOwner, left: []Route{phone2, laptop}},
			{name: "owner", del: phone2, left: []Route{laptop}},
			{name: "already gone", del: phone2, left: []Route{laptop}},
			{name: "unknown user", del: other, left: []Route{laptop}},
		}
		for _, tc := range cases {
			if err := tab.Delete(ctx, tc.del); err != tc.wantErr {
				t.Fatalf("%s: err = %v, want %v", tc.name, err, tc.wantErr)
			}
			if rs := lookup(t, tab, 1); !slices.Equal(rs, tc.left) {
				t.Fatalf("%s: left = %+v, want %+v", tc.name, rs, tc.left)
			}
		}
	})
}

func TestTable_ExpiryAndRenew(t *testing.T) {
	const ttl = 10 * time.Second
	forEachTable(t, ttl, func(t *testing.T, tab Table, c *clock) {
		ctx := context.Background()
		for _, r := range []Route{phone1, laptop} {
			if _, err := tab.Put(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		c.t = c.t.Add(ttl / 2)
		// Only the phone is renewed; the stale owner of the laptop is ignored.
		staleLaptop := laptop
		staleLaptop.ConnID = 99
		if err := tab.Renew(ctx, []Route{phone1, staleLaptop}); err != nil {
			t.Fatal(err)
		}
		c.t = c.t.Add(ttl/2 + time.Second)
		if rs := lookup(t, tab, 1); !slices.Equal(rs, []Route{phone1}) {
			t.Fatalf("after laptop expiry = %+v, want the renewed phone only", rs)
		}
		// An expired route is not reported as replaced.
		moved := Route{UserID: 1, DeviceID: "laptop", Gateway: "g", ConnID: 5}
		if got, err := tab.Put(ctx, moved); err != nil || got != nil {
			t.Fatalf("put over expired = %+v, %v", got, err)
		}
		c.t = c.t.Add(2 * ttl)
		if rs := lookup(t, tab, 1); len(rs) != 0 {
			t.Fatalf("after full expiry = %+v", rs)
		}
	})
}

// TestTable_RenewWritesBackLostRoutes plays a Redis that lost its data (a
// restart without persistence, a failover): the next renewal of a live
// connection writes its route back, but never over another connection's.
func TestTable_RenewWritesBackLostRoutes(t *testing.T) {
	forEachTable(t, 10*time.Second, func(t *testing.T, tab Table, _ *clock) {
		ctx := context.Background()
		for _, r := range []Route{phone1, laptop} {
			if _, err := tab.Put(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		loseAll(t, tab, 1)
		if rs := lookup(t, tab, 1); len(rs) != 0 {
			t.Fatalf("after the loss = %+v, want none", rs)
		}
		if err := tab.Renew(ctx, []Route{phone1}); err != nil {
			t.Fatal(err)
		}
		if rs := lookup(t, tab, 1); !slices.Equal(rs, []Route{phone1}) {
			t.Fatalf("after renewal = %+v, want the phone back", rs)
		}
		// The laptop logged in again elsewhere; a renewal from its old
		// connection must not take the route back.
		moved := Route{UserID: 1, DeviceID: "laptop", Gateway: "g2", ConnID: 7}
		if _, err := tab.Put(ctx, moved); err != nil {
			t.Fatal(err)
		}
		if err := tab.Renew(ctx, []Route{laptop}); err != nil {
			t.Fatal(err)
		}
		if rs := lookup(t, tab, 1); !slices.Equal(rs, []Route{moved, phone1}) {
			t.Fatalf("after a stale renewal = %+v, want the moved laptop and the phone", rs)
		}
	})
}

// loseAll removes every route of user as a data loss would, without the
// owner checks of Delete.
func loseAll(t *testing.T, tab Table, user int64) {
	t.Helper()
	switch tab := tab.(type) {
	case *Redis:
		if err := tab.rdb.Del(context.Background(), tab.key(user)).Err(); err != nil {
			t.Fatal(err)
		}
	case *Memory:
		s := tab.shard(user)
		s.mu.Lock()
		delete(s.users, user)
		s.mu.Unlock()
	default:
		t.Fatalf("unknown table %T", tab)
	}
}

func TestRedis_KeyLayoutAndTTL(t *testing.T) {
	for _, b := range redistest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			tab := openRedis(t, b, 30*time.Second, &clock{t: time.Now()})
			ctx := context.Background()
			if _, err := tab.Put(ctx, phone1); err != nil {
				t.Fatal(err)
			}
			key := tab.prefix + "route:1"
			v, err := tab.rdb.HGet(ctx, key, "phone").Result()
			if err != nil {
				t.Fatal(err)
			}
			want := "11:10.0.0.1:7000"
			if len(v) <= len(want) || v[len(v)-len(want):] != want {
				t.Fatalf("value = %q, want <expiry>:%s", v, want)
			}
			ttl, err := tab.rdb.PTTL(ctx, key).Result()
			if err != nil || ttl <= 0 || ttl > 30*time.Second {
				t.Fatalf("key ttl = %v, %v; want (0, 30s]", ttl, err)
			}
		})
	}
}

func TestRedis_RenewLoadsScript(t *testing.T) {
	for _, b := range redistest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			c := &clock{t: time.Now()}
			testRenewLoadsScript(t, openRedis(t, b, 10*time.Second, c), c)
		})
	}
}

func testRenewLoadsScript(t *testing.T, tab *Redis, c *clock) {
	ctx := context.Background()
	// Users on several nodes of a cluster, each of which lacks the script.
	var rs []Route
	for u := int64(1); u <= 20; u++ {
		r := Route{UserID: u, DeviceID: "phone", Gateway: "10.0.0.1:7000", ConnID: 100 + u}
		if _, err := tab.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	// SCRIPT FLUSH would hit every user of this Redis; a fresh script object
	// with a unique body has a SHA the server has never seen instead.
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	saved := renewScript
	renewScript = redis.NewScript("-- " + hex.EncodeToString(b) + renewLua)
	defer func() { renewScript = saved }()
	c.t = c.t.Add(8 * time.Second)
	if err := tab.Renew(ctx, rs); err != nil {
		t.Fatalf("renew with unloaded script: %v", err)
	}
	c.t = c.t.Add(8 * time.Second)
	if got := lookup(t, tab, userIDs(rs)...); !slices.Equal(got, rs) {
		t.Fatalf("lookup after renew = %+v", got)
	}
}

// TestTable_ManyUsers puts, renews, looks up and deletes routes of users
// enough to spread over every master of a cluster, each call taking all of
// them at once.
func TestTable_ManyUsers(t *testing.T) {
	const ttl = 10 * time.Second
	forEachTable(t, ttl, func(t *testing.T, tab Table, c *clock) {
		ctx := context.Background()
		var rs []Route
		for u := int64(1); u <= 30; u++ {
			r := Route{UserID: u, DeviceID: "phone", Gateway: "10.0.0.1:7000", ConnID: 100 + u}
			if _, err := tab.Put(ctx, r); err != nil {
				t.Fatal(err)
			}
			rs = append(rs, r)
		}
		c.t = c.t.Add(ttl / 2)
		if err := tab.Renew(ctx, rs); err != nil {
			t.Fatal(err)
		}
		c.t = c.t.Add(ttl/2 + time.Second)
		if got := lookup(t, tab, userIDs(rs)...); !slices.Equal(got, rs) {
			t.Fatalf("lookup after renew = %+v, want all %d", got, len(rs))
		}
		for _, r := range rs[:15] {
			if err := tab.Delete(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		if got := lookup(t, tab, userIDs(rs)...); !slices.Equal(got, rs[15:]) {
			t.Fatalf("lookup after deleting half = %+v, want %+v", got, rs[15:])
		}
	})
}

func userIDs(rs []Route) []int64 {
	ids := make([]int64, len(rs))
	for i, r := range rs {
		ids[i] = r.UserID
	}
	return ids
}
