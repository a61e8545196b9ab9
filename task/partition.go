package task

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/resonance-im/resonance/internal/mq"
)

// setupPartitions creates or updates the durable consumer of every
// partition and returns them by partition. Every instance does it at start,
// whether or not it will own the partition.
func (t *Task) setupPartitions(ctx context.Context) ([]jetstream.Consumer, error) {
	stream, err := mq.EnsureStream(ctx, t.js, t.names)
	if err != nil {
		return nil, err
	}
	cons := make([]jetstream.Consumer, mq.Partitions)
	for p := range cons {
		cc := jetstream.ConsumerConfig{
			Durable:       t.names.PartitionConsumer(p),
			FilterSubject: t.names.PartitionSubject(p),
			AckPolicy:     jetstream.AckExplicitPolicy,
			DeliverPolicy: jetstream.DeliverAllPolicy,
			AckWait:       t.cfg.AckWait,
			BackOff:       t.cfg.backoffSchedule(),
			MaxDeliver:    t.cfg.MaxDeliver,
			MaxAckPending: t.cfg.maxAckPending(),
		}
		if cons[p], err = stream.CreateOrUpdateConsumer(ctx, cc); err != nil {
			return nil, fmt.Errorf("task: consumer %s on %s: %w", cc.Durable, t.names.Stream, err)
		}
	}
	return cons, nil
}

// checkLegacy warns when the consumer of builds before partitions still has
// message events to push: they sit on the old subject, which this build
// never reads (see docs/architecture.md, "Task partitions").
func (t *Task) checkLegacy(ctx context.Context) {
	c, err := t.js.Consumer(ctx, t.names.Stream, t.names.Consumer)
	if err != nil {
		return // none: nothing to drain
	}
	info := c.CachedInfo()
	if info.Config.FilterSubject != t.names.LegacyMessageSubject() {
		return
	}
	if left := info.NumPending + uint64(info.NumAckPending); left > 0 {
		t.log.Warn().Str("consumer", t.names.Consumer).Uint64("events", left).
			Str("subject", t.names.LegacyMessageSubject()).
			Msg("events of the previous build wait on the old subject; run the old task until they drain")
	}
}

// partRun is one owned partition being consumed. The balancer starts it
// when it takes the partition's lease and deletes the lease only after
// consumePartition returned, when every event it took was acked or naked.
type partRun struct {
	p        int
	consumer string // its durable consumer

	// stopping asks consumePartition to end after its current pull, whose
	// events it still hands to the workers (graceful release); lost also
	// has them and the queued ones naked instead (the lease is gone).
	stopping atomic.Bool
	lost     atomic.Bool
	wake     context.Context // done once stopping: cuts an error pause short
	stop     context.CancelFunc
	// inflight counts the events handed to workers and not yet acked or
	// naked.
	inflight sync.WaitGroup
}

func newPartRun(p int, consumer string) *partRun {
	wake, stop := context.WithCancel(context.Background())
	return &partRun{p: p, consumer: consumer, wake: wake, stop: stop}
}

// release asks the run to finish what it pulled and end; lose asks it to
// end at once, naking what it has not pushed.
func (pr *partRun) release() { pr.stopping.Store(true); pr.stop() }

func (pr *partRun) lose() { pr.lost.Store(true); pr.release() }

// consumePartition pulls pr's events (see puller) and hands each to the
// worker of its conversation until pr is released, then waits until every
// event it handed over is settled. Events of one conversation come from one
// partition in stream order and go to one worker, which pushes them in seq
// order (see reorder.go).
//
// Backpressure: the send to a full worker queue blocks, which stops this
// partition's pulls; a pull brings at most partitionBatch events and
// JetStream stops delivering at MaxAckPending, so memory stays bounded and
// a slow gateway slows delivery rather than growing queues.
func (t *Task) consumePartition(pr *partRun, queues []chan job) {
	var pl *puller
	for pl == nil && !pr.stopping.Load() {
		var err error
		if pl, err = newPuller(t.js, t.names.Stream, pr.consumer, t.cfg.partitionBatch(),
			t.cfg.maxAckPending()); err != nil {
			t.rare.Warn().Err(err).Int("partition", pr.p).Msg("pull events")
			pause(pr.wake, errPause)
		}
	}
	if pl == nil {
		return
	}
	defer pl.close() // the loop below ends only once its last request has ended
	defer pr.inflight.Wait()
	for !pr.stopping.Load() {
		if err := pl.pull(func(msg *nats.Msg) { t.dispatch(pr, msg, queues) }); err != nil {
			t.rare.Warn().Err(err).Int("partition", pr.p).Msg("pull events")
			pause(pr.wake, errPause)
		}
	}
}

// dispatch hands one pulled event to the worker of its conversation; when
// the partition's lease is lost it naks it instead (see handBack).
func (t *Task) dispatch(pr *partRun, msg *nats.Msg, queues []chan job) {
	j := newJob(msg, pr)
	if pr.lost.Load() && !t.lastDelivery(j) {
		t.nak(j.msg)
		return
	}
	pr.inflight.Add(1)
	queues[workerOf(j.convID(), len(queues))] <- j
}

// workerOf maps a conversation to one of n workers. It takes the hash bits
// above the partition's: every conversation of a partition has the same
// ConvHash modulo mq.Partitions, so the low bits would crowd a partition
// onto a few workers.
func workerOf(convID string, n int) int {
	return int(mq.ConvHash(convID) / mq.Partitions % uint32(n))
}

// nak asks for msg again at once: another instance, or this one later, gets
// it without waiting out its ack wait.
func (t *Task) nak(msg eventMsg) {
	if err := msg.Nak(); err != nil {
		t.rare.Warn().Err(err).Msg("nak event")
	}
}
