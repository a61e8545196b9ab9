package task

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are task's Prometheus series. Labels are bounded: outcomes and
// reasons only, never a gateway address, user or conversation.
type metrics struct {
	events      *prometheus.CounterVec   // by outcome: pushed, retried, dead_letter
	pushSeconds *prometheus.HistogramVec // one push to a gateway, by outcome: ok, error
	delivered   prometheus.Counter       // connections a push reached
	pending     *prometheus.GaugeVec     // JetStream backlog, by kind: pending, ack_pending
	partitions  prometheus.Gauge         // partitions this instance owns
	skipped     prometheus.Counter       // gateway calls skipped: the gateway vanished
	registry    *prometheus.GaugeVec     // gateways in the registry, by state
	reorder     *prometheus.CounterVec   // by outcome: held, expired (see reorder.go)
	// pushBatchReqs is the reqs of each PushBatch call (pushbatch.go);
	// pushBatchFallbacks the calls a gateway older than PushBatch refused.
	pushBatchReqs      prometheus.Histogram
	pushBatchFallbacks prometheus.Counter

	// The per-event series, resolved once: a label lookup hashes the values
	// on every call, and these are hit for every event and gateway call.
	pushed, retried, deadLettered prometheus.Counter
	pushOK                        prometheus.Observer
	reorderHeld, reorderExpired   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry() // unregistered: counts, but nobody scrapes
	}
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "resonance_task_events_total",
			Help: "Message events handled, by outcome.",
		}, []string{"outcome"}),
		pushSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "resonance_task_push_seconds",
			Help: "Latency of one push to a gateway, from hand-off to answer: waiting " +
				"behind the calls in flight to that gateway included.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9),
		}, []string{"outcome"}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "resonance_task_push_deliveries_total",
			Help: "Connections that accepted a pushed frame.",
		}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "resonance_task_jetstream_pending",
			Help: "Events of the partitions this instance owns not yet delivered (pending) " +
				"or not yet acked (ack_pending).",
		}, []string{"kind"}),
		partitions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "resonance_task_partitions_owned",
			Help: "Message event partitions whose lease this instance holds.",
		}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "resonance_task_push_skipped_total",
			Help: "Push and kick calls skipped because the registry says the gateway is gone.",
		}),
		registry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "resonance_task_registry_gateways",
			Help: "Gateways in the last registry snapshot, by state (live, vanished), and " +
				"the vanished by a lapsed registration that answer probes (lapsed_answering).",
		}, []string{"state"}),
		reorder: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "resonance_task_reorder_total",
			Help: "Message events held because they came ahead of their conversation's seq " +
				"(held), and reorder windows that ran out with a seq still missing (expired).",
		}, []string{"outcome"}),
	}
	m.pushBatchReqs = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "resonance_task_push_batch_requests",
		Help: "Pushes carried by each PushBatch call: those that queued behind the calls " +
			"in flight to one gateway.",
		Buckets: prometheus.ExponentialBuckets(2, 2, 8), // 2 .. maxBatchReqs
	})
	m.pushBatchFallbacks = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "resonance_task_push_batch_fallbacks_total",
		Help: "PushBatch calls refused by a gateway older than PushBatch; their pushes " +
			"went as Push calls.",
	})
	reg.MustRegister(m.events, m.pushSeconds, m.delivered, m.pending, m.partitions, m.skipped,
		m.registry, m.reorder, m.pushBatchReqs, m.pushBatchFallbacks)
	m.pushed = m.events.WithLabelValues("pushed")
	m.retried = m.events.WithLabelValues("retried")
	m.deadLettered = m.events.WithLabelValues("dead_letter")
	m.pushOK = m.pushSeconds.WithLabelValues("ok")
	m.reorderHeld = m.reorder.WithLabelValues("held")
	m.reorderExpired = m.reorder.WithLabelValues("expired")
	return m
}

func (m *metrics) observePush(r pushResult, took time.Duration) {
	if r.err != nil {
		m.pushSeconds.WithLabelValues("error").Observe(took.Seconds()) // rare
		return
	}
	m.pushOK.Observe(took.Seconds())
	m.delivered.Add(float64(r.resp.GetDelivered()))
}

// pollPending samples the backlog of the consumers owned() returns, summed,
// every period until ctx ends. A partition no instance owns counts nowhere.
func (m *metrics) pollPending(ctx context.Context, owned func() []jetstream.Consumer,
	period time.Duration) {
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		m.samplePending(ctx, owned(), period)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// samplePending sets the pending gauges to the sums over cons; a consumer
// whose info fails leaves the gauges as they were.
func (m *metrics) samplePending(ctx context.Context, cons []jetstream.Consumer,
	timeout time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var pending, ackPending uint64
	for _, c := range cons {
		info, err := c.Info(ctx)
		if err != nil {
			return
		}
		pending += info.NumPending
		ackPending += uint64(info.NumAckPending)
	}
	m.pending.WithLabelValues("pending").Set(float64(pending))
	m.pending.WithLabelValues("ack_pending").Set(float64(ackPending))
}
