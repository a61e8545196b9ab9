package task

import (
	"context"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/internal/run"
	"github.com/resonance-im/resonance/kitex_gen/event"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Ephemeral events (event.NotifyEvent, event.PresenceEvent) arrive on core
// NATS through a queue group, so that each is handled by one task instance.
// They are never retried: a NOTIFY that cannot be pushed now is dropped,
// and the client repairs from the next event or a sync.
const (
	// notifyWorkers is how many NOTIFY deliveries run at once per instance,
	// so that a dead gateway (each call waiting PushTimeout) does not hold
	// up the others.
	notifyWorkers = 16
	// notifyQueueLen bounds the NOTIFY deliveries waiting for a worker;
	// past it events are dropped and counted.
	notifyQueueLen = 1024
)

// notifyJob is one NOTIFY to deliver.
type notifyJob struct {
	notify        *protocol.Notify
	recipients    []int64
	originGateway string
	originConn    int64
}

// startEphemeral subscribes to the ephemeral subjects and starts the NOTIFY
// workers and, with a watch store, the presence flusher, all tracked by g
// and ending when ctx is done. The subscriptions are registered with the
// server when it returns.
func (t *Task) startEphemeral(ctx context.Context, g *run.Group) error {
	nc := t.js.Conn()
	notifySub, err := nc.QueueSubscribe(t.names.NotifySubject(), t.names.EphemeralQueue(),
		t.onNotify)
	if err != nil {
		return fmt.Errorf("task: subscribe %s: %w", t.names.NotifySubject(), err)
	}
	subs := []*nats.Subscription{notifySub}
	if t.presence != nil {
		presenceSub, err := nc.QueueSubscribe(t.names.PresenceSubject(),
			t.names.EphemeralQueue(), t.onPresence)
		if err != nil {
			_ = notifySub.Unsubscribe()
			return fmt.Errorf("task: subscribe %s: %w", t.names.PresenceSubject(), err)
		}
		subs = append(subs, presenceSub)
		g.Go(t.log, "task-presence", func() { t.runPresence(ctx) })
	}
	if err := nc.Flush(); err != nil {
		t.log.Warn().Err(err).Msg("flush ephemeral subscriptions")
	}
	context.AfterFunc(ctx, func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	})
	work := context.WithoutCancel(ctx)
	for i := range notifyWorkers {
		g.Go(t.log, "task-notify-"+strconv.Itoa(i), func() {
			for {
				select {
				case <-ctx.Done():
					return // queued NOTIFYs are dropped: they are ephemeral
				case j := <-t.notifyQueue:
					t.deliverNotify(work, j)
				}
			}
		})
	}
	return nil
}

// onNotify decodes a NotifyEvent and queues it. It runs on the
// subscription's goroutine and never blocks.
func (t *Task) onNotify(msg *nats.Msg) {
	ev := event.NewNotifyEvent()
	if err := codec.ReadBody(msg.Data, ev); err != nil || ev.Notify == nil {
		t.ephMetrics.notify("undecodable")
		t.rare.Warn().Err(err).Int("bytes", len(msg.Data)).Msg("undecodable notify event dropped")
		return
	}
	t.enqueueNotify(notifyJob{notify: ev.Notify, recipients: ev.Recipients,
		originGateway: ev.OriginGateway, originConn: ev.OriginConnId})
}

// enqueueNotify hands j to a worker, or drops it when they are all behind.
func (t *Task) enqueueNotify(j notifyJob) {
	select {
	case t.notifyQueue <- j:
	default:
		t.ephMetrics.notify("dropped")
		t.rare.Warn().Int("recipients", len(j.recipients)).Msg("notify queue full; dropped")
	}
}

// deliverNotify pushes one NOTIFY frame, encoded once, to every live
// connection of the recipients but the origin, one Push call per gateway.
func (t *Task) deliverNotify(ctx context.Context, j notifyJob) {
	if len(j.recipients) == 0 {
		return
	}
	mark := t.view.mark() // before the lookup: see gatewayView
	lookupCtx, cancel := context.WithTimeout(ctx, t.cfg.PushTimeout)
	routes, err := t.routes.Lookup(lookupCtx, j.recipients)
	cancel()
	if err != nil {
		t.ephMetrics.notify("lookup_error")
		t.rare.Warn().Err(err).Int("recipients", len(j.recipients)).
			Msg("notify route lookup failed; dropped")
		return
	}
	targets := groupTargets(routes, j.originGateway, j.originConn)
	t.skipVanished(ctx, targets, mark, 0)
	t.ephMetrics.notify("pushed")
	if len(targets) == 0 {
		return
	}
	frame := codec.EncodeFrame(protocol.Op_NOTIFY, 0, 0, j.notify)
	for _, r := range t.gateways.pushAll(ctx, frame, targets) {
		t.metrics.observePush(r, r.took)
		t.lapsedCallFailed(r.gateway, r.err)
		if r.err != nil {
			t.rare.Warn().Err(r.err).Str("gateway", r.gateway).Int("targets", r.targets).
				Msg("gateway notify push failed; dropped")
		}
	}
}

// ephMetrics are the series of ephemeral events; labels are outcomes only.
type ephMetrics struct {
	notifies *prometheus.CounterVec // NOTIFY events, by outcome
	presence *prometheus.CounterVec // presence events, by outcome
}

func newEphMetrics(reg prometheus.Registerer) *ephMetrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &ephMetrics{
		notifies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "resonance_task_notify_total",
			Help: "NOTIFY events by outcome: pushed, dropped (queue full), " +
				"lookup_error, undecodable.",
		}, []string{"outcome"}),
		presence: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "resonance_task_presence_events_total",
			Help: "Presence events by outcome: received, coalesced (a check was pending), " +
				"dropped (too many pending), undecodable, announced (changed: watchers told), " +
				"unchanged, error.",
		}, []string{"outcome"}),
	}
	reg.MustRegister(m.notifies, m.presence)
	return m
}

func (m *ephMetrics) notify(outcome string) { m.notifies.WithLabelValues(outcome).Inc() }

func (m *ephMetrics) presenceOutcome(outcome string, n int) {
	m.presence.WithLabelValues(outcome).Add(float64(n))
}
