package task

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudwego/kitex/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/internal/mq"
	"github.com/resonance-im/resonance/internal/mqtest"
	"github.com/resonance-im/resonance/internal/route"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/event"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
	"github.com/resonance-im/resonance/kitex_gen/pushrpc"
	"github.com/resonance-im/resonance/kitex_gen/pushrpc/push"
)

// env is one test's embedded NATS, JetStream names and route table.
type env struct {
	js     jetstream.JetStream
	names  mq.Names
	routes *route.Memory
	dial   func(name string) (*nats.Conn, error)
}

// newEnv connects to the NATS server named by RESONANCE_TEST_NATS_URL, or
// else starts an embedded one, with names unique to the test; the stream
// and the lease bucket are deleted at cleanup.
func newEnv(t *testing.T) *env {
	t.Helper()
	dial := mqtest.Dialer(t)
	en := &env{names: mq.NewNames(fmt.Sprintf("t%d", time.Now().UnixNano())),
		routes: route.NewMemory(time.Minute), dial: dial}
	en.js = en.connect(t)
	t.Cleanup(func() {
		for _, stream := range []string{en.names.Stream, en.names.LeaseStream()} {
			mqtest.DeleteStream(t, en.js, stream)
		}
	})
	return en
}

// connect opens another connection to the test's NATS, closed at cleanup
// (registered before the caller's, so it closes after them).
func (en *env) connect(t *testing.T) jetstream.JetStream {
	t.Helper()
	return mqtest.Connect(t, en.dial, t.Name())
}

// testConfig is small and quick: short waits so retries and lease
// handovers happen in the test. A lease that lapses breaks order in the
// tests that check it, so the TTL leaves room for a loaded machine, more
// under the race detector (see raceEnabled).
func testConfig() Config {
	cfg := Config{Workers: 8, MaxDeliver: 3, AckWait: 2 * time.Second,
		PushTimeout: time.Second, BatchSize: 32, LeaseTTL: 3 * time.Second,
		pushCallsInFlight: testCallsInFlight}
	if raceEnabled {
		cfg.LeaseTTL = 10 * time.Second
	}
	return cfg
}

// runningTask is a Task started by startTask; stop ends it and waits.
type runningTask struct {
	task *Task
	stop func()
}

func startTask(t *testing.T, en *env, cfg Config, routes route.Table) *runningTask {
	t.Helper()
	if routes == nil {
		routes = en.routes
	}
	// A connection of its own, as a task process has.
	return startTaskDeps(t, cfg, Deps{Log: testLog(t), JS: en.connect(t), MQ: en.names,
		Routes: routes})
}

// startTaskDeps starts a task on deps and waits until it is ready; prepare
// functions see it before it runs.
func startTaskDeps(t *testing.T, cfg Config, deps Deps, prepare ...func(*Task)) *runningTask {
	t.Helper()
	tk, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	for _, fn := range prepare {
		fn(tk)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tk.Run(ctx) }()
	select {
	case <-tk.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("Run before ready: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("task not ready after 10s")
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &runningTask{task: tk, stop: stop}
}

// owned returns the partitions the task holds.
func (rt *runningTask) owned() []int { return rt.task.bal.ownedPartitions() }

// pushed returns how many events the task pushed.
func (rt *runningTask) pushed() float64 { return testutil.ToFloat64(rt.task.metrics.pushed) }

// publish sends ev as logic does: Thrift binary with a message id, on the
// subject of its conversation's partition.
func (en *env) publish(t *testing.T, ev *event.MessageEvent) {
	t.Helper()
	buf := make([]byte, ev.BLength())
	ev.FastWriteNocopy(buf, nil)
	en.publishOn(t, en.names.MessageSubject(ev.Message.ConvId), buf,
		fmt.Sprintf("msg-%d", ev.Message.MsgId))
}

// publishKick sends ev as logic does on a replaced login.
func (en *env) publishKick(t *testing.T, ev *event.KickEvent) {
	t.Helper()
	buf := make([]byte, ev.BLength())
	ev.FastWriteNocopy(buf, nil)
	en.publishOn(t, en.names.KickSubject(), buf, fmt.Sprintf("kick-%s-%d", ev.Gateway, ev.ConnId))
}

// publishRaw sends data on partition 0, as logic's relay does with a
// payload it cannot decode.
func (en *env) publishRaw(t *testing.T, data []byte, id string) {
	t.Helper()
	en.publishOn(t, en.names.PartitionSubject(0), data, id)
}

func (en *env) publishOn(t *testing.T, subject string, data []byte, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := en.js.Publish(ctx, subject, data, jetstream.WithMsgID(id))
	if err != nil {
		t.Fatalf("publish %s: %v", id, err)
	}
}

func (en *env) putRoute(t *testing.T, r route.Route) {
	t.Helper()
	if _, err := en.routes.Put(context.Background(), r); err != nil {
		t.Fatal(err)
	}
}

// newEvent builds the event of message seq of conv from sender to recipients.
func newEvent(conv string, seq int64, recipients []int64, origin route.Route) *event.MessageEvent {
	return &event.MessageEvent{
		Message: &common.Message{
			MsgId: 1000 + seq, ConvId: conv, Seq: seq, SenderId: origin.UserID,
			ClientMsgId: fmt.Sprintf("c-%d", seq), ContentType: common.ContentType_TEXT,
			Content: []byte(fmt.Sprintf("hello %d", seq)), SendTimeMs: 1700000000000 + seq,
			SenderDevice: origin.DeviceID,
			// Empty, not nil: a decoded list is, so a pushed copy compares
			// equal with reflect.DeepEqual.
			Mentions: []int64{},
		},
		Recipients:    recipients,
		OriginGateway: origin.Gateway,
		OriginConnId:  origin.ConnID,
	}
}

// pushCall is one Push request a stub gateway received.
type pushCall struct {
	conns []int64
	frame []byte
}

// gatewayMode is how a stub gateway behaves; the zero value is healthy.
type gatewayMode struct {
	stall bool          // never answer until the test ends
	delay time.Duration // answer after this long
	held  bool          // answer once the test calls release
	// failHeld, with held, fails the calls released instead of answering.
	failHeld bool
}

// stubGateway is a real Kitex Push server recording what it is asked to push.
type stubGateway struct {
	addr  string
	svr   server.Server
	delay time.Duration
	block chan struct{} // when non-nil, calls wait on it (a stalled gateway)
	// held, when non-nil, holds calls until release closes it.
	held        chan struct{}
	failHeld    bool
	releaseOnce sync.Once
	// pushes counts the Push and PushBatch calls begun, stalled ones
	// included.
	pushes atomic.Int64

	mu sync.Mutex
	// batches holds the frames of each push (a Push call or a req of a
	// PushBatch call), in order.
	batches []int
	// pushBatches holds the reqs of each PushBatch call, in call order.
	pushBatches []int
	calls       []pushCall
	conns       map[int64][][]byte // frames per connection, in arrival order
	kicks       []*pushrpc.KickReq
}

func startGateway(t *testing.T, mode gatewayMode) *stubGateway {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &stubGateway{addr: ln.Addr().String(), delay: mode.delay, conns: make(map[int64][][]byte)}
	if mode.stall {
		g.block = make(chan struct{})
	}
	if mode.held {
		g.held = make(chan struct{})
		g.failHeld = mode.failHeld
	}
	svr := push.NewServer(g, server.WithListener(ln),
		server.WithExitWaitTime(100*time.Millisecond))
	g.svr = svr
	go func() { _ = svr.Run() }()
	t.Cleanup(func() {
		if g.block != nil {
			close(g.block)
		}
		g.release()
		_ = svr.Stop()
	})
	return g
}

// down stops the gateway's server, as a gateway process that died: calls
// to it fail from then on.
func (g *stubGateway) down() { _ = g.svr.Stop() }

// release lets the calls of a held gateway go, and those that come later.
func (g *stubGateway) release() {
	g.releaseOnce.Do(func() {
		if g.held != nil {
			close(g.held)
		}
	})
}

// Push implements pushrpc.Push.
func (g *stubGateway) Push(ctx context.Context, req *pushrpc.PushReq) (*pushrpc.PushResp, error) {
	g.pushes.Add(1)
	if err := g.stall(ctx); err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.record(req), nil
}

// PushBatch implements pushrpc.Push as a gateway does: each req as its Push
// call, in order.
func (g *stubGateway) PushBatch(ctx context.Context,
	reqs []*pushrpc.PushReq) ([]*pushrpc.PushResp, error) {
	g.pushes.Add(1)
	if err := g.stall(ctx); err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pushBatches = append(g.pushBatches, len(reqs))
	resps := make([]*pushrpc.PushResp, len(reqs))
	for i, req := range reqs {
		resps[i] = g.record(req)
	}
	return resps, nil
}

// stall holds a call as the gateway's mode says: a stalled gateway fails
// it once the test ends or ctx does, a held one answers it (or fails it:
// failHeld) once released, a slow one delays it.
func (g *stubGateway) stall(ctx context.Context) error {
	if g.block != nil {
		select {
		case <-g.block:
		case <-ctx.Done():
		}
		return errors.New("stalled")
	}
	if g.held != nil {
		<-g.held
		if g.failHeld {
			return errors.New("failed on release")
		}
	}
	if g.delay > 0 {
		time.Sleep(g.delay) // a slow gateway, not a wait for a condition
	}
	return nil
}

// record notes the frames of req as pushed to its targets; g.mu is held.
func (g *stubGateway) record(req *pushrpc.PushReq) *pushrpc.PushResp {
	frames := req.Frames
	if len(frames) == 0 {
		frames = []*pushrpc.PushFrame{{Frame: req.Frame}}
	}
	g.batches = append(g.batches, len(frames))
	// A batch is recorded as the calls its frames would have been alone,
	// each without the connection it skips.
	for _, f := range frames {
		call := pushCall{frame: append([]byte(nil), f.Frame...)}
		for _, tg := range req.Targets {
			if tg.ConnId == f.SkipConn {
				continue
			}
			call.conns = append(call.conns, tg.ConnId)
			g.conns[tg.ConnId] = append(g.conns[tg.ConnId], call.frame)
		}
		g.calls = append(g.calls, call)
	}
	return &pushrpc.PushResp{Delivered: int32(len(req.Targets))}
}

// Kick implements pushrpc.Push, recording the request; a stalled gateway
// records it and then never answers.
func (g *stubGateway) Kick(ctx context.Context, req *pushrpc.KickReq) (*pushrpc.PushResp, error) {
	g.mu.Lock()
	g.kicks = append(g.kicks, req)
	g.mu.Unlock()
	if g.block != nil {
		select {
		case <-g.block:
		case <-ctx.Done():
		}
		return nil, errors.New("stalled")
	}
	return &pushrpc.PushResp{Delivered: int32(len(req.Targets))}, nil
}

func (g *stubGateway) kicksCopy() []*pushrpc.KickReq {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]*pushrpc.KickReq(nil), g.kicks...)
}

func (g *stubGateway) framesOf(conn int64) [][]byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([][]byte(nil), g.conns[conn]...)
}

func (g *stubGateway) callsCopy() []pushCall {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]pushCall(nil), g.calls...)
}

// deadAddr returns a loopback address nothing listens on: a port opened and
// closed by the test.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// decodePush decodes a pushed frame back to its PushMsg.
func decodePush(t *testing.T, frame []byte) *protocol.PushMsg {
	t.Helper()
	h, body, n, err := codec.Decoder{}.Decode(frame)
	if err != nil || n != len(frame) {
		t.Fatalf("decode frame: n=%d of %d, err=%v", n, len(frame), err)
	}
	if h.Op != protocol.Op_PUSH || h.RequestID != 0 || h.Flags != 0 {
		t.Fatalf("header = %+v, want PUSH with request id 0 and no flags", h)
	}
	msg := protocol.NewPushMsg()
	if err := codec.ReadBody(body, msg); err != nil {
		t.Fatal(err)
	}
	return msg
}

// consumerSettled reports whether every partition consumer has nothing
// pending and nothing unacked.
func (en *env) consumerSettled(t *testing.T) bool {
	t.Helper()
	for p := range mq.Partitions {
		if !en.durableSettled(t, en.names.PartitionConsumer(p)) {
			return false
		}
	}
	return true
}

// durableSettled is consumerSettled for the durable consumer named durable.
func (en *env) durableSettled(t *testing.T, durable string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := en.js.Consumer(ctx, en.names.Stream, durable)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Not NumRedelivered: NATS 2.9 keeps counting a redelivered event after
	// its ack or term; newer servers count only unacked ones, which
	// NumAckPending covers.
	return info.NumPending == 0 && info.NumAckPending == 0
}

// fakeJS satisfies jetstream.JetStream for tests of New, which never calls it.
type fakeJS struct{ jetstream.JetStream }

func newNamesForTest() mq.Names { return mq.NewNames("t") }

// settled returns consumerSettled as a condition for waitFor.
func (en *env) settled(t *testing.T) func() bool {
	return func() bool { return en.consumerSettled(t) }
}

// semverAtLeast reports whether version ("2.9.10") is at least major.minor.
func semverAtLeast(version string, major, minor int) bool {
	var ma, mi int
	if _, err := fmt.Sscanf(version, "%d.%d", &ma, &mi); err != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// testLog is zerolog.Nop unless RESONANCE_TEST_TASK_LOG is set, which
// writes info and above to the test's log.
func testLog(t *testing.T) zerolog.Logger {
	if os.Getenv("RESONANCE_TEST_TASK_LOG") == "" {
		return zerolog.Nop()
	}
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
}
