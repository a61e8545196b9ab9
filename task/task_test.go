package task

import (
	"context"
	"errors"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/resonance-im/resonance/internal/mq"
	"github.com/resonance-im/resonance/internal/route"
	"github.com/resonance-im/resonance/internal/testwait"
)

func TestTask_FansOutPerGatewaySkippingOrigin(t *testing.T) {
	en := newEnv(t)
	gwA, gwB := startGateway(t, gatewayMode{}), startGateway(t, gatewayMode{})
	origin := route.Route{UserID: 1, DeviceID: "phone", Gateway: gwA.addr, ConnID: 11}
	for _, r := range []route.Route{
		origin,
		{UserID: 1, DeviceID: "laptop", Gateway: gwB.addr, ConnID: 21},
		{UserID: 2, DeviceID: "phone", Gateway: gwA.addr, ConnID: 12},
		{UserID: 2, DeviceID: "laptop", Gateway: gwB.addr, ConnID: 22},
		{UserID: 3, DeviceID: "phone", Gateway: gwA.addr, ConnID: 13}, // not a recipient
	} {
		en.putRoute(t, r)
	}
	startTask(t, en, testConfig(), nil)

	ev := newEvent("p2p:1:2", 1, []int64{1, 2}, origin)
	en.publish(t, ev)
	testwait.For(t, 5*time.Second, "pushes on both gateways", func() bool {
		return len(gwA.callsCopy()) == 1 && len(gwB.callsCopy()) == 1
	})
	testwait.For(t, 5*time.Second, "event acked", en.settled(t))

	tests := []struct {
		name      string
		gw        *stubGateway
		wantConns []int64
	}{
		{name: "origin gateway: recipient only, not the origin conn",
			gw: gwA, wantConns: []int64{12}},
		{name: "other gateway: sender's other device and recipient",
			gw: gwB, wantConns: []int64{21, 22}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := tc.gw.callsCopy()
			if len(calls) != 1 {
				t.Fatalf("got %d Push calls, want 1 per gateway", len(calls))
			}
			got := slices.Sorted(slices.Values(calls[0].conns))
			if !slices.Equal(got, tc.wantConns) {
				t.Errorf("targets = %v, want %v", got, tc.wantConns)
			}
			if msg := decodePush(t, calls[0].frame); !reflect.DeepEqual(msg.Message, ev.Message) {
				t.Errorf("pushed message = %v, want %v", msg.Message, ev.Message)
			}
		})
	}
	for _, conn := range []int64{11, 13} {
		if n := len(gwA.framesOf(conn)); n != 0 {
			t.Errorf("conn %d got %d frames, want none", conn, n)
		}
	}
}

func TestTask_KeepsConversationOrder(t *testing.T) {
	const events = 100
	en := newEnv(t)
	gw := startGateway(t, gatewayMode{})
	sender := route.Route{UserID: 1, DeviceID: "phone", Gateway: gw.addr, ConnID: 1}
	en.putRoute(t, sender)
	en.putRoute(t, route.Route{UserID: 2, DeviceID: "phone", Gateway: gw.addr, ConnID: 2})
	startTask(t, en, testConfig(), nil)

	for seq := int64(1); seq <= events; seq++ {
		en.publish(t, newEvent("p2p:1:2", seq, []int64{1, 2}, sender))
	}
	testwait.For(t, 10*time.Second, "all events pushed", func() bool {
		return len(gw.framesOf(2)) == events
	})
	for i, frame := range gw.framesOf(2) {
		if seq := decodePush(t, frame).Message.Seq; seq != int64(i+1) {
			t.Fatalf("frame %d carries seq %d, want %d", i, seq, i+1)
		}
	}
}

// failingRoutes is a route table whose lookups always fail, as when the
// route store is down.
type failingRoutes struct{ route.Table }

func (failingRoutes) Lookup(context.Context, []int64) ([]route.Route, error) {
	return nil, errors.New("route store down")
}

func TestTask_DeadLettersPoisonAndGoesOn(t *testing.T) {
	tests := []struct {
		name       string
		routes     func(*env) route.Table
		poison     func(*env, *testing.T) []byte // publishes the bad event, returns its bytes
		wantReason string
	}{
		{
			name:   "undecodable bytes",
			routes: func(en *env) route.Table { return en.routes },
			poison: func(en *env, t *testing.T) []byte {
				data := []byte("\xa3 not thrift: a type byte that panics gopkg")
				en.publishRaw(t, data, "poison-1")
				return data
			},
			wantReason: reasonUndecodable,
		},
		{
			name:   "route lookup fails on every delivery",
			routes: func(en *env) route.Table { return failingRoutes{en.routes} },
			poison: func(en *env, t *testing.T) []byte {
				ev := newEvent("p2p:1:2", 1, []int64{2}, route.Route{UserID: 1})
				en.publish(t, ev)
				buf := make([]byte, ev.BLength())
				ev.FastWriteNocopy(buf, nil)
				return buf
			},
			wantReason: reasonMaxDeliver,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			en := newEnv(t)
			gw := startGateway(t, gatewayMode{})
			en.putRoute(t, route.Route{UserID: 2, DeviceID: "phone", Gateway: gw.addr, ConnID: 2})
			cfg := testConfig()
			cfg.AckWait = 500 * time.Millisecond
			cfg.PushTimeout = 400 * time.Millisecond
			rt := startTask(t, en, cfg, tc.routes(en))

			data := tc.poison(en, t)
			dead := waitDeadLetter(t, en, rt.task.DeadLetterSubject())
			if string(dead.Data) != string(data) {
				t.Errorf("dead letter body = %q, want the raw event %q", dead.Data, data)
			}
			if got := dead.Header.Get(HeaderDeadReason); got != tc.wantReason {
				t.Errorf("reason = %q, want %q", got, tc.wantReason)
			}
			if got := dead.Header.Get(HeaderDeadStreamSeq); got != "1" {
				t.Errorf("stream seq header = %q, want 1", got)
			}
			rt.stop()

			// The next event goes through, and the dead one is not taken back.
			startTask(t, en, testConfig(), en.routes)
			en.publish(t, newEvent("p2p:1:2", 2, []int64{2}, route.Route{UserID: 1}))
			testwait.For(t, 5*time.Second, "next event pushed", func() bool {
				return len(gw.framesOf(2)) == 1
			})
			testwait.For(t, 5*time.Second, "consumer settled", en.settled(t))
			if seq := decodePush(t, gw.framesOf(2)[0]).Message.Seq; seq != 2 {
				t.Errorf("pushed seq %d, want 2", seq)
			}
		})
	}
}

func waitDeadLetter(t *testing.T, en *env, subject string) *jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := en.js.Stream(ctx, en.names.Stream)
	if err != nil {
		t.Fatal(err)
	}
	var dead *jetstream.RawStreamMsg
	testwait.For(t, 10*time.Second, "dead letter on "+subject, func() bool {
		dead, err = stream.GetLastMsgForSubject(ctx, subject)
		return err == nil
	})
	return dead
}

func TestTask_UnreachableGatewayDoesNotDelayOthers(t *testing.T) {
	tests := []struct {
		name string
		addr func(*testing.T) string
	}{
		{name: "dead port", addr: deadAddr},
		{name: "stalled gateway", addr: func(t *testing.T) string {
			return startGateway(t, gatewayMode{stall: true}).addr
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			en := newEnv(t)
			live := startGateway(t, gatewayMode{})
			// Three bad gateways: pushing one gateway after the other would
			// most likely wait on a bad one before reaching the live one.
			for i := int64(1); i <= 3; i++ {
				en.putRoute(t, route.Route{UserID: i, DeviceID: "d", Gateway: tc.addr(t), ConnID: i})
			}
			en.putRoute(t, route.Route{UserID: 4, DeviceID: "d", Gateway: live.addr, ConnID: 4})
			cfg := testConfig()
			cfg.PushTimeout = 1500 * time.Millisecond
			cfg.AckWait = 5 * time.Second
			startTask(t, en, cfg, nil)

			start := time.Now()
			en.publish(t, newEvent("g:1", 1, []int64{1, 2, 3, 4}, route.Route{UserID: 9}))
			testwait.For(t, 5*time.Second, "push to live gateway", func() bool {
				return len(live.framesOf(4)) == 1
			})
			if d := time.Since(start); d >= cfg.PushTimeout {
				t.Errorf("live gateway got the push after %v, want under PushTimeout %v",
					d, cfg.PushTimeout)
			}
			// The event is acked although one gateway failed.
			testwait.For(t, 2*cfg.PushTimeout, "event acked", en.settled(t))
		})
	}
}

func TestTask_RestartResumesWithoutRedelivery(t *testing.T) {
	en := newEnv(t)
	gw := startGateway(t, gatewayMode{})
	sender := route.Route{UserID: 1, DeviceID: "phone", Gateway: gw.addr, ConnID: 1}
	en.putRoute(t, sender)
	en.putRoute(t, route.Route{UserID: 2, DeviceID: "phone", Gateway: gw.addr, ConnID: 2})
	seqsOf := func() []int64 {
		var seqs []int64
		for _, f := range gw.framesOf(2) {
			seqs = append(seqs, decodePush(t, f).Message.Seq)
		}
		return seqs
	}

	first := startTask(t, en, testConfig(), nil)
	for seq := int64(1); seq <= 5; seq++ {
		en.publish(t, newEvent("p2p:1:2", seq, []int64{2}, sender))
	}
	testwait.For(t, 5*time.Second, "first five pushed", func() bool { return len(gw.framesOf(2)) == 5 })
	first.stop()

	for seq := int64(6); seq <= 10; seq++ {
		en.publish(t, newEvent("p2p:1:2", seq, []int64{2}, sender))
	}
	startTask(t, en, testConfig(), nil)
	testwait.For(t, 5*time.Second, "last five pushed", func() bool { return len(gw.framesOf(2)) >= 10 })
	testwait.For(t, 5*time.Second, "consumer settled", en.settled(t))

	want := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if got := seqsOf(); !slices.Equal(got, want) {
		t.Errorf("pushed seqs = %v, want %v (no redelivery)", got, want)
	}
}

func TestNew_Validates(t *testing.T) {
	en := &env{names: newNamesForTest(), routes: route.NewMemory(0)}
	var js jetstream.JetStream = fakeJS{}
	tests := []struct {
		name    string
		cfg     Config
		deps    Deps
		wantErr error
	}{
		{name: "defaults", deps: Deps{JS: js, MQ: en.names, Routes: en.routes}},
		{name: "negative workers", cfg: Config{Workers: -1},
			deps: Deps{JS: js, MQ: en.names, Routes: en.routes}, wantErr: ErrBadConfig},
		{name: "ack wait below push timeout",
			cfg:  Config{AckWait: time.Second, PushTimeout: 2 * time.Second},
			deps: Deps{JS: js, MQ: en.names, Routes: en.routes}, wantErr: ErrBadConfig},
		{name: "unlimited deliveries", cfg: Config{MaxDeliver: -1},
			deps: Deps{JS: js, MQ: en.names, Routes: en.routes}, wantErr: ErrBadConfig},
		{name: "no jetstream", deps: Deps{MQ: en.names, Routes: en.routes}, wantErr: ErrMissingDeps},
		{name: "no routes", deps: Deps{JS: js, MQ: en.names}, wantErr: ErrMissingDeps},
		{name: "no names", deps: Deps{JS: js, Routes: en.routes}, wantErr: ErrMissingDeps},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tk, err := New(tc.cfg, tc.deps)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("New error = %v, want %v", err, tc.wantErr)
			}
			if err == nil && tk.cfg.Workers != DefaultWorkers {
				t.Errorf("Workers = %d, want default %d", tk.cfg.Workers, DefaultWorkers)
			}
		})
	}
}

func TestTask_RunTwiceFails(t *testing.T) {
	en := newEnv(t)
	rt := startTask(t, en, testConfig(), nil)
	if err := rt.task.Run(context.Background()); !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("second Run = %v, want ErrAlreadyRunning", err)
	}
}

func TestGatewayClients_SweepDropsIdle(t *testing.T) {
	now := time.Unix(1000, 0)
	g := newGatewayClients(clientsConfig{timeout: time.Second, conns: 4})
	g.now = func() time.Time { return now }
	for i := range 3 {
		if _, err := g.get("127.0.0.1:" + strconv.Itoa(40000+i)); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(g.idleTTL)
	if _, err := g.get("127.0.0.1:40000"); err != nil { // used again: kept
		t.Fatal(err)
	}
	now = now.Add(time.Second)
	if n := g.sweep(); n != 2 {
		t.Errorf("sweep dropped %d clients, want 2", n)
	}
	if n := g.len(); n != 1 {
		t.Errorf("%d clients left, want 1", n)
	}
}

func TestConfig_RetrySchedules(t *testing.T) {
	cfg := Config{AckWait: time.Second, MaxDeliver: 3}
	cfg.applyDefaults()
	tests := []struct {
		name string
		got  any
		want any
	}{
		{name: "backoff has fewer entries than MaxDeliver, from AckWait",
			got:  cfg.backoffSchedule(),
			want: []time.Duration{time.Second, 2 * time.Second}},
		{name: "first nak", got: cfg.nakDelay(1), want: nakBaseDelay},
		{name: "third nak doubles twice", got: cfg.nakDelay(3), want: 4 * nakBaseDelay},
		{name: "nak capped at AckWait", got: cfg.nakDelay(20), want: time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !reflect.DeepEqual(tc.got, tc.want) {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
}

// A stop pushes what the task already pulled and leaves the rest in
// JetStream; the next owner of the partitions goes on after it, so the
// conversation is pushed once and in order across the stop.
func TestTask_StopFinishesWhatItPulledAndLeavesTheRest(t *testing.T) {
	// More than a pull, a worker's queue and its run hold (3*maxRun), so
	// that the held gateway stops the pulls well short of the end.
	const events = 500
	en := newEnv(t)
	gw := startGateway(t, gatewayMode{held: true})
	sender := route.Route{UserID: 1, DeviceID: "phone", Gateway: gw.addr, ConnID: 1}
	en.putRoute(t, route.Route{UserID: 2, DeviceID: "phone", Gateway: gw.addr, ConnID: 2})
	// A long ack wait: nothing may come back by waiting it out. A push
	// timeout well past the hold: the held pushes must not fail.
	cfg := testConfig()
	cfg.AckWait = 30 * time.Second
	cfg.PushTimeout = 20 * time.Second

	first := startTask(t, en, cfg, nil)
	for seq := int64(1); seq <= events; seq++ {
		en.publish(t, newEvent("p2p:1:2", seq, []int64{2}, sender))
	}
	// The worker's first push is held: what the task pulls stops at the
	// full queue in front of it, however fast or slow the machine.
	testwait.For(t, 10*time.Second, "first push", func() bool { return gw.pushes.Load() > 0 })
	stopped := make(chan struct{})
	go func() { first.stop(); close(stopped) }()
	// The stop's release of the partitions lands while the push is held;
	// a late one would only let the task pull more.
	time.Sleep(200 * time.Millisecond)
	gw.release()
	select {
	case <-stopped:
	case <-time.After(20 * time.Second):
		t.Fatal("the task did not stop within 20s")
	}
	pushedBefore := len(gw.framesOf(2))
	if pushedBefore == 0 || pushedBefore >= events {
		t.Fatalf("%d of %d events pushed before stop, want some and not all", pushedBefore,
			events)
	}

	startTask(t, en, cfg, nil)
	testwait.For(t, 10*time.Second, "remaining events", func() bool {
		return len(gw.framesOf(2)) >= events
	})
	testwait.For(t, 5*time.Second, "consumer settled", en.settled(t))
	var got []int64
	for _, f := range gw.framesOf(2) {
		got = append(got, decodePush(t, f).Message.Seq)
	}
	if !slices.Equal(got, seqRange(1, events)) {
		t.Errorf("pushed seqs = %v, want 1..%d once each in order (%d before stop)",
			got, events, pushedBefore)
	}
}

// seqRange returns from, from+1, ..., to.
func seqRange(from, to int64) []int64 {
	var out []int64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// TestTask_ExportsMetrics checks the series an operator graphs move when
// events flow. The task's own metrics registry is read through its fields.
func TestTask_ExportsMetrics(t *testing.T) {
	en := newEnv(t)
	gw := startGateway(t, gatewayMode{})
	en.putRoute(t, route.Route{UserID: 2, DeviceID: "phone", Gateway: gw.addr, ConnID: 7})
	rt := startTask(t, en, testConfig(), nil)
	en.publish(t, newEvent("p2p:1:2", 1, []int64{1, 2}, route.Route{}))
	m := rt.task.metrics
	if n := testutil.ToFloat64(m.partitions); n != mq.Partitions {
		t.Errorf("partitions owned = %v, want all %d (the only instance)", n, mq.Partitions)
	}
	testwait.For(t, 5*time.Second, "push counted", func() bool {
		return testutil.ToFloat64(m.events.WithLabelValues("pushed")) == 1 &&
			testutil.ToFloat64(m.delivered) == 1
	})
	if n := testutil.CollectAndCount(m.pushSeconds); n != 1 {
		t.Fatalf("push latency series = %d, want 1 (outcome ok)", n)
	}
}

// Events of one conversation waiting behind a slow push go out together:
// one Push call carries several, in seq order, and each sender's own
// connection is skipped only for its own messages.
func TestTask_BatchesAConversationBacklog(t *testing.T) {
	const events = 40
	en := newEnv(t)
	gw := startGateway(t, gatewayMode{delay: 30 * time.Millisecond})
	alice := route.Route{UserID: 1, DeviceID: "phone", Gateway: gw.addr, ConnID: 1}
	bob := route.Route{UserID: 2, DeviceID: "phone", Gateway: gw.addr, ConnID: 2}
	en.putRoute(t, alice)
	en.putRoute(t, bob)
	startTask(t, en, testConfig(), nil)

	for seq := int64(1); seq <= events; seq++ {
		from := alice
		if seq%2 == 0 {
			from = bob
		}
		en.publish(t, newEvent("g:batch", seq, []int64{1, 2}, from))
	}
	testwait.For(t, 10*time.Second, "every event pushed", func() bool {
		return len(gw.framesOf(1))+len(gw.framesOf(2)) == events
	})
	for conn, wantFrom := range map[int64]int64{1: 2, 2: 1} {
		var seqs []int64
		for _, f := range gw.framesOf(conn) {
			m := decodePush(t, f).Message
			if m.SenderId != wantFrom {
				t.Fatalf("conn %d got its own user's seq %d", conn, m.Seq)
			}
			seqs = append(seqs, m.Seq)
		}
		if len(seqs) != events/2 || !slices.IsSorted(seqs) {
			t.Fatalf("conn %d got seqs %v, want the other's %d in order", conn, seqs, events/2)
		}
	}
	gw.mu.Lock()
	batches := slices.Clone(gw.batches)
	gw.mu.Unlock()
	if slices.Max(batches) < 2 || len(batches) >= events {
		t.Fatalf("push calls carried %v frames: no backlog was batched", batches)
	}
}
