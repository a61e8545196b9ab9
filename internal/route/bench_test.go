package route

import (
	"context"
	"testing"
	"time"

	"github.com/resonance-im/resonance/internal/redistest"
)

// BenchmarkLookup looks up a 200-member group, half of it online with one
// device each, among 2,000 connected users: task's lookup before a group's
// push. Redis runs when RESONANCE_TEST_REDIS_ADDR names one.
func BenchmarkLookup(b *testing.B) {
	run := func(b *testing.B, tab Table) {
		ctx := context.Background()
		for u := int64(1); u <= 2000; u++ {
			if u <= 200 && u%2 == 1 {
				continue // offline members
			}
			r := Route{UserID: u, DeviceID: "phone", Gateway: "10.0.0.1:7200", ConnID: u}
			if _, err := tab.Put(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
		members := make([]int64, 200)
		for i := range members {
			members[i] = int64(i + 1)
		}
		b.ReportAllocs()
		for b.Loop() {
			rs, err := tab.Lookup(ctx, members)
			if err != nil || len(rs) != 100 {
				b.Fatalf("lookup = %d routes, %v; want 100", len(rs), err)
			}
		}
	}
	b.Run("memory", func(b *testing.B) { run(b, NewMemory(time.Minute)) })
	for _, be := range redistest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			rdb := be.Open(b)
			run(b, NewRedis(rdb, redistest.KeyPrefix(b, rdb), time.Minute))
		})
	}
}
