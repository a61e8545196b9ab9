package gateway

import (
	"context"
	"testing"

	"github.com/gobwas/ws"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
	"github.com/resonance-im/resonance/kitex_gen/pushrpc"
)

// BenchmarkGateway_HeartbeatBatch measures the loop's own path: 64
// coalesced heartbeats decoded and answered with one write. Allocations
// include the test client's.
func BenchmarkGateway_HeartbeatBatch(b *testing.B) {
	// No frame rate limit: the loop sends far more than a client may.
	h := startGateway(b, Config{FrameRate: -1})
	c := h.dial(b)
	var batch []byte
	for i := uint32(1); i <= 64; i++ {
		batch = codec.AppendFrame(batch, protocol.Op_HEARTBEAT, 0, i, nil)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		c.writeRaw(batch)
		for range 64 {
			if _, err := c.tryRead(5e9); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkGateway_PushFanout measures one Push call to 8 connections of one
// user, through Kitex, with every client reading its frame.
func BenchmarkGateway_PushFanout(b *testing.B) {
	h := startGateway(b, Config{})
	const fanout = 8
	clients := make([]*testClient, fanout)
	targets := make([]*pushrpc.Target, fanout)
	for i := range clients {
		clients[i] = h.dial(b)
		clients[i].login("alice", 1)
		targets[i] = &pushrpc.Target{ConnId: h.logic.connOf("alice").ConnId, UserId: 1}
	}
	frame := codec.EncodeFrame(protocol.Op_PUSH, 0, 0,
		&protocol.PushMsg{Message: &common.Message{Content: make([]byte, 200)}})
	cli := h.pushClient(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req := &pushrpc.PushReq{Targets: targets, Frame: frame}
		resp, err := cli.Push(context.Background(), req)
		if err != nil || resp.Delivered != fanout {
			b.Fatalf("push: %+v %v", resp, err)
		}
		for _, c := range clients {
			if _, err := c.tryRead(5e9); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkGateway_PushFanoutWS is PushFanout to WebSocket clients: the
// frame and its WebSocket header are shared, one writev per connection.
func BenchmarkGateway_PushFanoutWS(b *testing.B) {
	h := startGateway(b, Config{})
	const fanout = 8
	clients := make([]*wsClient, fanout)
	targets := make([]*pushrpc.Target, fanout)
	for i := range clients {
		clients[i] = h.dialWS(b)
		clients[i].login("alice", 1)
		targets[i] = &pushrpc.Target{ConnId: h.logic.connOf("alice").ConnId, UserId: 1}
	}
	frame := codec.EncodeFrame(protocol.Op_PUSH, 0, 0,
		&protocol.PushMsg{Message: &common.Message{Content: make([]byte, 200)}})
	cli := h.pushClient(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req := &pushrpc.PushReq{Targets: targets, Frame: frame}
		resp, err := cli.Push(context.Background(), req)
		if err != nil || resp.Delivered != fanout {
			b.Fatalf("push: %+v %v", resp, err)
		}
		for _, c := range clients {
			c.read()
		}
	}
}

// BenchmarkWSParse parses one masked WebSocket binary frame carrying a SEND
// frame, as a browser sends it: header, checks and unmasking in place. Each
// round copies the masked bytes back first (the parse unmasks them).
func BenchmarkWSParse(b *testing.B) {
	body := codec.EncodeFrame(protocol.Op_SEND, 1, 0, &protocol.SendReq{
		ClientMsgId: "c-0001", ToUserId: 2, ContentType: common.ContentType_TEXT,
		Content: []byte("hello from a browser, about as long as a chat line")})
	masked := maskedFrame(ws.OpBinary, true, body)
	buf := make([]byte, len(masked))
	var r wsReader
	b.SetBytes(int64(len(masked)))
	b.ReportAllocs()
	for b.Loop() {
		copy(buf, masked)
		m, n, ok, err := r.next(buf, 1<<16)
		if err != nil || !ok || n != len(masked) || len(m.payload) != len(body) {
			b.Fatalf("next = %d bytes, ok %v, %v", n, ok, err)
		}
	}
}
