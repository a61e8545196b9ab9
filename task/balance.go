package task

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/resonance-im/resonance/internal/mq"
	"github.com/resonance-im/resonance/internal/run"
)

// The balancer owns this instance's share of the partitions. One goroutine
// (run) alone touches its state; partition runs report to it when they have
// settled. Every LeaseTTL/3 it renews its member key and its leases, then
// rebalances: it counts the live members, gives back the partitions over its
// fair share, ceil(Partitions/members), and takes free ones up to it. A
// watch of the bucket wakes it when an instance releases a partition or
// leaves, so that a handover does not wait for the next tick.
//
// Handing a partition over keeps its order: the owner stops pulling, lets
// its last pull end, pushes what it pulled, waits until all of it is acked,
// and only then deletes the lease, which is when another instance may take
// the partition and pull the events after them.

// leaseState is where an owned partition is in its life.
type leaseState int

const (
	leaseRunning   leaseState = iota // consuming
	leaseReleasing                   // finishing what it pulled; the lease is still renewed
	leaseLost                        // the lease is gone: ending at once, not renewed
)

// ownedPartition is a partition whose lease this instance holds, or held
// until its run settles.
type ownedPartition struct {
	run     *partRun
	state   leaseState
	rev     uint64    // revision of the lease key
	renewed time.Time // when the write of rev was sent: the key lives TTL past it
}

type balancer struct {
	t       *Task
	leases  *leaseStore
	ttl     time.Duration
	cons    []jetstream.Consumer // by partition
	queues  []chan job
	first   int                     // where this instance starts looking for free partitions
	parts   map[int]*ownedPartition // run's goroutine only
	leaving bool                    // shutting down: the member key is gone, not renewed
	settled chan *partRun           // runs that ended with their events settled
	poke    chan struct{}           // cap 1: a lease was released or a member left
	runs    run.Group

	mu    sync.Mutex
	owned []int                // held partitions (running or releasing), ascending
	oCons []jetstream.Consumer // their consumers, for the pending gauge
}

func newBalancer(t *Task, leases *leaseStore, cons []jetstream.Consumer,
	queues []chan job) *balancer {
	return &balancer{
		t: t, leases: leases, ttl: t.cfg.LeaseTTL, cons: cons, queues: queues,
		// A random start spreads instances that look for free partitions
		// at the same moment, so fewer of their creates collide.
		first:   rand.IntN(mq.Partitions),
		parts:   make(map[int]*ownedPartition),
		settled: make(chan *partRun, mq.Partitions), // a run per partition at most
		poke:    make(chan struct{}, 1),
	}
}

// run takes and keeps a share of the partitions until ctx is done, then
// releases every partition gracefully and returns once all have settled.
// started is called after the first round, owning partitions or not.
func (b *balancer) run(ctx context.Context, started func()) {
	// Lease writes must reach NATS after ctx is done: a release is a write.
	bg := context.WithoutCancel(ctx)
	watchCtx, stopWatch := context.WithCancel(bg)
	b.runs.Go(b.t.log, "task-lease-watch", func() { b.watch(watchCtx) })
	tick := time.NewTicker(b.ttl / 3)
	defer tick.Stop()

	if ctx.Err() == nil {
		b.renew(bg)
		b.rebalance(ctx)
	}
	started()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
			b.renew(bg)
			b.rebalance(ctx)
		case <-b.poke:
			b.rebalance(ctx)
		case pr := <-b.settled:
			b.finish(bg, pr)
		}
	}
	b.releaseAll(bg, tick.C)
	stopWatch()
	b.runs.Wait()
}

// releaseAll leaves and gives back every partition gracefully, renewing the
// leases on tick until all have settled. Leaving first lets the others count
// their shares without us while our partitions drain, and take each as soon
// as it is released.
func (b *balancer) releaseAll(ctx context.Context, tick <-chan time.Time) {
	b.leaving = true
	b.withTimeout(ctx, func(ctx context.Context) error { return b.leases.leave(ctx) })
	var released []int
	for p, op := range b.parts {
		if op.state == leaseRunning {
			op.state = leaseReleasing
			op.run.release()
			released = append(released, p)
		}
	}
	for len(b.parts) > 0 {
		select {
		case <-tick:
			b.renew(ctx)
		case pr := <-b.settled:
			b.finish(ctx, pr)
		}
	}
	slices.Sort(released)
	b.t.log.Info().Str("instance", b.leases.id).Ints("partitions", released).
		Msg("partitions released at stop")
}

// withTimeout runs a lease operation bounded by a third of the TTL, logging
// its failure.
func (b *balancer) withTimeout(ctx context.Context, op func(context.Context) error) {
	ctx, cancel := context.WithTimeout(ctx, b.ttl/3)
	defer cancel()
	if err := op(ctx); err != nil {
		b.t.rare.Warn().Err(err).Msg("partition lease")
	}
}

// renew writes the member key and every lease not lost, the leases
// concurrently: one slow write must not hold up the others. A lease whose
// key moved to another instance is lost; so is one not confirmed renewed
// for 5/6 of the TTL (one failed round is forgiven, two are not), since its
// key may lapse any moment and another instance take the partition. A lost
// partition stops at once.
func (b *balancer) renew(ctx context.Context) {
	// A round ends by TTL/3 + TTL/4 after the last renewal, the next one
	// by 11/12 of the TTL: both sides of the 5/6 mark.
	ctx, cancel := context.WithTimeout(ctx, b.ttl/4)
	defer cancel()
	if !b.leaving {
		if err := b.leases.join(ctx); err != nil {
			b.t.rare.Warn().Err(err).Msg("renew membership")
		}
	}
	type renewal struct {
		p    int
		rev  uint64
		sent time.Time
		err  error
	}
	var wg sync.WaitGroup
	done := make(chan renewal, len(b.parts))
	for p, op := range b.parts {
		if op.state == leaseLost {
			continue
		}
		wg.Go(func() {
			r := renewal{p: p, sent: time.Now()}
			r.rev, r.err = b.leases.renew(ctx, p, op.rev)
			done <- r
		})
	}
	wg.Wait()
	close(done)
	for r := range done {
		op := b.parts[r.p]
		switch {
		case r.err == nil:
			op.rev, op.renewed = r.rev, r.sent
		case errors.Is(r.err, errLeaseLost) || time.Since(op.renewed) >= b.ttl*5/6:
			b.lose(r.p, op, r.err)
		default:
			b.t.rare.Warn().Err(r.err).Int("partition", r.p).Msg("renew partition lease")
		}
	}
}

// rebalance brings the partitions this instance runs to its fair share.
func (b *balancer) rebalance(ctx context.Context) {
	kvCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.ttl/3)
	defer cancel()
	v, err := b.leases.view(kvCtx)
	if err != nil {
		b.t.rare.Warn().Err(err).Msg("read partition leases")
		return
	}
	share := (mq.Partitions + v.members - 1) / v.members
	running := b.running()
	if over := len(running) - share; over > 0 {
		give := running[len(running)-over:]
		for _, p := range give {
			b.parts[p].state = leaseReleasing
			b.parts[p].run.release()
		}
		b.t.log.Info().Str("instance", b.leases.id).Ints("partitions", give).
			Int("members", v.members).Int("share", share).Msg("releasing partitions")
		return
	}
	var took []int
	for i := 0; i < mq.Partitions && len(running)+len(took) < share && ctx.Err() == nil; i++ {
		p := (b.first + i) % mq.Partitions
		if v.held[p] || b.parts[p] != nil {
			continue
		}
		if b.acquire(kvCtx, p) {
			took = append(took, p)
		}
	}
	if len(took) > 0 {
		slices.Sort(took)
		b.t.log.Info().Str("instance", b.leases.id).Ints("partitions", took).
			Int("owned", len(running)+len(took)).Int("members", v.members).
			Msg("partitions acquired")
	}
}

// running returns the partitions being consumed (not releasing or lost),
// ascending.
func (b *balancer) running() []int {
	var ps []int
	for p, op := range b.parts {
		if op.state == leaseRunning {
			ps = append(ps, p)
		}
	}
	slices.Sort(ps)
	return ps
}

// acquire takes the lease of p and starts consuming it; false when another
// instance holds it or NATS failed.
func (b *balancer) acquire(ctx context.Context, p int) bool {
	sent := time.Now()
	rev, ok, err := b.leases.acquire(ctx, p)
	if err != nil {
		b.t.rare.Warn().Err(err).Int("partition", p).Msg("acquire partition")
	}
	if !ok {
		return false
	}
	pr := newPartRun(p, b.t.names.PartitionConsumer(p))
	b.parts[p] = &ownedPartition{run: pr, rev: rev, renewed: sent}
	b.hook(p, true)
	b.publish()
	b.runs.Go(b.t.log, "task-partition-"+strconv.Itoa(p), func() {
		b.t.consumePartition(pr, b.queues)
		b.settled <- pr
	})
	return true
}

// lose stops p at once: its lease is gone or about to lapse.
func (b *balancer) lose(p int, op *ownedPartition, cause error) {
	op.state = leaseLost
	op.run.lose()
	b.hook(p, false)
	b.publish()
	b.t.log.Warn().Err(cause).Str("instance", b.leases.id).Int("partition", p).
		Msg("partition lease lost; stopping it, unpushed events go back")
}

// finish deletes the lease of a run that settled: every event it took is
// acked or naked, so the next owner starts after them.
func (b *balancer) finish(ctx context.Context, pr *partRun) {
	op := b.parts[pr.p]
	delete(b.parts, pr.p)
	if op.state != leaseLost {
		b.hook(pr.p, false)
		b.publish()
	}
	ctx, cancel := context.WithTimeout(ctx, b.ttl/3)
	defer cancel()
	// With the revision check: a lost lease may be another instance's now.
	err := b.leases.release(ctx, pr.p, op.rev)
	if err != nil && op.state != leaseLost {
		b.t.rare.Warn().Err(err).Int("partition", pr.p).
			Msg("release partition lease; it lapses after the lease TTL")
	}
	b.t.log.Debug().Int("partition", pr.p).Msg("partition released")
}

// hook reports a change of ownership to a test, before the lease is
// deleted and after it was taken, so that its log orders the owners of a
// partition as NATS does.
func (b *balancer) hook(p int, held bool) {
	if b.t.onLease != nil {
		b.t.onLease(b.leases.id, p, held)
	}
}

// publish refreshes the snapshot of held partitions and their gauge.
func (b *balancer) publish() {
	var owned []int
	for p, op := range b.parts {
		if op.state != leaseLost {
			owned = append(owned, p)
		}
	}
	slices.Sort(owned)
	cons := make([]jetstream.Consumer, len(owned))
	for i, p := range owned {
		cons[i] = b.cons[p]
	}
	b.mu.Lock()
	b.owned, b.oCons = owned, cons
	b.mu.Unlock()
	b.t.metrics.partitions.Set(float64(len(owned)))
}

// ownedPartitions returns the partitions this instance holds, ascending.
// Any goroutine may call it.
func (b *balancer) ownedPartitions() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.owned
}

// consumers returns the consumers of the held partitions. Any goroutine
// may call it.
func (b *balancer) consumers() []jetstream.Consumer {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.oCons
}

// watch pokes run when a key of the bucket is deleted: a partition
// released or a member gone. Lapsed keys make no event; the tick finds them.
func (b *balancer) watch(ctx context.Context) {
	w, err := b.leases.kv.WatchAll(ctx, jetstream.UpdatesOnly(), jetstream.MetaOnly())
	if err != nil {
		b.t.log.Warn().Err(err).Msg("watch partition leases; handovers wait for the renewal tick")
		return
	}
	defer func() { _ = w.Stop() }()
	for {
		var e jetstream.KeyValueEntry
		var ok bool
		select {
		case <-ctx.Done():
			return
		case e, ok = <-w.Updates():
		}
		if !ok {
			return
		}
		if e == nil || e.Operation() == jetstream.KeyValuePut {
			continue
		}
		select {
		case b.poke <- struct{}{}:
		default: // a rebalance is already due
		}
	}
}
