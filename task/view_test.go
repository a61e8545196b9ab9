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
	testwait.For(t, 5*time.Second, "the first read", func() bool { return reg.reads.Load() == 1 })
	// A window for the others to reach since: a read of their own would show.
	time.Sleep(20 * time.Millisecond)
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

func TestGatewayView_NilTriesEveryGateway(t *testing.T) {
	v := newGatewayView(nil)
	if v.mark() != 0 || v.state("10.0.0.1:7200") != registry.Unknown ||
		v.vanished(context.Background(), "10.0.0.1:7200", 0) {
		t.Fatal("a task without a registry must treat every gateway as unknown")
	}
}
