package gateway

import (
	"testing"
	"time"
	"unsafe"
)

func TestWheel_ExpiresAtDeadline(t *testing.T) {
	cfg := Config{LoginTimeout: 100 * time.Millisecond, HeartbeatTimeout: 100 * time.Millisecond}
	cases := []struct {
		name     string
		deadline int64   // ms, when added at time 0
		moved    int64   // if set, the deadline the conn has by the first sweep
		sweeps   []int64 // sweep times, ms
		expireAt int64   // the sweep time that must expire it; 0: never
		removed  bool
	}{
		{name: "due in the first slots", deadline: 100, sweeps: []int64{50, 99, 125},
			expireAt: 125},
		{name: "beyond one revolution", deadline: 1000, sweeps: []int64{100, 200, 500, 975, 1025},
			expireAt: 1025},
		{name: "touched before due", deadline: 100, moved: 400,
			sweeps: []int64{125, 300, 425}, expireAt: 425},
		{name: "after a long stall", deadline: 100, sweeps: []int64{10_000}, expireAt: 10_000},
		{name: "removed", deadline: 100, sweeps: []int64{50, 200}, removed: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWheel(cfg, 0)
			c := &conn{wheelSlot: notQueued}
			deadline := tc.deadline
			w.add(c, deadline)
			if tc.removed {
				w.remove(c)
			}
			if tc.moved != 0 {
				deadline = tc.moved
			}
			var expiredAt int64
			for _, now := range tc.sweeps {
				w.sweep(now, func(*conn) int64 { return deadline }, func(got *conn) {
					if got != c || expiredAt != 0 {
						t.Fatalf("unexpected expiry at %d", now)
					}
					expiredAt = now
				})
			}
			if expiredAt != tc.expireAt {
				t.Fatalf("expired at %d, want %d", expiredAt, tc.expireAt)
			}
		})
	}
}

func TestWheel_KeepsManyConnections(t *testing.T) {
	cfg := Config{LoginTimeout: time.Second, HeartbeatTimeout: time.Second}
	w := newWheel(cfg, 0)
	conns := make([]*conn, 100)
	for i := range conns {
		conns[i] = &conn{wheelSlot: notQueued}
		w.add(conns[i], int64(i*20))
	}
	w.remove(conns[50])
	count := 0
	w.each(func(*conn) { count++ })
	if count != 99 {
		t.Fatalf("wheel holds %d connections, want 99", count)
	}
	expired := 0
	for now := int64(0); now <= 3000; now += 250 {
		w.sweep(now, func(c *conn) int64 {
			for i, x := range conns {
				if x == c {
					return int64(i * 20)
				}
			}
			t.Fatal("unknown connection in the wheel")
			return 0
		}, func(*conn) { expired++ })
	}
	if expired != 99 {
		t.Fatalf("expired %d, want 99", expired)
	}
}

// TestConn_StaysSmall guards the per-connection footprint: one conn per idle
// client, so a field added carelessly costs memory at every connection.
func TestConn_StaysSmall(t *testing.T) {
	if size := unsafe.Sizeof(conn{}); size > 128 {
		t.Fatalf("conn is %d bytes, want at most 128", size)
	}
}
