package app

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/resonance-im/resonance/gateway"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

func TestGatewayCollector_ClosesByReason(t *testing.T) {
	stats := gateway.Stats{
		Closes:               map[protocol.CloseReason]uint64{protocol.CloseReason_KICKED: 2},
		ClientCloses:         3,
		ConnErrors:           4,
		FramesOut:            map[protocol.Op]uint64{protocol.Op_CLOSE: 5},
		SendBatches:          6,
		BatchedSends:         70,
		LatePositionsDropped: 8,
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(newGatewayCollector(func() gateway.Stats { return stats }))
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).
		ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()

	for _, want := range []string{
		`resonance_gateway_closes_total{reason="kicked"} 2`,
		`resonance_gateway_closes_total{reason="client_closed"} 3`,
		`resonance_gateway_closes_total{reason="conn_error"} 4`,
		`resonance_gateway_closes_total{reason="overloaded"} 0`,
		`resonance_gateway_frames_out_total{op="close"} 5`,
		`resonance_gateway_send_batches_total 6`,
		`resonance_gateway_batched_sends_total 70`,
		`resonance_gateway_late_positions_dropped_total 8`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
