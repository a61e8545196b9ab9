package task

import (
	"context"
	"sync"
	"time"

	"github.com/resonance-im/resonance/internal/registry"
)

// registryTimeout bounds one snapshot read.
const registryTimeout = 2 * time.Second

// gatewayView is task's copy of the gateway registry. Pushes read the
// newest snapshot without I/O; a gateway it calls vanished is checked again
// against a snapshot taken after the event's route lookup began, because the
// gateway may have come back at the same address since (a restart), and a
// route naming it proves it registered before the lookup. It is safe for
// concurrent use.
type gatewayView struct {
	reg registry.Registry

	mu      sync.Mutex
	started uint64       // snapshot reads begun, numbering them from 1
	current viewSnapshot // the newest completed read
	pending *viewRead    // the newest read in flight, or nil
	// liveUntil holds, for each address live or vanished in current, the
	// expiry of the newest registration seen live: see lapsed.
	liveUntil map[string]time.Time
}

// viewSnapshot is a snapshot and the number of the read that took it.
type viewSnapshot struct {
	n    uint64
	snap registry.Snapshot
}

// viewRead is one snapshot read in flight; done closes when it finished.
type viewRead struct {
	n    uint64
	done chan struct{}
	snap registry.Snapshot
	err  error
}

func newGatewayView(reg registry.Registry) *gatewayView {
	if reg == nil {
		return nil
	}
	return &gatewayView{reg: reg}
}

// mark returns the number of reads begun so far: a read numbered above it
// begins after mark was called.
func (v *gatewayView) mark() uint64 {
	if v == nil {
		return 0
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.started
}

// state returns what the newest snapshot says about addr; without a
// registry every gateway is unknown.
func (v *gatewayView) state(addr string) registry.State {
	if v == nil {
		return registry.Unknown
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.current.snap.State(addr)
}

// since returns a snapshot from a read begun after the mark call that
// returned after, reading one when there is none yet. Callers share a read
// that suits them all, so a burst of events for a vanished gateway costs
// one read, not one per event.
func (v *gatewayView) since(ctx context.Context, after uint64) (registry.Snapshot, error) {
	v.mu.Lock()
	if v.current.n > after {
		defer v.mu.Unlock()
		return v.current.snap, nil
	}
	r := v.pending
	if r == nil || r.n <= after {
		v.started++
		r = &viewRead{n: v.started, done: make(chan struct{})}
		v.pending = r
		v.mu.Unlock()
		v.read(ctx, r)
	} else {
		v.mu.Unlock()
	}
	select {
	case <-r.done:
		return r.snap, r.err
	case <-ctx.Done():
		return registry.Snapshot{}, ctx.Err()
	}
}

// read performs r and publishes its snapshot unless a newer one already is.
// It runs detached from ctx's cancellation: other callers may wait on it.
func (v *gatewayView) read(ctx context.Context, r *viewRead) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), registryTimeout)
	r.snap, r.err = v.reg.Snapshot(rctx)
	cancel()
	v.mu.Lock()
	if r.err == nil && r.n > v.current.n {
		v.current = viewSnapshot{n: r.n, snap: r.snap}
		v.noteLiveLocked(r.snap)
	}
	if v.pending == r {
		v.pending = nil
	}
	v.mu.Unlock()
	close(r.done)
}

// refresh reads a new snapshot now.
func (v *gatewayView) refresh(ctx context.Context) (registry.Snapshot, error) {
	return v.since(ctx, v.mark())
}

// vanished reports whether addr is gone by a snapshot read after mark: the
// cheap newest snapshot rules first, and only a "vanished" there is checked
// again. A failed read counts as not vanished, so the push is tried.
func (v *gatewayView) vanished(ctx context.Context, addr string, after uint64) bool {
	if v.state(addr) != registry.Vanished {
		return false
	}
	snap, err := v.since(ctx, after)
	return err == nil && snap.State(addr) == registry.Vanished
}

// noteLiveLocked records the registrations live in snap and forgets the
// addresses snap no longer has. v.mu is held.
func (v *gatewayView) noteLiveLocked(snap registry.Snapshot) {
	next := make(map[string]time.Time, len(snap.Live)+len(snap.Gone))
	for addr, until := range snap.Live {
		next[addr] = until
	}
	for addr := range snap.Gone {
		if until, ok := v.liveUntil[addr]; ok {
			next[addr] = until
		}
	}
	v.liveUntil = next
}

// lapsed reports whether the newest snapshot has addr vanished because its
// registration ran out rather than because the gateway deregistered: a
// gateway that cannot reach the registry lapses while it still serves. A
// deregistration marks the address gone at that moment, before the expiry
// of the registration it ends, whereas a lapsed address is gone at the
// expiry of its last registration, which is at or after any this view saw
// live. An address this view never saw live is not called lapsed; a view
// whose reads failed for longer than a registration's TTL may take a
// deregistration for a lapse, which costs a probe (see lapsedGateways).
func (v *gatewayView) lapsed(addr string) bool {
	if v == nil {
		return false
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	gone, ok := v.current.snap.Gone[addr]
	if !ok {
		return false
	}
	until, seen := v.liveUntil[addr]
	return seen && !gone.Before(until)
}
