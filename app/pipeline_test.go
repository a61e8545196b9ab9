package app

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// A client that pipelines its SENDs on one connection gets every ack in
// order, with consecutive seqs; the gateway carries runs of them to logic in
// SendRuns calls; the peer gets each message once, in order.
func TestEndToEnd_PipelinedSends(t *testing.T) {
	cfg := baseConfig(t, RoleAll)
	cfg.Gateway.FrameRate = -1 // the point is a fast sender, not its budget
	sys := startSystem(t, cfg)
	addr := sys.GatewayAddr().String()
	alice, bob := register(t, addr, "alice", "phone"), register(t, addr, "bob", "laptop")
	conv := p2p(alice.id, bob.id)
	// window stays within the requests a connection may have waiting.
	const total, window = 200, 64

	var ids []uint32
	frame := func(dst []byte) []byte {
		i := len(ids)
		alice.next++
		ids = append(ids, alice.next)
		return codec.AppendFrame(dst, protocol.Op_SEND, 0, alice.next, textSend(
			fmt.Sprintf("p%03d", i), bob.id, "", fmt.Sprintf("message %03d", i)))
	}
	var first []byte
	for range window {
		first = frame(first)
	}
	writeRaw(t, alice.rawConn, first) // in one write: the sends queue together
	for i := range total {
		ack := readAck(t, alice.rawConn, ids[i])
		if ack.Seq != int64(i+1) || ack.ConvId != conv || ack.Duplicate {
			t.Fatalf("SEND %d acked %+v, want seq %d in %s", i, ack, i+1, conv)
		}
		if len(ids) < total {
			writeRaw(t, alice.rawConn, frame(nil))
		}
	}

	for i := range total {
		m := readPush(t, bob.rawConn).Message
		if want := fmt.Sprintf("message %03d", i); m.Seq != int64(i+1) ||
			string(m.Content) != want {
			t.Fatalf("push %d is seq %d %q, want seq %d %q", i, m.Seq, m.Content, i+1, want)
		}
	}
	expectQuiet(t, bob.rawConn)

	batches := metricValue(t, sys, "resonance_gateway_send_batches_total")
	sends := metricValue(t, sys, "resonance_gateway_batched_sends_total")
	t.Logf("%v SendRuns calls carried %v of the %d sends", batches, sends, total)
	if batches == 0 || sends <= batches || sends != total {
		t.Fatalf("%v SendRuns calls carried %v of %d sends; want all, in fewer calls",
			batches, sends, total)
	}
	calls := metricValue(t, sys,
		`resonance_gateway_logic_call_seconds_count{method="SendRuns",outcome="ok"}`)
	if calls != batches {
		t.Fatalf("logic call metric counts %v SendRuns calls, the gateway %v", calls, batches)
	}
}

func writeRaw(t *testing.T, rc *rawConn, b []byte) {
	t.Helper()
	if _, err := rc.conn.Write(b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// readAck reads the next frame, which must be the SEND_ACK of id.
func readAck(t *testing.T, rc *rawConn, id uint32) *protocol.SendResp {
	t.Helper()
	h, body, err := rc.read()
	if err != nil {
		t.Fatalf("waiting for the ack of %d: %v", id, err)
	}
	if h.Op != protocol.Op_SEND_ACK || h.RequestID != id || h.Flags&codec.FlagError != 0 {
		t.Fatalf("got %v id %d flags %d, want the SEND_ACK of %d", h.Op, h.RequestID,
			h.Flags, id)
	}
	var ack protocol.SendResp
	if err := codec.ReadBody(body, &ack); err != nil {
		t.Fatalf("ack of %d: %v", id, err)
	}
	return &ack
}

// readPush reads the next frame, which must be a PUSH of a message.
func readPush(t *testing.T, rc *rawConn) *protocol.PushMsg {
	t.Helper()
	h, body, err := rc.read()
	if err != nil {
		t.Fatalf("waiting for a push: %v", err)
	}
	if h.Op != protocol.Op_PUSH {
		t.Fatalf("got %v id %d, want a PUSH", h.Op, h.RequestID)
	}
	var p protocol.PushMsg
	if err := codec.ReadBody(body, &p); err != nil || p.Message == nil {
		t.Fatalf("push: %+v, %v", p, err)
	}
	return &p
}

// expectQuiet fails t if rc receives anything within half a second: a push
// in flight would arrive by then on loopback.
func expectQuiet(t *testing.T, rc *rawConn) {
	t.Helper()
	if len(rc.buf) > 0 {
		t.Fatalf("%d more bytes buffered", len(rc.buf))
	}
	_ = rc.conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if n, err := rc.conn.Read(make([]byte, 1)); n > 0 || !isTimeout(err) {
		t.Fatalf("read %d more bytes (%v), want nothing", n, err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(interface{ Timeout() bool })
	return ok && ne.Timeout()
}

// metricValue returns the value of the sample named series (name and
// labels, as exposed) on sys's /metrics.
func metricValue(t *testing.T, sys *System, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + sys.HTTPAddr().String() + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read /metrics: %v", err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("/metrics has no %s", series)
	return 0
}
