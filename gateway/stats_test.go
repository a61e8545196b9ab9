package gateway

import (
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/resonance-im/resonance/internal/testwait"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

func TestGateway_CountsCloseFramesOut(t *testing.T) {
	h := startGateway(t, Config{})
	bad := []byte("not a frame at all")

	c := h.dial(t)
	c.writeRaw(bad)
	c.expectClose(protocol.CloseReason_PROTOCOL_ERROR)

	wc := h.dialWS(t)
	wc.writeFrame(ws.OpBinary, true, bad)
	wc.expectClose(protocol.CloseReason_PROTOCOL_ERROR, ws.StatusProtocolError)

	// A refused handshake is answered in HTTP: no CLOSE frame leaves.
	rawUpgrade(t, h.gw.Addr().String(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n")

	// While draining, a new connection is refused at open, before it has
	// any state of its own.
	h.gw.loopsMu.Lock()
	h.gw.draining = true
	h.gw.loopsMu.Unlock()
	h.dial(t).expectClose(protocol.CloseReason_SERVER_SHUTDOWN)

	if n := h.gw.Stats().FramesOut[protocol.Op_CLOSE]; n != 3 {
		t.Fatalf("CLOSE frames out counted %d, want 3", n)
	}
}

func TestGateway_CountsClientCloses(t *testing.T) {
	cases := []struct {
		name        string
		close       func(t *testing.T, h *harness)
		wantClosed  uint64 // ClientCloses after the case
		wantErrored uint64 // ConnErrors after the case
	}{
		{name: "tcp end of stream", wantClosed: 1, close: func(t *testing.T, h *harness) {
			c := h.dial(t)
			c.heartbeat()
			_ = c.conn.Close()
		}},
		{name: "websocket close frame", wantClosed: 1, close: func(t *testing.T, h *harness) {
			c := h.dialWS(t)
			c.writeFrame(ws.OpClose, true, ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))
			c.expectWSClose(ws.StatusNormalClosure)
		}},
		{name: "tcp reset", wantErrored: 1, close: func(t *testing.T, h *harness) {
			c := h.dial(t)
			c.heartbeat()
			// No linger: the close sends a reset instead of the end of stream.
			_ = c.conn.(*net.TCPConn).SetLinger(0)
			_ = c.conn.Close()
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := startGateway(t, Config{})
			tc.close(t, h)
			testwait.For(t, 5*time.Second, "the close counted", func() bool {
				st := h.gw.Stats()
				return st.Open == 0 && st.ClientCloses == tc.wantClosed &&
					st.ConnErrors == tc.wantErrored
			})
			if closes := h.gw.Stats().Closes; len(closes) != 0 {
				t.Fatalf("server closes counted %v, want none", closes)
			}
		})
	}
}

// heartbeat makes a round trip, so that the gateway has the connection open
// before the test ends it.
func (c *testClient) heartbeat() {
	c.t.Helper()
	c.send(protocol.Op_HEARTBEAT, 1, &protocol.HeartbeatReq{})
	var ack protocol.HeartbeatResp
	c.expectReply(protocol.Op_HEARTBEAT_ACK, 1, &ack)
}
