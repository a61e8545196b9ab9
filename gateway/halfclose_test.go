package gateway

import (
	"net"
	"testing"
	"time"

	"github.com/resonance-im/resonance/internal/testwait"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// TestGateway_HalfCloseEndsTheConnection pins what a client that shuts
// down its sending side (a TCP half-close) meets: the end of its stream is
// its leaving. The gateway closes the connection at once, counted as the
// client's close, and a reply still with logic when it read the end is
// never written, though the request ran (docs/protocol.md, Closing and
// reconnecting).
func TestGateway_HalfCloseEndsTheConnection(t *testing.T) {
	h := startGateway(t, Config{})
	c := h.dial(t)
	c.login("alice", 1)
	c.send(protocol.Op_SEND, 2, &protocol.SendReq{ClientMsgId: "m1", ToUserId: 2,
		ContentType: common.ContentType_TEXT, Content: []byte("slow")})
	h.logic.awaitEntered(t, "the slow SEND")
	if err := c.conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 5*time.Second, "the half-close to end the connection", func() bool {
		st := h.gw.Stats()
		return st.ClientCloses == 1 && st.Open == 0
	})
	close(h.logic.release)
	c.expectEOF()
	testwait.For(t, 5*time.Second, "the SEND to run", func() bool {
		h.logic.mu.Lock()
		defer h.logic.mu.Unlock()
		return len(h.logic.sendUsers) == 1
	})
}
