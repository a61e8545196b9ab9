package gateway

import (
	"testing"
	"time"

	"github.com/resonance-im/resonance/internal/testwait"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// A client that reports its last positions and closes at once still has
// them applied: the DELIVERED and MARK_READ its connection had queued when
// it closed go to logic unanswered; its other queued requests are dropped.
// They used to be dropped too, and the server kept older positions.
func TestGateway_AppliesPositionsQueuedWhenTheConnectionCloses(t *testing.T) {
	h := startGateway(t, Config{})
	c := h.dial(t)
	c.login("alice", 1)
	// A slow SEND holds the connection's worker, so what follows stays
	// queued until the connection has closed.
	c.send(protocol.Op_SEND, 2, &protocol.SendReq{ToUserId: 2, Content: []byte("slow")})
	h.logic.awaitEntered(t, "the slow SEND")
	c.send(protocol.Op_DELIVERED, 3, &protocol.DeliveredReq{
		Positions: []*protocol.ConvPos{{ConvId: "p2p:1:2", Seq: 7}}})
	c.send(protocol.Op_SYNC_CONVS, 4, &protocol.SyncConvsReq{})
	c.send(protocol.Op_MARK_READ, 5, &protocol.MarkReadReq{ConvId: "p2p:1:2", Seq: 6})
	// The frames are in before the close: the gateway reads a stream in
	// order, and the close comes after them.
	_ = c.conn.Close()
	testwait.For(t, 5*time.Second, "the connection's close handled", func() bool {
		return len(h.logic.disconnected()) == 1
	})
	close(h.logic.release)

	testwait.For(t, 5*time.Second, "the late positions applied", func() bool {
		positions, reads := h.logic.reported()
		return len(positions) == 1 && len(reads) == 1
	})
	positions, reads := h.logic.reported()
	if p := positions[0]; p.ConvId != "p2p:1:2" || p.Seq != 7 {
		t.Fatalf("DELIVERED applied as %+v", p)
	}
	if r := reads[0]; r.ConvId != "p2p:1:2" || r.Seq != 6 {
		t.Fatalf("MARK_READ applied as %+v", r)
	}
}
