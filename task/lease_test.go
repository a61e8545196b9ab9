package task

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/resonance-im/resonance/internal/mq"
	"github.com/resonance-im/resonance/internal/testwait"
)

// openTestLeases opens n lease stores on en's bucket, as n instances would.
func openTestLeases(t *testing.T, en *env, ttl time.Duration, n int) []*leaseStore {
	t.Helper()
	stores := make([]*leaseStore, n)
	for i := range stores {
		l, err := openLeases(context.Background(), en.js, en.names, ttl, false)
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = l
	}
	return stores
}

// Instances racing for a partition: exactly one wins each round, and only
// the winner's release frees it.
func TestLeases_OneOwnerAtATime(t *testing.T) {
	const rounds, racers = 20, 6
	en := newEnv(t)
	stores := openTestLeases(t, en, 10*time.Second, racers)
	ctx := context.Background()
	for round := range rounds {
		var mu sync.Mutex
		var winners []int
		var revs []uint64
		var wg sync.WaitGroup
		for i, l := range stores {
			wg.Go(func() {
				rev, ok, err := l.acquire(ctx, 7)
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					winners, revs = append(winners, i), append(revs, rev)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(winners) != 1 {
			t.Fatalf("round %d: %d instances hold partition 7, want 1", round, len(winners))
		}
		owner, rev := stores[winners[0]], revs[0]
		loser := stores[(winners[0]+1)%racers]
		if err := loser.release(ctx, 7, rev+1); err == nil {
			t.Fatalf("round %d: a wrong revision released the lease", round)
		}
		if _, ok, _ := loser.acquire(ctx, 7); ok {
			t.Fatalf("round %d: acquired a held partition", round)
		}
		if err := owner.release(ctx, 7, rev); err != nil {
			t.Fatalf("round %d: owner's release: %v", round, err)
		}
	}
}

func TestLeases_RenewAdoptsOwnWriteAndDetectsLoss(t *testing.T) {
	en := newEnv(t)
	ttl := time.Second
	stores := openTestLeases(t, en, ttl, 2)
	a, b := stores[0], stores[1]
	ctx := context.Background()

	rev, ok, err := a.acquire(ctx, 3)
	if err != nil || !ok {
		t.Fatalf("acquire = %v, %v", ok, err)
	}
	// A renewal whose reply was lost: the next one still holds the old
	// revision, and must find the key still ours.
	newer, err := a.renew(ctx, 3, rev)
	if err != nil {
		t.Fatal(err)
	}
	adopted, err := a.renew(ctx, 3, rev)
	if err != nil || adopted != newer {
		t.Fatalf("renew with a stale revision of our own = %d, %v; want %d", adopted, err, newer)
	}

	// a stops renewing: the key lapses, b takes the partition, and a's next
	// renewal and release fail without touching b's lease.
	var brev uint64
	testwait.For(t, 5*ttl, "lease lapsed and taken by b", func() bool {
		brev, ok, err = b.acquire(ctx, 3)
		return ok && err == nil
	})
	if _, err := a.renew(ctx, 3, adopted); !errors.Is(err, errLeaseLost) {
		t.Fatalf("renew of a lapsed lease = %v, want errLeaseLost", err)
	}
	if err := a.release(ctx, 3, adopted); err == nil {
		t.Fatal("release of a lapsed lease succeeded")
	}
	if _, err := b.renew(ctx, 3, brev); err != nil {
		t.Fatalf("b's renew after a's attempts: %v", err)
	}
}

func TestLeases_ViewCountsMembersAndHeld(t *testing.T) {
	en := newEnv(t)
	stores := openTestLeases(t, en, 10*time.Second, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, l := range stores[:2] {
		if err := l.join(ctx); err != nil {
			t.Fatal(err)
		}
	}
	rev, _, err := stores[0].acquire(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := stores[1].acquire(ctx, 6); err != nil {
		t.Fatal(err)
	}
	if err := stores[0].release(ctx, 5, rev); err != nil {
		t.Fatal(err)
	}
	if err := stores[1].leave(ctx); err != nil {
		t.Fatal(err)
	}

	// stores[2] never joined: it counts itself.
	v, err := stores[2].view(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var want [mq.Partitions]bool
	want[6] = true
	if v.members != 2 || v.held != want {
		t.Errorf("view = %d members, held %v; want 2 members, only partition 6 held",
			v.members, v.held)
	}
	// The deleted and released keys stay as markers; they do not count.
	if _, err := stores[0].kv.Get(ctx, partitionKey(5)); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("released key: %v, want not found", err)
	}
}
