package task

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resonance-im/resonance/internal/registry"
	"github.com/resonance-im/resonance/internal/testwait"
)

// gatedRegistry counts snapshot reads and holds each until release closes.
type gatedRegistry struct {
	registry.Registry
	reads   atomic.Int64
	release chan struct{}
}

func (g *gatedRegistry) Snapshot(ctx context.Context) (registry.Snapshot, error) {
	g.reads.Add(1)
	<-g.release
	return registry.Snapshot{Gone: map[string]time.Time{"10.0.0.1:7200": time.Now()}}, nil
}

func TestGatewayView_ConcurrentCallersShareOneRead(t *testing.T) {
	reg := &gatedRegistry{release: make(chan struct{})}
	v := newGatewayView(reg)
	mark := v.mark()
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			snap, err := v.since(context.Background(), mark)
			if err != nil || snap.State("10.0.0.1:7200") != registry.Vanished {
				t.Errorf("since = %+v, %v", snap, err)
			}
		})
	}
	// Until every caller shares the pending read, or one reads its own.
	testwait.For(t, 5*time.Second, "the callers on one read", func() bool {
		return reg.reads.Load() > 1 || v.pendingSharers() == 5
	})
	close(reg.release)
	wg.Wait()
	if n := reg.reads.Load(); n != 1 {
		t.Fatalf("%d reads for one mark, want 1", n)
	}

	if _, err := v.since(context.Background(), mark); err != nil || reg.reads.Load() != 1 {
		t.Fatalf("a later call for the same mark read again (%d reads, %v)", reg.reads.Load(), err)
	}
	if _, err := v.refresh(context.Background()); err != nil || reg.reads.Load() != 2 {
		t.Fatalf("refresh did not read (%d reads, %v)", reg.reads.Load(), err)
	}
}

// pendingSharers is how many since calls wait for the read in flight.
func (v *gatewayView) pendingSharers() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.pending == nil {
		return 0
	}
	return v.pending.sharers
}

func TestGatewayView_NilTriesEveryGateway(t *testing.T) {
	v := newGatewayView(nil)
	if v.mark() != 0 || v.state("10.0.0.1:7200") != registry.Unknown ||
		v.vanished(context.Background(), "10.0.0.1:7200", 0) {
		t.Fatal("a task without a registry must treat every gateway as unknown")
	}
}

// The view tells a registration that ran out from a deregistration, and
// calls lapsed only an address it saw live.
func TestGatewayView_TellsLapsedFromDeregistered(t *testing.T) {
	const lapsing, leaving, unseen = "10.0.0.1:7201", "10.0.0.2:7201", "10.0.0.3:7201"
	ctx := context.Background()
	reg := registry.NewMemory(0)
	v := newGatewayView(reg)
	mustRegister(t, reg, leaving)
	if err := reg.Register(ctx, lapsing, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, err := v.refresh(ctx); err != nil {
		t.Fatal(err)
	}
	mustRegister(t, reg, unseen)
	mustDeregister(t, reg, unseen)
	mustDeregister(t, reg, leaving)
	testwait.For(t, 5*time.Second, "the registration to run out", func() bool {
		_, err := v.refresh(ctx)
		return err == nil && v.state(lapsing) == registry.Vanished
	})
	for _, c := range []struct {
		addr   string
		lapsed bool
	}{{lapsing, true}, {leaving, false}, {unseen, false}} {
		if v.state(c.addr) != registry.Vanished {
			t.Errorf("%s: state %v, want vanished", c.addr, v.state(c.addr))
		}
		if got := v.lapsed(c.addr); got != c.lapsed {
			t.Errorf("%s: lapsed = %v, want %v", c.addr, got, c.lapsed)
		}
	}
}

// A caller waiting for a read that a newer read overtook answers with the
// newer read's snapshot: both began after its mark, and the view already
// holds the newer. Here the older read saw the gateway gone, the newer saw
// it registered again, and the push must go to it.
func TestGatewayView_SinceAnswersWithANewerReadThatCompletedFirst(t *testing.T) {
	const addr = "10.0.0.1:7202"
	ctx := context.Background()
	expiry := time.Now().Add(time.Minute)
	reg := &scriptedRegistry{}
	reg.set(registry.Snapshot{Gone: map[string]time.Time{addr: time.Now()}})
	v := newGatewayView(reg)
	if _, err := v.refresh(ctx); err != nil {
		t.Fatal(err)
	}

	mark := v.mark() // a push's route lookup begins
	held := reg.holdNext()
	vanished := make(chan bool)
	go func() { vanished <- v.vanished(ctx, addr, mark) }()
	<-held.taken // its read saw the gateway gone, and is slow to complete
	reg.set(registry.Snapshot{Live: map[string]time.Time{addr: expiry}})
	if _, err := v.refresh(ctx); err != nil {
		t.Fatal(err)
	}
	close(held.release)
	if <-vanished {
		t.Fatalf("vanished(%s) answered with an overtaken read; the view's newer read "+
			"says %v", addr, v.state(addr))
	}
}
