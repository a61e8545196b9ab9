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
	tried   bool         // a read has completed, failed or not (see settledState)
	// seenLive holds, for each address live or vanished in current, its
	// newest registration seen live: see lapsed and unlessLiveSince.
	seenLive map[string]liveSeen
}

// liveSeen is the newest registration of an address a read saw live.
type liveSeen struct {
	until time.Time // the registration's expiry
	read  uint64    // the number of the newest read that saw it
}

// viewSnapshot is a snapshot and the number of the read that took it.
type viewSnapshot struct {
	n    uint64
	snap registry.Snapshot
}

// viewRead is one snapshot read in flight; done closes when it finished.
type viewRead struct {
	n       uint64
	done    chan struct{}
	snap    registry.Snapshot
	err     error
	sharers int // the since calls waiting for it, under v.mu: tests wait for them
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

// settledState is state, but while no read has completed yet (task is
// starting) it first waits for the one under way, or reads one: the first
// events after a start would otherwise go to gateways the registry already
// holds vanished, each call waiting out its timeout. Once a read has
// completed, failed or not, it never waits, so a registry down at start
// delays the first events by one read's timeout at most.
func (v *gatewayView) settledState(ctx context.Context, addr string) registry.State {
	if v == nil {
		return registry.Unknown
	}
	v.mu.Lock()
	if v.tried {
		defer v.mu.Unlock()
		return v.current.snap.State(addr)
	}
	v.mu.Unlock()
	_, _ = v.since(ctx, 0)
	return v.state(addr)
}

// since returns the newest snapshot from a read begun after the mark call
// that returned after, reading one when there is none yet. Callers share a read
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
		r = &viewRead{n: v.started, done: make(chan struct{}), sharers: 1}
		v.pending = r
		v.mu.Unlock()
		v.read(ctx, r)
	} else {
		r.sharers++
		v.mu.Unlock()
	}
	select {
	case <-r.done:
		return v.newestSince(r)
	case <-ctx.Done():
		return registry.Snapshot{}, ctx.Err()
	}
}

// newestSince returns the snapshot of r, done, unless a read begun after r
// completed before it: that one's snapshot is newer, and the one pushes
// see. Both began after the caller's mark, so either suits it, but
// answering with r's would skip a gateway the view already has live again.
func (v *gatewayView) newestSince(r *viewRead) (registry.Snapshot, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.current.n > r.n {
		return v.current.snap, nil
	}
	return r.snap, r.err
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
		v.noteLiveLocked(r)
	}
	if v.pending == r {
		v.pending = nil
	}
	v.tried = true
	v.mu.Unlock()
	close(r.done)
}

// refresh reads a new snapshot now and returns the newest the view has
// then, with its read's number: the read's own, or a newer one that
// completed first. The read's own would be older than what the view tells
// pushes.
func (v *gatewayView) refresh(ctx context.Context) (viewSnapshot, error) {
	if _, err := v.since(ctx, v.mark()); err != nil {
		return viewSnapshot{}, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.current, nil
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

// noteLiveLocked records the registrations live in r's snapshot and
// forgets the addresses it no longer has. v.mu is held.
func (v *gatewayView) noteLiveLocked(r *viewRead) {
	next := make(map[string]liveSeen, len(r.snap.Live)+len(r.snap.Gone))
	for addr, until := range r.snap.Live {
		next[addr] = liveSeen{until: until, read: r.n}
	}
	for addr := range r.snap.Gone {
		if seen, ok := v.seenLive[addr]; ok {
			next[addr] = seen
		}
	}
	v.seenLive = next
}

// newest returns the number of the newest completed read, 0 before the
// first: a read that completes later has a greater one.
func (v *gatewayView) newest() uint64 {
	if v == nil {
		return 0
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.current.n
}

// unlessLiveSince calls fn and returns true, unless read (see newest) or a
// later one saw addr live. fn runs under v's lock, so that no read
// completes meanwhile: what it does on the word of an older read cannot
// undo a newer one. It must not block, nor call v.
func (v *gatewayView) unlessLiveSince(addr string, read uint64, fn func()) bool {
	if v == nil {
		fn()
		return true
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.liveSinceLocked(addr, read) {
		return false
	}
	fn()
	return true
}

// liveSince reports whether read (see newest) or a later one saw addr live;
// without a registry none did.
func (v *gatewayView) liveSince(addr string, read uint64) bool {
	if v == nil {
		return false
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.liveSinceLocked(addr, read)
}

// liveSinceLocked is liveSince with v.mu held.
func (v *gatewayView) liveSinceLocked(addr string, read uint64) bool {
	seen, ok := v.seenLive[addr]
	return ok && seen.read >= read
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
	seen, ok := v.seenLive[addr]
	return ok && !gone.Before(seen.until)
}
