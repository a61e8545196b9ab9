package task

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudwego/kitex/server"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/resonance-im/resonance/internal/route"
	"github.com/resonance-im/resonance/internal/rpcauth"
	"github.com/resonance-im/resonance/internal/testwait"
	"github.com/resonance-im/resonance/kitex_gen/pushrpc"
	"github.com/resonance-im/resonance/kitex_gen/pushrpc/push"
)

// pushServerCall is one call a pushServer received: the id of each of its
// reqs (the conn id of the req's first target), in order.
type pushServerCall struct {
	batch bool // PushBatch, else Push
	ids   []int64
}

// pushServer is a real Kitex Push server that can hold the calls it gets
// until the test lets them go, and answers each req with its id (Delivered
// and MissingConns), so that a test can tell which answer reached whom.
// Without PushBatch it is registered as a gateway older than that method.
type pushServer struct {
	addr    string
	entered atomic.Int64 // calls begun, held ones included

	mu    sync.Mutex
	hold  chan struct{} // calls begun wait for it to close; nil: none
	calls []pushServerCall
}

// startPushServer starts a pushServer, with PushBatch unless old, that
// requires secret when set. Held calls are let go at cleanup.

// testCallsInFlight is the coalescers' bound on calls in flight in these
// tests: small, so that a few held calls leave the rest queued.
const testCallsInFlight = 2

func startPushServer(t *testing.T, old bool, secret string) *pushServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &pushServer{addr: ln.Addr().String()}
	opts := append([]server.Option{server.WithListener(ln),
		server.WithExitWaitTime(100 * time.Millisecond)}, rpcauth.ServerOptions(secret)...)
	svr := server.NewServer(opts...)
	info := push.NewServiceInfo()
	if old {
		// The service as a gateway older than PushBatch registers it.
		old := *info
		old.Methods = maps.Clone(info.Methods)
		delete(old.Methods, "PushBatch")
		info = &old
	}
	if err := svr.RegisterService(info, s); err != nil {
		t.Fatal(err)
	}
	go func() { _ = svr.Run() }()
	t.Cleanup(func() {
		s.release()
		_ = svr.Stop()
	})
	return s
}

// holdCalls makes the calls begun from now on wait until release.
func (s *pushServer) holdCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold = make(chan struct{})
}

// release lets the held calls go, and those begun later.
func (s *pushServer) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold != nil {
		close(s.hold)
		s.hold = nil
	}
}

// serve records a call of reqs and answers it once it is let go.
func (s *pushServer) serve(ctx context.Context, batch bool,
	reqs []*pushrpc.PushReq) ([]*pushrpc.PushResp, error) {
	s.mu.Lock()
	hold := s.hold
	s.mu.Unlock()
	s.entered.Add(1)
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	call := pushServerCall{batch: batch}
	resps := make([]*pushrpc.PushResp, len(reqs))
	for i, req := range reqs {
		id := req.Targets[0].ConnId
		call.ids = append(call.ids, id)
		resps[i] = &pushrpc.PushResp{Delivered: int32(id), MissingConns: []int64{id}}
	}
	s.mu.Lock()
	s.calls = append(s.calls, call)
	s.mu.Unlock()
	return resps, nil
}

func (s *pushServer) Push(ctx context.Context, req *pushrpc.PushReq) (*pushrpc.PushResp, error) {
	resps, err := s.serve(ctx, false, []*pushrpc.PushReq{req})
	if err != nil {
		return nil, err
	}
	return resps[0], nil
}

func (s *pushServer) PushBatch(ctx context.Context,
	reqs []*pushrpc.PushReq) ([]*pushrpc.PushResp, error) {
	return s.serve(ctx, true, reqs)
}

func (s *pushServer) Kick(context.Context, *pushrpc.KickReq) (*pushrpc.PushResp, error) {
	return &pushrpc.PushResp{}, nil
}

func (s *pushServer) callsCopy() []pushServerCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// idsSent returns the ids of every req the server answered, in order.
func (s *pushServer) idsSent() []int64 {
	var ids []int64
	for _, c := range s.callsCopy() {
		ids = append(ids, c.ids...)
	}
	return ids
}

// pushOutcome is what one push through gatewayClients returned.
type pushOutcome struct {
	id int64
	r  pushResult
}

// pusher runs pushes through one gatewayClients to one pushServer, each on
// a goroutine of its own as task's workers are.
type pusher struct {
	t    *testing.T
	g    *gatewayClients
	srv  *pushServer
	done chan pushOutcome
}

func newPusher(t *testing.T, srv *pushServer, secret string) *pusher {
	t.Helper()
	// A long timeout: no push in these tests may end by timing out.
	g := newGatewayClients(clientsConfig{timeout: 30 * time.Second, conns: 4, secret: secret,
		inFlight: testCallsInFlight})
	t.Cleanup(g.closeAll)
	return &pusher{t: t, g: g, srv: srv, done: make(chan pushOutcome, 1024)}
}

// start pushes a req whose id is id on ctx.
func (p *pusher) start(ctx context.Context, id int64) {
	req := &pushrpc.PushReq{Targets: []*pushrpc.Target{{ConnId: id, UserId: 1}}}
	go func() { p.done <- pushOutcome{id: id, r: p.g.pushOne(ctx, p.srv.addr, req)} }()
}

// coalescer returns the coalescer of the server's client.
func (p *pusher) coalescer() *pushCoalescer {
	p.t.Helper()
	c, err := p.g.get(p.srv.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	return c.pushes
}

// queued returns how many pushes wait in the queue to be sent.
func (p *pusher) queued() int { return queuedPushes(p.coalescer()) }

// queuedPushes returns how many pushes wait in c's queue to be sent.
func queuedPushes(c *pushCoalescer) int {
	n, _ := c.batches.Queued()
	return n
}

// fillInFlight holds the server's calls and starts pushes 1 and 2, which
// go out at once and stay in flight.
func (p *pusher) fillInFlight() {
	p.t.Helper()
	p.srv.holdCalls()
	for id := int64(1); id <= testCallsInFlight; id++ {
		p.start(context.Background(), id)
	}
	testwait.For(p.t, 5*time.Second, "calls in flight", func() bool {
		return p.srv.entered.Load() == testCallsInFlight
	})
}

// enqueue starts the pushes of ids one at a time, each once the one before
// is queued, so that the queue holds them in that order.
func (p *pusher) enqueue(ctx context.Context, ids ...int64) {
	p.t.Helper()
	for _, id := range ids {
		before := p.queued()
		p.start(ctx, id)
		testwait.For(p.t, 5*time.Second, "push queued", func() bool { return p.queued() == before+1 })
	}
}

// collect waits for n pushes to return and returns their outcomes by id.
func (p *pusher) collect(n int) map[int64]pushResult {
	p.t.Helper()
	out := make(map[int64]pushResult, n)
	for range n {
		select {
		case o := <-p.done:
			out[o.id] = o.r
		case <-time.After(10 * time.Second):
			p.t.Fatalf("%d of %d pushes returned after 10s", len(out), n)
		}
	}
	return out
}

// checkAnswered fails unless every outcome is the server's answer to its
// own req.
func checkAnswered(t *testing.T, outcomes map[int64]pushResult) {
	t.Helper()
	for id, r := range outcomes {
		if r.err != nil {
			t.Errorf("push %d: %v", id, r.err)
			continue
		}
		if r.resp.GetDelivered() != int32(id) || !slices.Equal(r.resp.MissingConns, []int64{id}) {
			t.Errorf("push %d got the answer %+v, not its own", id, r.resp)
		}
	}
}

func TestPushCoalescer_QueuedPushesGoAsOneBatch(t *testing.T) {
	srv := startPushServer(t, false, "")
	p := newPusher(t, srv, "")
	p.fillInFlight()
	p.enqueue(context.Background(), 3, 4, 5, 6, 7)
	srv.release()
	checkAnswered(t, p.collect(7))

	calls := srv.callsCopy()
	slices.SortFunc(calls, func(a, b pushServerCall) int { return int(a.ids[0] - b.ids[0]) })
	want := []pushServerCall{{ids: []int64{1}}, {ids: []int64{2}},
		{batch: true, ids: []int64{3, 4, 5, 6, 7}}}
	if !reflect.DeepEqual(calls, want) {
		t.Errorf("server got calls %+v, want the two in flight and one batch of the "+
			"queued in queue order %+v", calls, want)
	}
	const wantHist = `
# HELP resonance_task_push_batch_requests Pushes carried by each PushBatch call: ` +
		`those that queued behind the calls in flight to one gateway.
# TYPE resonance_task_push_batch_requests histogram
resonance_task_push_batch_requests_bucket{le="2"} 0
resonance_task_push_batch_requests_bucket{le="4"} 0
resonance_task_push_batch_requests_bucket{le="8"} 1
resonance_task_push_batch_requests_bucket{le="16"} 1
resonance_task_push_batch_requests_bucket{le="32"} 1
resonance_task_push_batch_requests_bucket{le="64"} 1
resonance_task_push_batch_requests_bucket{le="128"} 1
resonance_task_push_batch_requests_bucket{le="256"} 1
resonance_task_push_batch_requests_bucket{le="+Inf"} 1
resonance_task_push_batch_requests_sum 5
resonance_task_push_batch_requests_count 1
`
	err := testutil.CollectAndCompare(p.g.metrics.pushBatchReqs, strings.NewReader(wantHist))
	if err != nil {
		t.Error(err)
	}
}

// More pushes queued than one PushBatch carries go out in several: a full
// batch at once, although every call slot is taken, the rest when a slot
// comes free.
func TestPushCoalescer_BatchHoldsAtMostMaxBatchReqs(t *testing.T) {
	const queued = maxBatchReqs + 4
	srv := startPushServer(t, false, "")
	p := newPusher(t, srv, "")
	p.fillInFlight()
	for id := int64(3); id < 3+queued; id++ {
		p.start(context.Background(), id)
	}
	testwait.For(t, 10*time.Second, "a full batch out, the rest queued", func() bool {
		return srv.entered.Load() == testCallsInFlight+1 && p.queued() == queued-maxBatchReqs
	})
	srv.release()
	checkAnswered(t, p.collect(testCallsInFlight+queued))

	var batches []int
	for _, c := range srv.callsCopy() {
		if c.batch {
			batches = append(batches, len(c.ids))
		}
	}
	slices.Sort(batches)
	if want := []int{4, maxBatchReqs}; !slices.Equal(batches, want) {
		t.Errorf("PushBatch calls carried %v reqs, want %v", batches, want)
	}
}

// A push whose context ends while it is queued returns at once with that
// error and is never sent; the pushes queued with it go on.
func TestPushCoalescer_QueuedPushLeavesWhenItsContextEnds(t *testing.T) {
	srv := startPushServer(t, false, "")
	p := newPusher(t, srv, "")
	p.fillInFlight()
	ctx, cancel := context.WithCancel(context.Background())
	p.enqueue(ctx, 3)
	p.enqueue(context.Background(), 4)
	cancel()
	// Returns while the calls in flight are still held.
	left := p.collect(1)
	if err := left[3].err; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled push returned %+v, want context.Canceled", left[3])
	}
	srv.release()
	checkAnswered(t, p.collect(3))
	sent := srv.idsSent()
	slices.Sort(sent)
	if !slices.Equal(sent, []int64{1, 2, 4}) {
		t.Errorf("server got reqs %v, want 1, 2 and 4 (3 left the queue)", sent)
	}
}

// A gateway older than PushBatch answers it with an unknown method (or,
// without TTHeader, an unknown service): its pushes go as Push calls, in
// queue order, and later ones are not queued for a batch at all.
func TestPushCoalescer_GatewayWithoutPushBatchGetsPushCalls(t *testing.T) {
	for _, secret := range []string{"", "s3cret"} {
		t.Run("secret="+secret, func(t *testing.T) {
			srv := startPushServer(t, true, secret)
			p := newPusher(t, srv, secret)
			p.fillInFlight()
			p.enqueue(context.Background(), 3, 4, 5)
			srv.release()
			checkAnswered(t, p.collect(5))
			for _, c := range srv.callsCopy() {
				if c.batch {
					t.Fatalf("an old gateway answered a PushBatch: %+v", c)
				}
			}
			// 1 and 2 may be recorded after the others: their calls return
			// together.
			got := slices.DeleteFunc(srv.idsSent(), func(id int64) bool { return id <= 2 })
			if !slices.Equal(got, []int64{3, 4, 5}) {
				t.Errorf("queued pushes went as %v, want 3, 4, 5 in queue order", got)
			}
			if n := testutil.ToFloat64(p.g.metrics.pushBatchFallbacks); n != 1 {
				t.Errorf("fallbacks counted %v, want 1", n)
			}

			// Remembered: more pushes than the calls in flight go out at once.
			srv.holdCalls()
			for id := int64(6); id <= 6+testCallsInFlight; id++ {
				p.start(context.Background(), id)
			}
			testwait.For(t, 5*time.Second, "every push in flight", func() bool {
				return srv.entered.Load() == 5+1+testCallsInFlight
			})
			srv.release()
			checkAnswered(t, p.collect(1+testCallsInFlight))
		})
	}
}

// closeAll fails the queued pushes at once, cancels the batch calls in
// flight, whose pushes fail too, and returns once their goroutines have;
// none of the queued pushes is sent.
func TestGatewayClients_CloseAllFailsWaitingPushes(t *testing.T) {
	srv := startPushServer(t, false, "")
	p := newPusher(t, srv, "")
	p.fillInFlight()
	p.enqueue(context.Background(), 3, 4)
	// 1 and 2 return; one of them sends 3 and 4 as a batch, held in turn.
	p.srv.mu.Lock()
	first := p.srv.hold
	p.srv.hold = make(chan struct{})
	p.srv.mu.Unlock()
	close(first)
	checkAnswered(t, p.collect(2))
	testwait.For(t, 5*time.Second, "batch in flight", func() bool { return srv.entered.Load() == 3 })
	p.start(context.Background(), 5) // the free slot: in flight on its own
	testwait.For(t, 5*time.Second, "lone push in flight", func() bool {
		return srv.entered.Load() == 4
	})
	p.enqueue(context.Background(), 6, 7)
	if n := batchGoroutines(); n != 1 {
		t.Fatalf("%d batch goroutines before closeAll, want the one of 3 and 4", n)
	}

	closed := make(chan struct{})
	var leftBehind int
	go func() {
		p.g.closeAll()
		leftBehind = batchGoroutines() // none: closeAll waits for them
		close(closed)
	}()
	failed := p.collect(4) // 3, 4 in the batch, 6, 7 queued
	for _, id := range []int64{3, 4, 6, 7} {
		if r, ok := failed[id]; !ok || !errors.Is(r.err, errClientClosed) {
			t.Errorf("push %d returned %+v, want errClientClosed", id, r)
		}
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("closeAll did not return: a batch goroutine is left")
	}
	if leftBehind != 0 {
		t.Errorf("%d batch goroutines left when closeAll returned", leftBehind)
	}

	// The lone push runs on its caller's context and ends as its call does;
	// the server ends the cancelled batch call too.
	srv.release()
	checkAnswered(t, p.collect(1))
	testwait.For(t, 5*time.Second, "held calls ended", func() bool {
		return len(srv.callsCopy()) == 4
	})
	sent := srv.idsSent()
	slices.Sort(sent)
	if !slices.Equal(sent, []int64{1, 2, 3, 4, 5}) {
		t.Errorf("server got reqs %v, want 1 to 5 (6 and 7 were still queued)", sent)
	}
	if _, err := p.g.get(srv.addr); err != nil || p.g.len() != 1 {
		t.Errorf("after closeAll a push gets a new client: %v, %d clients", err, p.g.len())
	}
}

// batchGoroutines counts the goroutines running a coalescer's batches.
func batchGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "coalesce.(*Batcher[...]).sendBatches(")
}

// A push that queued behind calls that do not return in time fails with a
// timeout: its own, once the push timeout has passed while it is still
// queued, or that of the call that took it when a slot came free first (a
// taken push waits for its call). Either way it returns within about two
// push timeouts, never the pusher's 30 s.
func TestPushCoalescer_QueuedPushWaitsAtMostTheTimeout(t *testing.T) {
	srv := startPushServer(t, false, "")
	p := newPusher(t, srv, "")
	p.g.timeout = 300 * time.Millisecond // before the first push builds the client
	p.fillInFlight()
	p.enqueue(context.Background(), 3)
	got := p.collect(3) // the calls in flight time out too
	for id, r := range got {
		if r.err == nil || !strings.Contains(r.err.Error(), "timeout") &&
			!errors.Is(r.err, context.DeadlineExceeded) {
			t.Errorf("push %d returned %v, want a timeout", id, r.err)
		}
	}
	if took := got[3].took; took > 5*time.Second {
		t.Errorf("queued push returned after %v, want about two push timeouts", took)
	}
}

// Through a whole task: the events of several conversations that wait
// behind the calls in flight to a gateway reach it in PushBatch calls, and
// each push's answer counts for its own event.
func TestTask_PushesQueuedBehindAGatewayGoInBatches(t *testing.T) {
	const convs = 8
	en := newEnv(t)
	gw := startGateway(t, gatewayMode{held: true})
	for i := int64(1); i <= convs; i++ {
		en.putRoute(t, route.Route{UserID: i, DeviceID: "phone", Gateway: gw.addr, ConnID: i})
	}
	cfg := testConfig()
	cfg.PushTimeout, cfg.AckWait = 10*time.Second, 30*time.Second // held calls must not time out
	rt := startTask(t, en, cfg, nil)

	for i := int64(1); i <= convs; i++ {
		ev := newEvent(fmt.Sprintf("p2p:0:%d", i), 1, []int64{i}, route.Route{})
		ev.Message.MsgId = 1000*i + 1 // distinct: the message id deduplicates publishes
		en.publish(t, ev)
	}
	testwait.For(t, 5*time.Second, "pushes queued behind the calls in flight", func() bool {
		c, err := rt.task.gateways.get(gw.addr)
		return err == nil && gw.pushes.Load() == testCallsInFlight && queuedPushes(c.pushes) >= 2
	})
	gw.release()
	testwait.For(t, 5*time.Second, "every event pushed", func() bool {
		for i := int64(1); i <= convs; i++ {
			if len(gw.framesOf(i)) != 1 {
				return false
			}
		}
		return true
	})
	testwait.For(t, 5*time.Second, "events acked", en.settled(t))
	gw.mu.Lock()
	batches := slices.Clone(gw.pushBatches)
	gw.mu.Unlock()
	if len(batches) == 0 {
		t.Error("no PushBatch call: the queued pushes went one by one")
	}
	if n := testutil.ToFloat64(rt.task.metrics.delivered); n != convs {
		t.Errorf("deliveries counted %v, want %d (one per push answer)", n, convs)
	}
}

// releaseAndHoldNext lets the held calls go and holds those begun from now
// on.
func (s *pushServer) releaseAndHoldNext() {
	s.mu.Lock()
	old := s.hold
	s.hold = make(chan struct{})
	s.mu.Unlock()
	if old != nil {
		close(old)
	}
}

// A push whose caller's context ends after a call took it gets that call's
// answer: a caller that went on could push its conversation's next event
// while this one is still out, and the two could land in either order.
func TestPushCoalescer_TakenPushWaitsForItsCall(t *testing.T) {
	srv := startPushServer(t, false, "")
	p := newPusher(t, srv, "")
	p.fillInFlight()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	p.enqueue(ctx, 3)
	srv.releaseAndHoldNext() // 1 and 2 return; a call takes 3 and is held
	testwait.For(t, 5*time.Second, "push 3 in a call", func() bool {
		return srv.entered.Load() == testCallsInFlight+1
	})
	early := p.collect(testCallsInFlight)
	<-ctx.Done()
	select {
	case o := <-p.done:
		t.Fatalf("push %d returned %+v while its call is held", o.id, o.r)
	case <-time.After(100 * time.Millisecond):
	}
	srv.release()
	late := p.collect(1)
	maps.Copy(early, late)
	checkAnswered(t, early)
}

// A batch sent one by one to a gateway older than PushBatch leaves out a push
// whose caller stopped waiting before its turn; the pushes before it go.
func TestPushCoalescer_FallbackSkipsAPushWhoseWaitIsOver(t *testing.T) {
	srv := startPushServer(t, true, "")
	p := newPusher(t, srv, "")
	p.fillInFlight()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.enqueue(context.Background(), 3)
	p.enqueue(ctx, 4)
	srv.releaseAndHoldNext() // 1 and 2 return; 3 and 4 fall back, 3 is held
	testwait.For(t, 5*time.Second, "push 3 sent alone", func() bool {
		return srv.entered.Load() == testCallsInFlight+1
	})
	early := p.collect(testCallsInFlight)
	cancel() // 4 was taken by the batch: it waits, and is skipped at its turn
	srv.release()
	late := p.collect(2)
	if err := late[4].err; !errors.Is(err, context.Canceled) {
		t.Fatalf("push 4 returned %+v, want not sent with context.Canceled", late[4])
	}
	early[3] = late[3]
	checkAnswered(t, early)
	sent := srv.idsSent()
	slices.Sort(sent)
	if !slices.Equal(sent, []int64{1, 2, 3}) {
		t.Errorf("server got reqs %v, want 1, 2 and 3 (4's wait was over)", sent)
	}
}

// A gateway's refusal of PushBatch outlives its client: the client of a
// lapsed gateway that flaps is dropped and made again every probe
// interval, and a new client that tried PushBatch again would log the
// refusal at info each time.
func TestGatewayClients_RefusalOfPushBatchOutlivesTheClient(t *testing.T) {
	srv := startPushServer(t, true, "")
	p := newPusher(t, srv, "")
	p.fillInFlight()
	p.enqueue(context.Background(), 3, 4)
	srv.release()
	checkAnswered(t, p.collect(4))
	base := srv.entered.Load()

	// A new client: with two calls out, two more go out at once as Push
	// calls rather than queue for a PushBatch.
	p.g.drop(srv.addr)
	srv.holdCalls()
	for id := int64(11); id <= 14; id++ {
		p.start(context.Background(), id)
	}
	testwait.For(t, 5*time.Second, "the pushes sent or queued", func() bool {
		return srv.entered.Load()+int64(p.queued()) == base+4
	})
	srv.release()
	checkAnswered(t, p.collect(4))
	if n := testutil.ToFloat64(p.g.metrics.pushBatchFallbacks); n != 1 {
		t.Errorf("PushBatch refused %v times, want once: the new client tried it again", n)
	}
}
