package logic

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics exposes the service's own counters, read when scraped: the
// outbox (events waiting for JetStream, published, failed) and the group
// commit (commits and the writes in them, whose ratio is the batching).
type metrics struct {
	s *Service

	queued, published, failed, commits, writes *prometheus.Desc
	plainCommits, plainFallbacks               *prometheus.Desc
}

func newMetrics(s *Service) *metrics {
	return &metrics{
		s: s,
		queued: prometheus.NewDesc("resonance_logic_outbox_queued",
			"Committed events waiting for the publisher (the relay takes the rest).", nil, nil),
		published: prometheus.NewDesc("resonance_logic_events_published_total",
			"Message events acked by JetStream, by path: normal after commit, relay for "+
				"outbox rows left behind.", []string{"path"}, nil),
		failed: prometheus.NewDesc("resonance_logic_events_publish_failed_total",
			"Publishes that failed; their outbox rows wait for the relay.", nil, nil),
		commits: prometheus.NewDesc("resonance_logic_commits_total",
			"Group commits of sequenced writes.", nil, nil),
		writes: prometheus.NewDesc("resonance_logic_committed_writes_total",
			"Sequenced writes in those commits; divided by commits, the batching.", nil, nil),
		plainCommits: prometheus.NewDesc("resonance_logic_plain_commits_total",
			"Group commits of sends written with a statement per batch or conversation "+
				"(the rest took a savepoint per write).", nil, nil),
		plainFallbacks: prometheus.NewDesc("resonance_logic_plain_fallbacks_total",
			"Batches of sends whose statement per batch failed (a retried client id, a "+
				"first message, a packet limit), run again with a savepoint per write.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.queued, m.published, m.failed, m.commits, m.writes,
		m.plainCommits, m.plainFallbacks} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	st := &m.s.stats
	ch <- prometheus.MustNewConstMetric(m.queued, prometheus.GaugeValue,
		float64(len(m.s.outboxQueue)))
	ch <- prometheus.MustNewConstMetric(m.published, prometheus.CounterValue,
		float64(st.published.Load()), "normal")
	ch <- prometheus.MustNewConstMetric(m.published, prometheus.CounterValue,
		float64(st.relayed.Load()), "relay")
	ch <- prometheus.MustNewConstMetric(m.failed, prometheus.CounterValue,
		float64(st.failed.Load()))
	ch <- prometheus.MustNewConstMetric(m.commits, prometheus.CounterValue,
		float64(st.batches.Load()))
	ch <- prometheus.MustNewConstMetric(m.writes, prometheus.CounterValue,
		float64(st.batchedWrites.Load()))
	ch <- prometheus.MustNewConstMetric(m.plainCommits, prometheus.CounterValue,
		float64(st.plainBatches.Load()))
	ch <- prometheus.MustNewConstMetric(m.plainFallbacks, prometheus.CounterValue,
		float64(st.plainFallbacks.Load()))
}
