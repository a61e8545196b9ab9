// Package task owns the push role: it consumes message events from NATS
// JetStream, looks up the routes of their recipients and pushes one encoded
// frame to each gateway holding a recipient's connection, through that
// gateway's Kitex Push service. It also consumes kick events and asks the
// named gateway to close a replaced connection (kick.go). With a gateway
// registry it drops the clients of gateways that vanished and skips pushes
// and kicks to them instead of waiting out a timeout (registry.go, view.go).
// When configured, it also turns message events into offline push
// notifications posted to a webhook, through a consumer of their own
// (offline.go, coalesce.go, webhook.go, notified.go).
//
// Ordering: events are partitioned by conversation over Config.Workers
// workers, each handling its events one at a time, so one task instance
// pushes the events of a conversation in stream order. A redelivered event
// (nak, lost ack) may arrive after later ones; clients notice the seq gap
// and sync. Instances sharing the consumer do not order among themselves.
package task

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/internal/mq"
	"github.com/resonance-im/resonance/internal/registry"
	"github.com/resonance-im/resonance/internal/route"
	"github.com/resonance-im/resonance/internal/run"
)

// Deps are the parts a Task uses but does not own: it closes none of them.
type Deps struct {
	Log    zerolog.Logger
	JS     jetstream.JetStream
	MQ     mq.Names
	Routes route.Table
	// Metrics is where task registers its series; nil keeps them unexported.
	Metrics prometheus.Registerer
	// Registry, when set, says which gateways are gone, so that their
	// clients are dropped and pushes to them skipped at once instead of
	// timing out; nil tries every gateway a route names.
	Registry registry.Registry
	// Watches, when set, is the presence watch store logic writes; task
	// then announces presence changes to watchers. Nil: presence events
	// are not consumed.
	Watches route.Watches
	// Logic answers OfflineTargets; required when Config.Notify is enabled.
	Logic OfflineLister
}

// Task consumes message events and pushes them to gateways. Build it with
// New and start it with Run; a Task runs once.
type Task struct {
	cfg      Config
	js       jetstream.JetStream
	names    mq.Names
	routes   route.Table
	log      zerolog.Logger
	rare     zerolog.Logger // sampled: anomalies that may repeat per event
	gateways *gatewayClients
	view     *gatewayView // nil without a registry
	metrics  *metrics
	notify   *notifier // nil when notifications are off
	ready    chan struct{}
	started  atomic.Bool

	// Ephemeral events (notify.go, presence.go).
	ephMetrics  *ephMetrics
	notifyQueue chan notifyJob
	presence    *presenceTracker // nil without Deps.Watches
}

// New checks cfg (zero fields take the Default values) and deps.
func New(cfg Config, deps Deps) (*Task, error) {
	cfg.applyDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	switch {
	case deps.JS == nil:
		return nil, fmt.Errorf("%w: JS", ErrMissingDeps)
	case deps.Routes == nil:
		return nil, fmt.Errorf("%w: Routes", ErrMissingDeps)
	case deps.MQ.Stream == "" || deps.MQ.Subject == "" || deps.MQ.Consumer == "":
		return nil, fmt.Errorf("%w: MQ names %+v", ErrMissingDeps, deps.MQ)
	case cfg.Notify.Enabled() && deps.Logic == nil:
		return nil, fmt.Errorf("%w: Logic (notifications are on)", ErrMissingDeps)
	}
	log := deps.Log.With().Str("component", "task").Logger()
	t := &Task{
		cfg:      cfg,
		js:       deps.JS,
		names:    deps.MQ,
		routes:   deps.Routes,
		log:      log,
		rare:     log.Sample(&zerolog.BurstSampler{Burst: 5, Period: 10 * time.Second}),
		gateways: newGatewayClients(cfg.PushTimeout, cfg.Workers, cfg.InternalSecret),
		view:     newGatewayView(deps.Registry),
		metrics:  newMetrics(deps.Metrics),
		ready:    make(chan struct{}),

		ephMetrics:  newEphMetrics(deps.Metrics),
		notifyQueue: make(chan notifyJob, notifyQueueLen),
		presence:    newPresenceTracker(cfg.PresenceWindow, deps.Watches),
	}
	if cfg.Notify.Enabled() {
		t.notify = newNotifier(cfg.Notify, deps.Logic, deps.Routes, deps.Metrics, log, t.rare)
	}
	return t, nil
}

// Ready returns a channel closed once the stream and the durable consumer
// are set up and consuming has begun. It stays open if Run fails first.
func (t *Task) Ready() <-chan struct{} { return t.ready }

// DeadLetterSubject returns the subject poison events are republished on:
// the events subject prefix plus ".dlq". The stream keeps it (it captures
// every subject under the prefix) while the consumer, filtered to the
// message subject, never takes it back.
func (t *Task) DeadLetterSubject() string { return deadLetterSubject(t.names) }

func deadLetterSubject(n mq.Names) string { return n.Subject + ".dlq" }

// Run consumes events until ctx is done, then stops consuming, lets the
// workers finish the events already queued to them, and returns nil. It
// returns an error only when setting up the stream or consumer fails.
func (t *Task) Run(ctx context.Context) error {
	if !t.started.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	cons, err := t.setup(ctx)
	if err != nil {
		return err
	}
	kicks, err := t.setupKicks(ctx)
	if err != nil {
		return err
	}
	var notify jetstream.Consumer
	if t.notify != nil {
		if notify, err = t.setupNotify(ctx); err != nil {
			return err
		}
	}
	iter, err := cons.Messages(jetstream.PullMaxMessages(t.cfg.BatchSize))
	if err != nil {
		return fmt.Errorf("task: consume %s: %w", t.names.Consumer, err)
	}
	// Drain (not Stop) on shutdown: Next then hands back what the client
	// already buffered, which we nak for prompt redelivery.
	stopIter := context.AfterFunc(ctx, iter.Drain)
	defer stopIter()

	var g run.Group
	if err := t.startEphemeral(ctx, &g); err != nil {
		iter.Stop()
		return err // nothing started: it fails before starting goroutines
	}
	queues := t.startWorkers(ctx, &g)
	g.Go(t.log, "task-sweeper", func() { t.sweepClients(ctx) })
	g.Go(t.log, "task-kicks", func() { t.consumeKicks(ctx, kicks) })
	g.Go(t.log, "task-pending", func() { t.metrics.pollPending(ctx, cons, 5*time.Second) })
	g.Go(t.log, "task-registry", func() { t.watchRegistry(ctx) })
	if notify != nil {
		g.Go(t.log, "task-notify", func() { t.consumeNotify(ctx, notify) })
	}
	close(t.ready)
	t.log.Info().Str("consumer", t.names.Consumer).Int("workers", t.cfg.Workers).
		Msg("task consuming")

	unstarted := t.dispatch(ctx, iter, queues)
	for _, q := range queues {
		close(q)
	}
	g.Wait()
	t.gateways.closeAll()
	t.handBack(unstarted)
	t.flushAcks()
	t.log.Info().Str("consumer", t.names.Consumer).Msg("task stopped")
	return nil
}

// setup ensures the stream and creates or updates the durable consumer.
func (t *Task) setup(ctx context.Context) (jetstream.Consumer, error) {
	stream, err := mq.EnsureStream(ctx, t.js, t.names)
	if err != nil {
		return nil, err
	}
	cc := jetstream.ConsumerConfig{
		Durable:       t.names.Consumer,
		FilterSubject: t.names.MessageSubject(),
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       t.cfg.AckWait,
		BackOff:       t.cfg.backoffSchedule(),
		MaxDeliver:    t.cfg.MaxDeliver,
		MaxAckPending: t.cfg.maxAckPending(),
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("task: consumer %s on %s: %w",
			t.names.Consumer, t.names.Stream, err)
	}
	return cons, nil
}

// flushAcks waits until the acks and naks sent reached the server, so that a
// restarted task does not see acked events again. Acks are sent without
// waiting for a reply; one flush at the end costs one round trip in all.
func (t *Task) flushAcks() {
	ctx, cancel := context.WithTimeout(context.Background(), t.cfg.PushTimeout)
	defer cancel()
	if err := t.js.Conn().FlushWithContext(ctx); err != nil {
		t.log.Warn().Err(err).Msg("flush acks at shutdown")
	}
}

// sweepClients drops idle gateway clients until ctx is done.
func (t *Task) sweepClients(ctx context.Context) {
	tick := time.NewTicker(t.gateways.idleTTL / 2)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if n := t.gateways.sweep(); n > 0 {
				t.log.Debug().Int("dropped", n).Msg("idle gateway clients dropped")
			}
		}
	}
}

// errPause is how long dispatch waits after a consume error (a missed
// heartbeat, NATS reconnecting) so that a persistent fault does not spin.
const errPause = 250 * time.Millisecond

// dispatch reads events and hands each to the worker of its conversation
// until the iterator is closed by ctx. It returns the events received after
// ctx was done, in stream order, for handBack.
//
// Backpressure: the send to a full worker queue blocks, which stops reading
// for every partition; the client buffers at most BatchSize events and
// JetStream stops delivering at MaxAckPending, so memory stays bounded and
// a slow gateway slows delivery rather than growing queues. Nothing is
// dropped: a blocked event waits its turn or, past its ack wait, is
// redelivered.
func (t *Task) dispatch(ctx context.Context, iter jetstream.MessagesContext,
	queues []chan job) []jetstream.Msg {
	var unstarted []jetstream.Msg
	for {
		msg, err := iter.Next()
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			return unstarted
		}
		if err != nil {
			t.rare.Warn().Err(err).Str("consumer", t.names.Consumer).Msg("consume error")
			pause(ctx, errPause)
			continue
		}
		if ctx.Err() != nil {
			// Bounded by MaxAckPending: the server sends no more than that.
			unstarted = append(unstarted, msg)
			continue
		}
		j := newJob(msg)
		queues[partition(j.convID(), len(queues))] <- j
	}
}

// handBack naks the events no worker started, so that another instance or
// our restart gets them at once instead of after their ack wait. It runs
// after the iterator is closed, so that a nak is not redelivered to our own
// draining subscription.
//
// Known limit: the server may still hold a pull request of ours; it tries
// the first naked event there, finds no one listening, and queues it again
// behind the others, so one or two handed-back events can arrive after later
// ones of their conversation. Clients treat that like any seq gap (sync,
// drop the duplicate). Waiting out the ack wait instead would keep order
// but delay every handed-back event by AckWait. NATS servers before 2.10
// deliver such an event into that pull request instead, so it comes back
// only after AckWait: late, never lost.
func (t *Task) handBack(msgs []jetstream.Msg) {
	for _, m := range msgs {
		if err := m.Nak(); err != nil {
			t.rare.Warn().Err(err).Msg("nak unstarted event at shutdown")
		}
	}
	if len(msgs) > 0 {
		t.log.Info().Int("events", len(msgs)).Msg("unstarted events handed back")
	}
}

// pause waits for d or until ctx is done.
func pause(ctx context.Context, d time.Duration) {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
	case <-tm.C:
	}
}

// partition maps a conversation id to a worker with FNV-1a, which is stable
// across processes and allocation-free.
func partition(convID string, n int) int {
	h := uint32(2166136261)
	for i := 0; i < len(convID); i++ {
		h ^= uint32(convID[i])
		h *= 16777619
	}
	return int(h % uint32(n))
}
