// Package task owns the push role: it consumes message events from NATS
// JetStream, looks up the routes of their recipients and pushes one encoded
// frame to each gateway holding a recipient's connection, through that
// gateway's Kitex Push service. Pushes to one gateway that come while
// calls to it are in flight wait and go out together in one PushBatch call
// (pushbatch.go). It also consumes kick events and asks the named gateway
// to close a replaced connection (kick.go). With a gateway registry it
// drops the clients of gateways that vanished and skips pushes and kicks to
// them instead of waiting out a timeout (registry.go, view.go).
// When configured, it also turns message events into offline push
// notifications posted to a webhook, through a consumer of their own
// (offline.go, coalesce.go, webhook.go, notified.go).
//
// Partitions: logic publishes a conversation's message events on one of
// mq.Partitions subjects, each read by a durable consumer of its own
// (partition.go). Instances share the partitions through leases in a
// JetStream key-value bucket (lease.go): one instance at a time owns a
// partition, each takes a fair share, and a partition changes hands only
// once its owner has acked everything it pulled (balance.go). Inside an
// instance, events are spread by conversation over Config.Workers workers,
// each handling its events one at a time (worker.go).
//
// Ordering: so, with any number of instances, the events of a conversation
// are handled in stream order, across graceful stops and rebalancing too.
// Logic instances publish independently, so stream order may swap two seqs
// of a conversation; each worker holds an event that comes ahead of its seq
// for a short window (reorder.go), so pushes go out in seq order. A
// redelivered event (a failed route lookup, a lost ack, the unacked events
// of an instance that died) may arrive after later ones; clients notice the
// seq gap and sync.
package task

import (
	"context"
	"fmt"
	"sync"
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
	lapsed   *lapsedGateways
	metrics  *metrics
	notify   *notifier // nil when notifications are off
	ready    chan struct{}
	started  atomic.Bool

	// regDown is when registry reads began failing, zero while they
	// succeed, and regWarned when that was last said (see registryFailed).
	regMu              sync.Mutex
	regDown, regWarned time.Time

	// bal shares the partitions with other instances; set by Run before
	// ready is closed.
	bal *balancer
	// onLease, when set by a test, hears every change of partition
	// ownership (see balancer.hook).
	onLease func(instance string, p int, held bool)

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
	m := newMetrics(deps.Metrics)
	view := newGatewayView(deps.Registry)
	t := &Task{
		cfg:    cfg,
		js:     deps.JS,
		names:  deps.MQ,
		routes: deps.Routes,
		log:    log,
		rare:   log.Sample(&zerolog.BurstSampler{Burst: 5, Period: 10 * time.Second}),
		gateways: newGatewayClients(clientsConfig{timeout: cfg.PushTimeout, conns: cfg.Workers,
			secret: cfg.InternalSecret, metrics: m, log: log, inFlight: cfg.pushCallsInFlight}),
		view:    view,
		lapsed:  newLapsedGateways(view, m.registry.WithLabelValues("lapsed_answering")),
		metrics: m,
		ready:   make(chan struct{}),

		ephMetrics:  newEphMetrics(deps.Metrics),
		notifyQueue: make(chan notifyJob, notifyQueueLen),
		presence:    newPresenceTracker(cfg.PresenceWindow, deps.Watches),
	}
	if cfg.Notify.Enabled() {
		t.notify = newNotifier(cfg.Notify, deps.Logic, deps.Routes, deps.Metrics, log, t.rare)
	}
	return t, nil
}

// Ready returns a channel closed once the stream, the durable consumers and
// the lease bucket are set up and the instance made its first attempt to
// take partitions; owning none (all are held by others) is a healthy
// standby. It stays open if Run fails first.
func (t *Task) Ready() <-chan struct{} { return t.ready }

// DeadLetterSubject returns the subject poison events are republished on:
// the events subject prefix plus ".dlq". The stream keeps it (it captures
// every subject under the prefix) while the consumers, filtered to the
// message subjects, never take it back.
func (t *Task) DeadLetterSubject() string { return deadLetterSubject(t.names) }

func deadLetterSubject(n mq.Names) string { return n.Subject + ".dlq" }

// Run consumes events until ctx is done, then stops pulling, finishes the
// events it pulled, releases its partitions and returns nil. It returns an
// error only when setting up the stream, the consumers or the lease bucket
// fails.
func (t *Task) Run(ctx context.Context) error {
	if !t.started.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	cons, err := t.setupPartitions(ctx)
	if err != nil {
		return err
	}
	leases, err := openLeases(ctx, t.js, t.names, t.cfg.LeaseTTL, t.cfg.SoleInstance)
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
		t.log.Info().Str("webhook", t.notify.cfg.webhookHost()).Msg("offline notifications on")
	}
	t.checkLegacy(ctx)

	var g run.Group
	if err := t.startEphemeral(ctx, &g); err != nil {
		return err // nothing started: it fails before starting goroutines
	}
	queues := t.startWorkers(ctx, &g)
	t.bal = newBalancer(t, leases, cons, queues)
	g.Go(t.log, "task-sweeper", func() { t.sweepClients(ctx) })
	g.Go(t.log, "task-kicks", func() { t.consumeKicks(ctx, kicks) })
	g.Go(t.log, "task-pending", func() { t.metrics.pollPending(ctx, t.bal.consumers, 5*time.Second) })
	g.Go(t.log, "task-registry", func() { t.watchRegistry(ctx) })
	if notify != nil {
		g.Go(t.log, "task-notify", func() { t.consumeNotify(ctx, notify) })
	}
	t.log.Info().Str("instance", leases.id).Str("consumers", t.names.Consumer+"_pNN").
		Int("partitions", mq.Partitions).Int("workers", t.cfg.Workers).Msg("task consuming")

	// Until ctx is done and every owned partition has settled.
	t.bal.run(ctx, func() { close(t.ready) })
	for _, q := range queues {
		close(q)
	}
	g.Wait()
	t.gateways.closeAll()
	t.flushAcks()
	t.log.Info().Str("instance", leases.id).Msg("task stopped")
	return nil
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

// errPause is how long a partition waits after a failed pull (NATS
// reconnecting, a consumer deleted by hand) so that a persistent fault does
// not spin.
const errPause = 250 * time.Millisecond

// pause waits for d or until ctx is done.
func pause(ctx context.Context, d time.Duration) {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
	case <-tm.C:
	}
}
