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

// clock is a settable time source shared by a table under test.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// tables returns the stores to run a conformance case on: Memory always,
// Redis when RESONANCE_TEST_REDIS_ADDR is set (unique prefix, keys removed
// afterwards).
func tables(t *testing.T, ttl time.Duration, c *clock) map[string]Table {
	t.Helper()
	m := NewMemory(ttl)
	m.now = c.now
	out := map[string]Table{"memory": m}
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
	r := NewRedis(rdb, prefix, ttl)
	r.now = c.now
	out["redis"] = r
	return out
}

func deleteKeys(t *testing.T, rdb *redis.Client, prefix string) {
	t.Helper()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	if err == nil && len(keys) > 0 {
		err = rdb.Del(ctx, keys...).Err()
	}
	if err != nil {
		t.Errorf("cleanup %s*: %v", prefix, err)
	}
}

func forEachTable(t *testing.T, ttl time.Duration, fn func(t *testing.T, tab Table, c *clock)) {
	t.Helper()
	c := &clock{t: time.Now()}
	for name, tab := range tables(t, ttl, c) {
		t.Run(name, func(t *testing.T) {
			c.t = time.Now()
			fn(t, tab, c)
		})
	}
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
	addr := os.Getenv("RESONANCE_TEST_REDIS_ADDR")
	if addr == "" {
		t.Skip("RESONANCE_TEST_REDIS_ADDR not set")
	}
	c := &clock{t: time.Now()}
	tab := tables(t, 30*time.Second, c)["redis"].(*Redis)
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
}

func TestRedis_RenewLoadsScript(t *testing.T) {
	addr := os.Getenv("RESONANCE_TEST_REDIS_ADDR")
	if addr == "" {
		t.Skip("RESONANCE_TEST_REDIS_ADDR not set")
	}
	c := &clock{t: time.Now()}
	tab := tables(t, 10*time.Second, c)["redis"].(*Redis)
	ctx := context.Background()
	if _, err := tab.Put(ctx, phone1); err != nil {
		t.Fatal(err)
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
	if err := tab.Renew(ctx, []Route{phone1}); err != nil {
		t.Fatalf("renew with unloaded script: %v", err)
	}
	c.t = c.t.Add(8 * time.Second)
	if rs := lookup(t, tab, 1); !slices.Equal(rs, []Route{phone1}) {
		t.Fatalf("lookup after renew = %+v", rs)
	}
}
