package gateway

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/internal/syncbuf"
	"github.com/resonance-im/resonance/internal/testwait"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
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

// After a mass disconnect, the positions of the closed connections go
// through goroutines of their own: they take none of the workers that live
// connections need, and a full pool drops none of them. They used to take
// pool workers: here the first connection's positions held the last free
// worker, so the live connection was answered BUSY, and the second's found
// the pool full and were dropped, logged at debug only.
func TestGateway_LatePositionsLeaveThePoolToLiveConnections(t *testing.T) {
	gate := make(chan struct{})
	h := startGatewayWith(t, Config{Workers: 3}, func(s *stubLogic) { s.positionGate = gate })
	live := h.dial(t)
	live.login("bob", 1)

	// Each closing connection holds a worker with a slow SEND, so its
	// DELIVERED is still queued when it closes.
	for i, seq := range []int64{7, 8} {
		c := h.dial(t)
		c.login("alice", 1)
		c.send(protocol.Op_SEND, 2, &protocol.SendReq{ToUserId: 2, Content: []byte("slow")})
		h.logic.awaitEntered(t, "a slow SEND")
		c.send(protocol.Op_DELIVERED, 3, &protocol.DeliveredReq{
			Positions: []*protocol.ConvPos{{ConvId: "p2p:1:2", Seq: seq}}})
		_ = c.conn.Close()
		testwait.For(t, 5*time.Second, "the connection's close handled", func() bool {
			return len(h.logic.disconnected()) == i+1
		})
	}

	// Two workers run the slow SENDs; the third is the live connection's.
	live.send(protocol.Op_GET_USER, 2, &protocol.GetUserReq{UserId: 2})
	var e protocol.ErrorResp
	if f := live.expectReply(protocol.Op_GET_USER_ACK, 2, &e); f.Flags&codec.FlagError != 0 {
		t.Fatalf("the live connection's GET_USER was answered %v: %s", e.Code, e.Message)
	}
	close(h.logic.release)
	close(gate)
	testwait.For(t, 5*time.Second, "both connections' positions applied", func() bool {
		positions, _ := h.logic.reported()
		return len(positions) == 2
	})
	positions, _ := h.logic.reported()
	seqs := []int64{positions[0].Seq, positions[1].Seq}
	slices.Sort(seqs)
	if !slices.Equal(seqs, []int64{7, 8}) {
		t.Fatalf("positions applied with seqs %v, want 7 and 8", seqs)
	}
	if n := h.gw.Stats().LatePositionsDropped; n != 0 {
		t.Fatalf("%d positions dropped", n)
	}
}

// Positions that find the queue full are dropped, counted in Stats and
// logged at warn with the connection and user ids.
func TestGateway_CountsLatePositionsDroppedWhenTheQueueIsFull(t *testing.T) {
	var logs syncbuf.Buffer
	g, err := New(Config{Addr: "127.0.0.1:0"}, Deps{Log: zerolog.New(&logs),
		Logic: idleLogicClient(t), PushListener: listen(t)})
	if err != nil {
		t.Fatal(err)
	}
	g.rpcCtx = context.Background()
	g.late.init(g, 1) // no sender: the queue holds one batch
	mark := request{op: protocol.Op_MARK_READ, body: &protocol.MarkReadReq{ConvId: "c", Seq: 1}}
	sess := &logicrpc.Session{UserId: 1}
	g.late.submit(g, &lateBatch{connID: 10, sess: sess, reqs: []request{mark}})
	g.late.submit(g, &lateBatch{connID: 11, sess: sess, reqs: []request{mark, mark}})

	if n := g.Stats().LatePositionsDropped; n != 2 {
		t.Fatalf("%d positions dropped, want the second connection's 2", n)
	}
	line := logs.String()
	for _, want := range []string{`"level":"warn"`, `"conn":11`, `"user":1`, `"positions":2`} {
		if !strings.Contains(line, want) {
			t.Errorf("drop logged as %s, lacking %s", line, want)
		}
	}
}

// A connection's late MARK_READs reach logic in their order, and only after
// the request its worker was running when it closed: logic tells the
// user's other devices of each read position it applies, so a lower one
// applied last would be told last. They used to start at the close, beside
// that request: logic applied 6 and 7 while 5 still ran, and 5 last.
func TestGateway_AppliesLatePositionsAfterTheRunningRequest(t *testing.T) {
	h := startGatewayWith(t, Config{}, func(s *stubLogic) { s.holdRead = 5 })
	c := h.dial(t)
	c.login("alice", 1)
	gc := h.gw.conns.get(h.logic.connOf("alice").ConnId)
	for i, seq := range []int64{5, 6, 7} {
		c.send(protocol.Op_MARK_READ, uint32(2+i), &protocol.MarkReadReq{
			ConvId: "p2p:1:2", Seq: seq})
		if i == 0 {
			h.logic.awaitEntered(t, "the first MARK_READ")
		}
	}
	_ = c.conn.Close()
	// Once the close is handled, each late MARK_READ is either kept for the
	// worker or handed out to be sent; those handed out reach logic while
	// 5 is still held there.
	testwait.For(t, 5*time.Second, "the close to keep or send 6 and 7", func() bool {
		gc.mu.Lock()
		closed, kept := gc.closed, len(gc.queue)
		gc.mu.Unlock()
		sent := h.logic.positionCallCount() - 1 // the held 5
		return closed && kept+sent == 2
	})
	close(h.logic.release)

	testwait.For(t, 5*time.Second, "the three MARK_READs applied", func() bool {
		_, reads := h.logic.reported()
		return len(reads) == 3
	})
	_, reads := h.logic.reported()
	var seqs []int64
	for _, r := range reads {
		seqs = append(seqs, r.Seq)
	}
	if !slices.Equal(seqs, []int64{5, 6, 7}) {
		t.Fatalf("MARK_READs applied in the order %v, want 5 6 7", seqs)
	}
}

// A late position whose call fails is dropped: counted in Stats and logged
// at warn with the connection and user ids. A failure that may pass in a
// moment (logic unreachable, or shedding with BUSY or UNAVAILABLE) is tried
// again, latePositionAttempts calls in all; a refusal of the position
// itself is no drop. Failed calls used to be logged only, and counted
// nowhere, so the counter showed no loss while logic was down.
func TestGateway_CountsLatePositionsWhoseCallFails(t *testing.T) {
	busy := &common.BizError{Code: common.ErrorCode_BUSY, Message: "shedding"}
	for _, tc := range []struct {
		name        string
		errs        []error // the stub's positionErrs
		unreachable bool    // a logic client aimed at a closed port
		timeout     bool    // the stub holds every call past RequestTimeout
		applied     int     // of the batch's two requests
		dropped     uint64
		calls       int // made to the stub
	}{
		{name: "logic fails", errs: []error{errors.New("db: down"), errors.New("db: down")},
			dropped: 2, calls: 2},
		{name: "logic unreachable", unreachable: true, dropped: 2},
		{name: "logic times out", timeout: true, dropped: 2, calls: 2},
		{name: "logic busy a moment", errs: []error{busy, &common.BizError{
			Code: common.ErrorCode_UNAVAILABLE, Message: "db down"}}, applied: 2, calls: 4},
		{name: "logic busy for longer", errs: []error{busy, busy, busy}, applied: 1,
			dropped: 1, calls: 4},
		{name: "logic refuses", errs: []error{&common.BizError{
			Code: common.ErrorCode_FORBIDDEN, Message: "not a member"}}, applied: 1, calls: 2},
		{name: "logic refuses a signed-out device", errs: []error{errStubSignedOut,
			errStubSignedOut}, calls: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stub := newStubLogic()
			stub.positionErrs = tc.errs
			cfg := Config{Addr: "127.0.0.1:0"}
			if tc.timeout {
				stub.positionGate = make(chan struct{})
				t.Cleanup(func() { close(stub.positionGate) })
				cfg.RequestTimeout = 50 * time.Millisecond
			}
			cli := startStubLogic(t, stub)
			if tc.unreachable {
				cli = idleLogicClient(t)
			}
			var logs syncbuf.Buffer
			g, err := New(cfg, Deps{Log: zerolog.New(&logs), Logic: cli,
				PushListener: listen(t)})
			if err != nil {
				t.Fatal(err)
			}
			g.rpcCtx = context.Background()
			g.late.init(g, 1)
			g.late.retryWait = time.Millisecond

			sess := &logicrpc.Session{UserId: 1}
			g.late.send(g, &lateBatch{connID: 10, sess: sess, reqs: []request{
				{op: protocol.Op_MARK_READ, body: &protocol.MarkReadReq{ConvId: "c", Seq: 6}},
				{op: protocol.Op_DELIVERED, body: &protocol.DeliveredReq{
					Positions: []*protocol.ConvPos{{ConvId: "c", Seq: 7}}}},
			}})

			positions, reads := stub.reported()
			if n := len(positions) + len(reads); n != tc.applied {
				t.Errorf("%d requests applied, want %d", n, tc.applied)
			}
			if n := g.Stats().LatePositionsDropped; n != tc.dropped {
				t.Errorf("%d requests dropped, want %d", n, tc.dropped)
			}
			stub.mu.Lock()
			calls := stub.positionCalls
			stub.mu.Unlock()
			if calls != tc.calls {
				t.Errorf("%d calls reached logic, want %d", calls, tc.calls)
			}
			line := logs.String()
			if tc.dropped == 0 {
				if strings.Contains(line, "dropped") {
					t.Errorf("logged a drop: %s", line)
				}
				return
			}
			for _, want := range []string{`"level":"warn"`, `"conn":10`, `"user":1`,
				`"positions":1`, `"error":`} {
				if !strings.Contains(line, want) {
					t.Errorf("drop logged as %s, lacking %s", line, want)
				}
			}
		})
	}
}

// positionsBehindLogin has c send a token LOGIN of device, then a
// DELIVERED of seq that queues behind it.
func (c *testClient) positionsBehindLogin(device string, seq int64) {
	c.t.Helper()
	c.send(protocol.Op_LOGIN, 1, &protocol.LoginReq{Token: stubToken, DeviceId: device})
	c.send(protocol.Op_DELIVERED, 2, &protocol.DeliveredReq{
		Positions: []*protocol.ConvPos{{ConvId: "p2p:1:2", Seq: seq}}})
}

// A client that pipelines its positions behind its LOGIN and closes before
// the LOGIN_ACK still has them applied when logic logs it in: the session
// the login made sends them, after the route logic recorded is removed.
// The close used to drop them, uncounted, since the connection had no
// session yet when it closed.
func TestGateway_AppliesLatePositionsOfALoginAnsweredAfterTheClose(t *testing.T) {
	h := startGateway(t, Config{})
	letLogin := make(chan struct{})
	h.logic.onLogin(func(req *protocol.LoginReq, _ *logicrpc.ConnInfo) {
		if req.DeviceId == "late" {
			h.logic.entered <- struct{}{}
			<-letLogin
		}
	})
	// The LOGIN waits in the batcher, then goes in a batch call: a call
	// the close cannot take it back from.
	holders := holdLoginCalls(t, h)
	c := h.dial(t)
	c.positionsBehindLogin("late", 7)
	waitLoginsQueued(t, h, 1)
	close(h.logic.release)
	h.logic.awaitEntered(t, "the LOGIN in a batch call")
	_ = c.conn.Close()
	testwait.For(t, 5*time.Second, "the connection's close handled", func() bool {
		return h.gw.Stats().Open == int64(len(holders))
	})
	close(letLogin)

	testwait.For(t, 5*time.Second, "the late DELIVERED applied", func() bool {
		positions, _ := h.logic.reported()
		return len(positions) == 1
	})
	if p, _ := h.logic.reported(); p[0].Seq != 7 {
		t.Fatalf("DELIVERED applied as %+v", p[0])
	}
	if n := h.gw.Stats().LatePositionsDropped; n != 0 {
		t.Fatalf("%d positions dropped", n)
	}
}

// Positions queued behind a LOGIN that the close ends before logic answers
// it have no session to be sent for: they are counted as dropped. They used
// to vanish without a count or a log.
func TestGateway_CountsLatePositionsOfALoginTheCloseEnded(t *testing.T) {
	h := startGateway(t, Config{})
	holdLoginCalls(t, h)
	c := h.dial(t)
	c.positionsBehindLogin("late", 7)
	waitLoginsQueued(t, h, 1)
	_ = c.conn.Close() // the LOGIN leaves the batcher unsent

	testwait.For(t, 5*time.Second, "the late DELIVERED counted dropped", func() bool {
		return h.gw.Stats().LatePositionsDropped == 1
	})
	close(h.logic.release)
	if positions, _ := h.logic.reported(); len(positions) != 0 {
		t.Fatalf("positions applied without a login: %+v", positions)
	}
}

// A LOGIN sent on a connection already logged in is refused at once, with
// no login in flight: the positions queued behind it are the logged-in
// connection's and are applied at the close like any others.
func TestGateway_AppliesLatePositionsQueuedBehindASecondLogin(t *testing.T) {
	h := startGateway(t, Config{})
	c := h.dial(t)
	c.login("alice", 1)
	c.send(protocol.Op_SEND, 2, &protocol.SendReq{ToUserId: 2, Content: []byte("slow")})
	h.logic.awaitEntered(t, "the slow SEND")
	c.positionsBehindLogin("late", 7)
	_ = c.conn.Close()
	testwait.For(t, 5*time.Second, "the connection's close handled", func() bool {
		return len(h.logic.disconnected()) == 1
	})
	close(h.logic.release)

	testwait.For(t, 5*time.Second, "the late DELIVERED applied", func() bool {
		positions, _ := h.logic.reported()
		return len(positions) == 1
	})
}
