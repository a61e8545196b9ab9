package gateway

import (
	"testing"

	"github.com/gobwas/ws"

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
