package gateway

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// FuzzGatewayInbound writes arbitrary bytes to a real gateway, raw or after
// a WebSocket handshake, and checks that the connection always ends by
// itself (a close or a short deadline) and the gateway keeps
// answering. Each input costs up to one deadline, so run it with a short
// -fuzztime.
func FuzzGatewayInbound(f *testing.F) {
	f.Add(codec.EncodeFrame(protocol.Op_LOGIN, 0, 1,
		&protocol.LoginReq{Username: "alice", Password: "pw"}), false)
	f.Add(codec.EncodeFrame(protocol.Op_HEARTBEAT, 0, 1, nil), true)
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), false)
	f.Add([]byte{0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, true)
	// Short deadlines end every connection soon, logged in or not.
	h := startGateway(f, Config{LoginTimeout: 100 * time.Millisecond,
		HeartbeatInterval: 100 * time.Millisecond, HeartbeatTimeout: 200 * time.Millisecond,
		AcceptRate: -1})
	f.Fuzz(func(t *testing.T, data []byte, overWS bool) {
		var conn net.Conn
		var r io.Reader
		if overWS {
			c := h.dialWS(t)
			conn, r = c.conn, c.r
		} else {
			c := h.dial(t)
			conn, r = c.conn, c.conn
		}
		_, _ = conn.Write(data)
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := io.Copy(io.Discard, r)
		if err != nil && !errors.Is(err, syscall.ECONNRESET) {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal("connection still open 5s after a 200ms deadline")
			}
			t.Fatalf("read: %v", err)
		}
		alive := h.dial(t)
		alive.send(protocol.Op_HEARTBEAT, 1, nil)
		alive.expectReply(protocol.Op_HEARTBEAT_ACK, 1, &protocol.HeartbeatResp{})
	})
}
