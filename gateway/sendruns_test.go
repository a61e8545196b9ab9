package gateway

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cloudwego/kitex/client/callopt"
	"github.com/cloudwego/kitex/pkg/remote"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/internal/rpcerr"
	"github.com/resonance-im/resonance/internal/testwait"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc/logic"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// queued returns how many requests wait in the queue of username's
// connection.
func (h *harness) queued(username string) int {
	info := h.logic.connOf(username)
	if info == nil {
		return 0
	}
	c := h.gw.conns.get(info.ConnId)
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue)
}

// sendFrame is a SEND from alice to bob with id and content.
func sendFrame(dst []byte, id uint32, content string) []byte {
	return codec.AppendFrame(dst, protocol.Op_SEND, 0, id, &protocol.SendReq{
		ClientMsgId: fmt.Sprintf("m%d", id), ToUserId: 2, Content: []byte(content)})
}

// holdWorker logs alice in on a new connection and sends SEND 2 "slow",
// which holds the connection's worker inside logic until h.logic.release
// closes, so that what the test sends next queues behind it.
func holdWorker(t *testing.T, h *harness) *testClient {
	t.Helper()
	c := h.dial(t)
	c.login("alice", 1)
	c.writeRaw(sendFrame(nil, 2, "slow"))
	h.logic.awaitEntered(t, "the slow SEND")
	return c
}

// releaseQueued waits until n requests queue on alice's connection, then
// lets the held worker go on.
func releaseQueued(t *testing.T, h *harness, n int) {
	t.Helper()
	testwait.For(t, 5*time.Second, fmt.Sprintf("%d requests queued", n), func() bool {
		return h.queued("alice") == n
	})
	close(h.logic.release)
}

// expectAck reads the SEND_ACK of id and checks its seq.
func (c *testClient) expectAck(id uint32, seq int64) {
	c.t.Helper()
	var ack protocol.SendResp
	c.expectReply(protocol.Op_SEND_ACK, id, &ack)
	if ack.Seq != seq {
		c.t.Fatalf("SEND %d acked with seq %d, want %d", id, ack.Seq, seq)
	}
}

// SENDs queued together on one connection go to logic as one run per
// SendRuns call (a SYNC ends a run), and their replies come back in order,
// one error among them, exactly as one Send each would have answered.
func TestGateway_CoalescesQueuedSends(t *testing.T) {
	h := startGateway(t, Config{})
	c := holdWorker(t, h)
	var stream []byte
	for id := uint32(3); id <= 12; id++ {
		content := "x"
		if id == 6 {
			content = "forbidden"
		}
		stream = sendFrame(stream, id, content)
	}
	stream = codec.AppendFrame(stream, protocol.Op_SYNC, 0, 13,
		&protocol.SyncReq{ConvId: "p2p:1:2"})
	stream = sendFrame(sendFrame(stream, 14, "x"), 15, "x")
	c.writeRaw(stream)
	releaseQueued(t, h, 13)

	c.expectAck(2, 1)
	seq := int64(2)
	for id := uint32(3); id <= 12; id++ {
		if id == 6 {
			e := c.expectError(protocol.Op_SEND_ACK, id, common.ErrorCode_FORBIDDEN)
			if e.Message != "not a member" {
				t.Fatalf("SEND 6 error message %q, want logic's", e.Message)
			}
			continue
		}
		c.expectAck(id, seq)
		seq++
	}
	c.expectReply(protocol.Op_SYNC_ACK, 13, &protocol.SyncResp{})
	c.expectAck(14, seq)
	c.expectAck(15, seq+1)

	if got := h.logic.sendCalls(); !slices.Equal(got, []int{1, 10, 2}) {
		t.Fatalf("SendRuns calls of %v requests, want [1 10 2]", got)
	}
	if st := h.gw.Stats(); st.SendBatches != 3 || st.BatchedSends != 13 {
		t.Fatalf("stats count %d calls of %d sends, want 3 of 13",
			st.SendBatches, st.BatchedSends)
	}
}

// A run longer than logicrpc.MaxSendBatch is cut into calls of at most
// that many, in order.
func TestGateway_SendRunsStopAtTheBound(t *testing.T) {
	const queued = logicrpc.MaxSendBatch + 6
	h := startGateway(t, Config{MaxPending: queued})
	c := holdWorker(t, h)
	var stream []byte
	for i := range uint32(queued) {
		stream = sendFrame(stream, 3+i, "x")
	}
	c.writeRaw(stream)
	releaseQueued(t, h, queued)

	for i := range uint32(queued + 1) {
		c.expectAck(2+i, int64(i+1))
	}
	if got := h.logic.sendCalls(); !slices.Equal(got, []int{1, logicrpc.MaxSendBatch, 6}) {
		t.Fatalf("SendRuns calls of %v requests, want [1 %d 6]", got, logicrpc.MaxSendBatch)
	}
}

// A SendRuns that fails whole answers each of its SENDs with the error a
// lone Send failing so would get; the connection goes on.
func TestGateway_SendRunsFailingWhole(t *testing.T) {
	cases := []struct {
		name    string
		content string // of the middle SEND; the stub fails the call for it
		code    common.ErrorCode
		message string
	}{
		{name: "logic down", content: "crash", code: common.ErrorCode_UNAVAILABLE,
			message: "service unavailable, retry later"},
		{name: "call refused", content: "refuse", code: common.ErrorCode_BUSY,
			message: "shedding"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := startGateway(t, Config{})
			c := holdWorker(t, h)
			c.writeRaw(sendFrame(sendFrame(sendFrame(nil, 3, "x"), 4, tc.content), 5, "x"))
			releaseQueued(t, h, 3)

			c.expectAck(2, 1)
			for id := uint32(3); id <= 5; id++ {
				e := c.expectError(protocol.Op_SEND_ACK, id, tc.code)
				if e.Message != tc.message {
					t.Fatalf("SEND %d error message %q, want %q", id, e.Message, tc.message)
				}
			}
			c.writeRaw(sendFrame(nil, 6, "x"))
			c.expectAck(6, 2)
		})
	}
}

// A logic older than SendRuns refuses it as unknown: the SENDs go as one
// Send each, in order, and so do later runs, without asking again.
func TestGateway_SendRunsFallsBackToSend(t *testing.T) {
	h := startGatewayWith(t, Config{}, func(s *stubLogic) { s.withoutSendRuns = true })
	c := holdWorker(t, h)
	c.writeRaw(sendFrame(sendFrame(sendFrame(nil, 3, "x"), 4, "forbidden"), 5, "x"))
	releaseQueued(t, h, 3)

	c.expectAck(2, 1)
	c.expectAck(3, 2)
	c.expectError(protocol.Op_SEND_ACK, 4, common.ErrorCode_FORBIDDEN)
	c.expectAck(5, 3)
	if st := h.gw.Stats(); st.SendBatchFallbacks != 1 {
		t.Fatalf("%d fallbacks, want 1", st.SendBatchFallbacks)
	}

	// A second run, queued behind another slow SEND, goes as Sends at once.
	h.logic.release = make(chan struct{})
	c.writeRaw(sendFrame(nil, 6, "slow"))
	h.logic.awaitEntered(t, "the second slow SEND")
	c.writeRaw(sendFrame(sendFrame(nil, 7, "x"), 8, "x"))
	releaseQueued(t, h, 2)
	for id, seq := uint32(6), int64(4); id <= 8; id, seq = id+1, seq+1 {
		c.expectAck(id, seq)
	}
	if st := h.gw.Stats(); st.SendBatchFallbacks != 1 || st.SendBatches != 1 {
		t.Fatalf("%d fallbacks of %d batch calls, want 1 of 1", st.SendBatchFallbacks,
			st.SendBatches)
	}
}

// coalescerQueued returns the runs and SENDs waiting in h's SendRuns
// batcher.
func (h *harness) coalescerQueued() (runs, sends int) { return h.gw.sends.Queued() }

// Runs of several connections that come while sendCallsInFlight calls are
// out wait, and go to logic together in one SendRuns call; each connection
// gets its own acks, in order.
func TestGateway_CoalescesRunsAcrossConnections(t *testing.T) {
	h := startGateway(t, Config{})
	for range sendCallsInFlight {
		holdWorker(t, h)
	}
	senders := make([]*testClient, 3)
	for k := range senders {
		senders[k] = h.dial(t)
		senders[k].login("bob", 1)
		var stream []byte
		for i := range uint32(k + 1) {
			stream = sendFrame(stream, 2+i, "x")
		}
		senders[k].writeRaw(stream)
		// Its worker takes what has arrived as one run (all of it, unless
		// the frames came in two reads) and waits in the queue with it.
		testwait.For(t, 5*time.Second, fmt.Sprintf("a run of conn %d queued", k), func() bool {
			runs, _ := h.coalescerQueued()
			return runs == k+1
		})
	}
	close(h.logic.release)

	for k, c := range senders {
		for i := range uint32(k + 1) {
			var ack protocol.SendResp
			c.expectReply(protocol.Op_SEND_ACK, 2+i, &ack)
		}
	}
	calls := h.logic.sendRunCalls()
	if len(calls) <= sendCallsInFlight || len(calls[sendCallsInFlight]) != 3 {
		t.Fatalf("SendRuns calls with runs of %v, want %d lone slow sends, then one call "+
			"with a run of each of the 3 connections", calls, sendCallsInFlight)
	}
	sends := 0
	for _, n := range h.logic.sendCalls()[sendCallsInFlight:] {
		sends += n
	}
	if sends != 6 {
		t.Fatalf("calls after the slow sends carried %d sends, want 6", sends)
	}
}

// sendRun is a run of n SENDs of conn.
func sendRun(conn int64, n int) *logicrpc.SendRun {
	run := &logicrpc.SendRun{Session: &logicrpc.Session{UserId: 1, ConnId: conn}}
	for range n {
		run.Reqs = append(run.Reqs, &protocol.SendReq{ClientMsgId: "m", ToUserId: 2})
	}
	return run
}

// unknownLogic refuses SendRuns as a logic older than it does.
type unknownLogic struct {
	logic.Client // the other methods are not called
}

func (unknownLogic) SendRuns(context.Context, []*logicrpc.SendRun,
	...callopt.Option) ([][]*logicrpc.SendOutcome, error) {
	return nil, remote.NewTransErrorWithMsg(remote.UnknownMethod, "unknown method SendRuns")
}

// A refused call counts one fallback, however many runs it carried; each
// run gets the refusal, which sends its worker to Send.
func TestGateway_CountsASendRunsFallbackPerCall(t *testing.T) {
	g := &Gateway{logic: unknownLogic{}}
	runs := []*logicrpc.SendRun{sendRun(1, 1), sendRun(2, 3), sendRun(3, 2)}
	if _, err := g.callSendRuns(context.Background(), runs); !rpcerr.UnknownMethod(err) {
		t.Fatalf("call answered %v, want the unknown method", err)
	}
	if n := g.stats.sendFallbacks.Load(); n != 1 {
		t.Fatalf("%d fallbacks counted for one refused call of 3 runs, want 1", n)
	}
}
