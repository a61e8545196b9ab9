package app

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/resonance-im/resonance/gateway"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Closes the client began have no CloseReason; they share the closes
// counter under these labels, which no reason of the IDL lowercases to.
const (
	closeLabelClient    = "client_closed"
	closeLabelConnError = "conn_error"
)

// gatewayCollector exports gateway.Stats at scrape time, so the gateway's hot
// path keeps plain atomic counters and pays nothing for Prometheus.
type gatewayCollector struct {
	stats func() gateway.Stats // Gateway.Stats; a test passes its own

	open, accepted, upgrades, refused, closes, framesIn, framesOut *prometheus.Desc
	sendBatches, batchedSends, sendFallbacks, latePositionsDropped *prometheus.Desc
}

func newGatewayCollector(stats func() gateway.Stats) *gatewayCollector {
	return &gatewayCollector{
		stats: stats,
		open: prometheus.NewDesc("resonance_gateway_connections",
			"Client connections open now.", nil, nil),
		accepted: prometheus.NewDesc("resonance_gateway_accepted_total",
			"Client connections accepted.", nil, nil),
		upgrades: prometheus.NewDesc("resonance_gateway_websocket_upgrades_total",
			"Successful WebSocket handshakes.", nil, nil),
		refused: prometheus.NewDesc("resonance_gateway_handshakes_refused_total",
			"HTTP requests on the client port answered with an error.", nil, nil),
		closes: prometheus.NewDesc("resonance_gateway_closes_total",
			"Closed connections, by the reason sent to the client, or client_closed and "+
				"conn_error for those the client ended.", []string{"reason"}, nil),
		framesIn: prometheus.NewDesc("resonance_gateway_frames_in_total",
			"Frames received from clients, by opcode.", []string{"op"}, nil),
		framesOut: prometheus.NewDesc("resonance_gateway_frames_out_total",
			"Frames written to clients, by opcode.", []string{"op"}, nil),
		sendBatches: prometheus.NewDesc("resonance_gateway_send_batches_total",
			"SendRuns calls to logic, each carrying the runs of SENDs that connections had queued.",
			nil, nil),
		batchedSends: prometheus.NewDesc("resonance_gateway_batched_sends_total",
			"SENDs carried by SendRuns calls; divided by the calls, the coalescing.", nil, nil),
		sendFallbacks: prometheus.NewDesc("resonance_gateway_send_batch_fallbacks_total",
			"SendRuns calls a logic without SendRuns (an older release) refused; their "+
				"SENDs went as one Send each.", nil, nil),
		latePositionsDropped: prometheus.NewDesc("resonance_gateway_late_positions_dropped_total",
			"DELIVERED and MARK_READ requests (one each) queued by connections that closed, "+
				"not confirmed applied by logic: their queue was full, the shutdown deadline "+
				"passed, their call failed, or the LOGIN they followed never completed; not "+
				"those logic refused as invalid.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *gatewayCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.open, c.accepted, c.upgrades, c.refused, c.closes, c.framesIn, c.framesOut,
		c.sendBatches, c.batchedSends, c.sendFallbacks, c.latePositionsDropped,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. Every close reason is reported,
// zero included, so rate() works from the first scrape.
func (c *gatewayCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(st.Open))
	ch <- prometheus.MustNewConstMetric(c.accepted, prometheus.CounterValue, float64(st.Accepted))
	ch <- prometheus.MustNewConstMetric(c.sendBatches, prometheus.CounterValue,
		float64(st.SendBatches))
	ch <- prometheus.MustNewConstMetric(c.batchedSends, prometheus.CounterValue,
		float64(st.BatchedSends))
	ch <- prometheus.MustNewConstMetric(c.sendFallbacks, prometheus.CounterValue,
		float64(st.SendBatchFallbacks))
	ch <- prometheus.MustNewConstMetric(c.latePositionsDropped, prometheus.CounterValue,
		float64(st.LatePositionsDropped))
	ch <- prometheus.MustNewConstMetric(c.upgrades, prometheus.CounterValue, float64(st.Upgrades))
	ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue,
		float64(st.HandshakesRefused))
	// Reasons are dense from 0 in the IDL; the first unnamed one ends them.
	for reason := protocol.CloseReason(0); reason.String() != "<UNSET>"; reason++ {
		ch <- prometheus.MustNewConstMetric(c.closes, prometheus.CounterValue,
			float64(st.Closes[reason]), strings.ToLower(reason.String()))
	}
	ch <- prometheus.MustNewConstMetric(c.closes, prometheus.CounterValue,
		float64(st.ClientCloses), closeLabelClient)
	ch <- prometheus.MustNewConstMetric(c.closes, prometheus.CounterValue,
		float64(st.ConnErrors), closeLabelConnError)
	// Only opcodes of the IDL reach the counters, so the label stays bounded.
	for op, n := range st.FramesIn {
		ch <- prometheus.MustNewConstMetric(c.framesIn, prometheus.CounterValue, float64(n),
			strings.ToLower(op.String()))
	}
	for op, n := range st.FramesOut {
		ch <- prometheus.MustNewConstMetric(c.framesOut, prometheus.CounterValue, float64(n),
			strings.ToLower(op.String()))
	}
}
