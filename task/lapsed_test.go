package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/internal/registry"
	"github.com/resonance-im/resonance/internal/route"
	"github.com/resonance-im/resonance/internal/syncbuf"
	"github.com/resonance-im/resonance/internal/testwait"
	"github.com/resonance-im/resonance/kitex_gen/event"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// A lapsed gateway is probed once per lapsedProbeInterval, one probe at a
// time; it is pushed to from an answered probe until a push fails, and
// forgotten once no longer lapsed.
func TestLapsedGateways_ProbeOnceAtATimeAndPerInterval(t *testing.T) {
	const addr = "10.0.0.1:9000"
	l := newLapsedGateways(nil, nil)
	now := time.Unix(1000, 0)
	claim, ok := l.claimProbe(addr, now)
	if !ok {
		t.Fatal("first probe of a lapsed gateway not due")
	}
	if _, ok := l.claimProbe(addr, now.Add(2*lapsedProbeInterval)); ok {
		t.Error("a second probe claimed while the first is out")
	}
	if !l.busy(addr) || l.answering(addr) || !l.undecided(addr) {
		t.Error("a gateway with its probe out: want busy, not answering, undecided")
	}

	// Unanswered: skipped, and probed again only after the interval.
	dropped := false
	l.probed(addr, claim, false, now, func() { dropped = true })
	if !dropped {
		t.Error("a failed probe did not drop the client")
	}
	if l.busy(addr) || l.answering(addr) || l.undecided(addr) {
		t.Error("a gateway whose probe failed: want neither busy, answering nor undecided")
	}
	if _, ok := l.claimProbe(addr, now.Add(lapsedProbeInterval-time.Millisecond)); ok {
		t.Error("probe claimed within the interval after the last one")
	}
	now = now.Add(lapsedProbeInterval)
	claim, ok = l.claimProbe(addr, now)
	if !ok {
		t.Fatal("probe not due an interval after the last one")
	}

	// Answered: pushed to, and not probed, until a push fails.
	l.probed(addr, claim, true, now, nil)
	if _, ok := l.claimProbe(addr, now.Add(2*lapsedProbeInterval)); !l.answering(addr) || ok {
		t.Error("an answering gateway: want answering and no probe")
	}
	if _, ok := l.failed(addr, now); !ok || l.answering(addr) || !l.undecided(addr) {
		t.Error("a failed push to an answering gateway: want it undecided, not answering")
	}
	if _, ok := l.failed(addr, now); ok {
		t.Error("a second failed push reported as the first")
	}
	if _, ok := l.claimProbe(addr, now.Add(lapsedProbeInterval-time.Millisecond)); ok {
		t.Error("probe claimed within the interval after a failed push")
	}

	// Registered again: forgotten, so a late probe changes nothing.
	claim, _ = l.claimProbe(addr, now.Add(lapsedProbeInterval))
	l.retain(func(string) bool { return false })
	if ok, _ := l.probed(addr, claim, true, now, nil); ok || l.answering(addr) {
		t.Error("a probe ending after its gateway was forgotten brought it back")
	}
}

// scriptedRegistry is a registry whose snapshot the test sets, so that it
// decides what each read of the task's view sees.
type scriptedRegistry struct {
	mu   sync.Mutex
	snap registry.Snapshot
	hold *heldRead // the next read to hold, or nil
	err  error     // while set, every read fails with it
}

// heldRead is a read held, its snapshot taken, until release closes;
// taken closes as it waits.
type heldRead struct{ taken, release chan struct{} }

// holdNext holds the next read once it has taken its snapshot.
func (r *scriptedRegistry) holdNext() *heldRead {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hold = &heldRead{taken: make(chan struct{}), release: make(chan struct{})}
	return r.hold
}

// scriptedTask is a Task, not run, whose view reads a scripted registry
// that holds snap; its gateway clients close when the test ends, waiting
// for the probes.
func scriptedTask(t *testing.T, snap registry.Snapshot) (*Task, *scriptedRegistry) {
	t.Helper()
	reg := &scriptedRegistry{}
	reg.set(snap)
	tk, err := New(testConfig(), Deps{Log: zerolog.Nop(), JS: fakeJS{}, MQ: newNamesForTest(),
		Routes: route.NewMemory(time.Minute), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tk.gateways.closeAll)
	return tk, reg
}

func (r *scriptedRegistry) set(snap registry.Snapshot) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.snap = snap
}

func (r *scriptedRegistry) Register(context.Context, string, time.Duration) error { return nil }

func (r *scriptedRegistry) Deregister(context.Context, string) error { return nil }

func (r *scriptedRegistry) Snapshot(context.Context) (registry.Snapshot, error) {
	r.mu.Lock()
	snap, hold, err := r.snap, r.hold, r.err
	r.hold = nil
	r.mu.Unlock()
	if hold != nil {
		close(hold.taken)
		<-hold.release
	}
	return snap, err
}

func (r *scriptedRegistry) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err = err
}

// A probe of a lapsed gateway that fails after a newer registry read saw
// the gateway live again (it registered anew while the probe was out) says
// nothing about the gateway now: its result must not drop the client the
// pushes use, nor call the gateway dead. The newer read here is one a push
// makes to check a vanished gateway (skipGateway), which, unlike
// readRegistry's, forgets no lapsed entry.
func TestTask_StaleLapsedProbeKeepsGatewayLiveAgain(t *testing.T) {
	en := newEnv(t)
	gw := startGateway(t, gatewayMode{held: true, failHeld: true})
	expiry := time.Now().Add(time.Minute)
	reg := &scriptedRegistry{}
	reg.set(registry.Snapshot{Live: map[string]time.Time{gw.addr: expiry}})
	var logs syncbuf.Buffer
	cfg := testConfig()
	cfg.RegistryRefresh = time.Hour // the test makes the reads after the first
	deps := registryDeps(en, reg)
	deps.Log = zerolog.New(&logs).Level(zerolog.DebugLevel)
	rt := startTaskDeps(t, cfg, deps)
	waitState(t, rt, gw.addr, registry.Live)

	// Its registration runs out: the next registry read probes it.
	ctx := context.Background()
	reg.set(registry.Snapshot{Gone: map[string]time.Time{gw.addr: expiry}})
	rt.task.readRegistry(ctx)
	testwait.For(t, 5*time.Second, "the lapsed gateway's probe", func() bool {
		return gw.pushes.Load() == 1
	})

	// It registers again and a read sees it live; then its probe fails.
	reg.set(registry.Snapshot{Live: map[string]time.Time{gw.addr: expiry.Add(time.Minute)}})
	if _, err := rt.task.view.refresh(ctx); err != nil {
		t.Fatal(err)
	}
	gw.release()
	testwait.For(t, 10*time.Second, "the probe's end", func() bool {
		return strings.Contains(logs.String(), "lapsed gateway probe")
	})
	if n := rt.task.gateways.len(); n != 1 {
		t.Errorf("%d gateway clients after a stale probe failed, want the live gateway's", n)
	}
	if !rt.task.lapsed.undecided(gw.addr) {
		t.Error("a stale probe's failure called the gateway, live since, dead")
	}
}

// A probe's outcome is recorded only when no registry read since its claim,
// the claim's own included, saw the gateway live.
func TestLapsedGateways_ProbeOutdatedByARead(t *testing.T) {
	const addr = "10.0.0.1:9000"
	ctx := context.Background()
	expiry := time.Now().Add(time.Minute)
	live := registry.Snapshot{Live: map[string]time.Time{addr: expiry}}
	gone := registry.Snapshot{Gone: map[string]time.Time{addr: expiry}}
	cases := []struct {
		name   string
		reads  []registry.Snapshot // before the claim
		since  []registry.Snapshot // between the claim and the outcome
		record bool
	}{
		{name: "lapsed throughout", reads: []registry.Snapshot{live, gone},
			since: []registry.Snapshot{gone}, record: true},
		{name: "live again since", reads: []registry.Snapshot{live, gone},
			since: []registry.Snapshot{live}},
		{name: "live again and lapsed again since", reads: []registry.Snapshot{live, gone},
			since: []registry.Snapshot{live, gone}},
		{name: "live at the claim", reads: []registry.Snapshot{live, gone, live}},
	}
	for _, tc := range cases {
		reg := &scriptedRegistry{}
		view := newGatewayView(reg)
		read := func(snaps []registry.Snapshot) {
			for _, snap := range snaps {
				reg.set(snap)
				if _, err := view.refresh(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
		l := newLapsedGateways(view, nil)
		read(tc.reads)
		claim, ok := l.claimProbe(addr, time.Now())
		if !ok {
			t.Fatalf("%s: probe not claimed", tc.name)
		}
		read(tc.since)
		dropped := false
		recorded, _ := l.probed(addr, claim, false, time.Now(), func() { dropped = true })
		if recorded != tc.record || dropped != tc.record || l.undecided(addr) == tc.record {
			t.Errorf("%s: recorded %v, dropped %v, undecided %v; want the outcome recorded %v",
				tc.name, recorded, dropped, l.undecided(addr), tc.record)
		}
		if l.busy(addr) {
			t.Errorf("%s: the probe still out after its outcome", tc.name)
		}
	}
}

// testClock is a clock a test moves by hand; it is safe for concurrent use.
type testClock struct{ ns atomic.Int64 }

func newTestClock(at time.Time) *testClock {
	c := &testClock{}
	c.ns.Store(at.UnixNano())
	return c
}

func (c *testClock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *testClock) add(d time.Duration) { c.ns.Add(int64(d)) }

// A lapsed gateway that flaps, answering its probe and then failing a push
// every probe interval, changes state twice an interval: each change is
// logged once, and only the first of each kind in lapsedLogQuiet at Info,
// with the number of changes logged at debug since, rather than two (or
// three, with the drop of its client) info lines every 5 s.
func TestTask_FlappingLapsedGatewayLogsQuietly(t *testing.T) {
	gw := startGateway(t, gatewayMode{})
	expiry := time.Now().Add(time.Minute)
	reg := &scriptedRegistry{}
	reg.set(registry.Snapshot{Live: map[string]time.Time{gw.addr: expiry}})
	var logs syncbuf.Buffer
	tk, err := New(testConfig(), Deps{Log: zerolog.New(&logs).Level(zerolog.DebugLevel),
		JS: fakeJS{}, MQ: newNamesForTest(), Routes: route.NewMemory(time.Minute), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tk.gateways.closeAll) // waits for the probes
	clock := newTestClock(time.Unix(1000, 0))
	tk.lapsed.now = clock.now
	ctx := context.Background()
	tk.readRegistry(ctx)
	reg.set(registry.Snapshot{Gone: map[string]time.Time{gw.addr: expiry}})

	const cycles = 20 // 100 s of flapping
	for i := range cycles {
		clock.add(lapsedProbeInterval)
		tk.readRegistry(ctx)
		testwait.For(t, 5*time.Second, fmt.Sprintf("the probe of cycle %d to answer", i),
			func() bool { return tk.lapsed.answering(gw.addr) })
		tk.lapsedCallFailed(gw.addr, errors.New("push failed"))
	}

	// Each change once: cycles times to answering, as many from it.
	const toAnswering, fromAnswering = "but it answers", "stopped answering"
	var lines []map[string]any
	testwait.For(t, 5*time.Second, "every change logged", func() bool {
		lines = logLines(t, logs.String())
		n := 0
		for _, l := range lines {
			msg, _ := l["message"].(string)
			if strings.Contains(msg, toAnswering) || strings.Contains(msg, fromAnswering) {
				n++
			}
		}
		return n == 2*cycles
	})
	var info []string
	for _, l := range lines {
		if l["level"] == "info" {
			info = append(info, fmt.Sprint(l["message"], " unlogged=", l["changes_unlogged"]))
		}
	}
	// One of each at the start, and again once lapsedLogQuiet has passed,
	// counting what was logged at debug meanwhile.
	want := []string{
		"gateway registration lapsed but it answers; pushing to it unlogged=<nil>",
		"lapsed gateway stopped answering; skipping it unlogged=<nil>",
		"gateway registration lapsed but it answers; pushing to it unlogged=22",
		"lapsed gateway stopped answering; skipping it unlogged=<nil>",
	}
	if strings.Join(info, "\n") != strings.Join(want, "\n") {
		t.Errorf("info lines of a flapping lapsed gateway:\n%s\nwant:\n%s",
			strings.Join(info, "\n"), strings.Join(want, "\n"))
	}
}

// logLines decodes the JSON lines of a zerolog output.
func logLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, s := range strings.Split(strings.TrimSpace(out), "\n") {
		if s == "" {
			continue
		}
		var l map[string]any
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			t.Fatalf("log line %q: %v", s, err)
		}
		lines = append(lines, l)
	}
	return lines
}

// A probe's failure tells of the registration the gateway had then: once a
// registry read has seen the gateway live again (a read a push made, which
// forgets no lapsed entry) and it lapses anew, whether it serves is
// undecided again, so that a kick for it waits for a probe of this lapse
// rather than being dropped on the word of the last one.
func TestLapsedGateways_FailedProbeOutdatedByALaterLife(t *testing.T) {
	const addr = "10.0.0.1:9000"
	ctx := context.Background()
	expiry := time.Now().Add(time.Minute)
	reg := &scriptedRegistry{}
	view := newGatewayView(reg)
	read := func(snaps ...registry.Snapshot) {
		for _, snap := range snaps {
			reg.set(snap)
			if _, err := view.refresh(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	l := newLapsedGateways(view, nil)
	read(registry.Snapshot{Live: map[string]time.Time{addr: expiry}},
		registry.Snapshot{Gone: map[string]time.Time{addr: expiry}})
	claim, ok := l.claimProbe(addr, time.Now())
	if !ok {
		t.Fatal("probe not claimed")
	}
	if recorded, _ := l.probed(addr, claim, false, time.Now(), func() {}); !recorded ||
		l.undecided(addr) {
		t.Fatal("a failed probe of a lapsed gateway: want it recorded and decided")
	}

	// It registers again, and lapses again.
	later := expiry.Add(time.Minute)
	read(registry.Snapshot{Live: map[string]time.Time{addr: later}},
		registry.Snapshot{Gone: map[string]time.Time{addr: later}})
	if !view.lapsed(addr) || !l.tracked(addr) {
		t.Fatal("the gateway lapsed again: want it lapsed and still tracked")
	}
	if !l.undecided(addr) {
		t.Error("a gateway lapsed anew is decided dead by the probe of its last lapse")
	}
}

// The lapsed_answering gauge follows a lapsed gateway's changes as they
// happen, not at the next registry read: a read is made every
// RegistryRefresh only while the registry answers, and one that fails
// keeps the last count.
func TestTask_LapsedAnsweringGaugeFollowsChanges(t *testing.T) {
	gw := startGateway(t, gatewayMode{})
	expiry := time.Now().Add(time.Minute)
	tk, reg := scriptedTask(t, registry.Snapshot{Live: map[string]time.Time{gw.addr: expiry}})
	ctx := context.Background()
	tk.readRegistry(ctx)
	reg.set(registry.Snapshot{Gone: map[string]time.Time{gw.addr: expiry}})
	tk.readRegistry(ctx) // probes it
	gauge := tk.metrics.registry.WithLabelValues("lapsed_answering")

	testwait.For(t, 5*time.Second, "the probe to answer", func() bool {
		return tk.lapsed.answering(gw.addr)
	})
	if n := testutil.ToFloat64(gauge); n != 1 {
		t.Errorf("lapsed_answering %v once the probe answered, want 1", n)
	}
	tk.lapsedCallFailed(gw.addr, errors.New("push failed"))
	if n := testutil.ToFloat64(gauge); n != 0 {
		t.Errorf("lapsed_answering %v once a push failed, want 0", n)
	}
}

// kickMsg is a kick event as JetStream delivers it, recording how it was
// settled.
type kickMsg struct {
	jetstream.Msg
	data    []byte
	settled chan string // "ack" or "nak"
}

func newKickMsg(ev *event.KickEvent) *kickMsg {
	buf := make([]byte, ev.BLength())
	ev.FastWriteNocopy(buf, nil)
	return &kickMsg{data: buf, settled: make(chan string, 1)}
}

func (m *kickMsg) Data() []byte { return m.data }

func (m *kickMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{NumDelivered: 1, Timestamp: time.Now()}, nil
}

func (m *kickMsg) Ack() error { m.settled <- "ack"; return nil }

func (m *kickMsg) NakWithDelay(time.Duration) error { m.settled <- "nak"; return nil }

// A kick for a lapsed gateway whose probe answers while the kick checks the
// registry (skipGateway asked whether it answers before the read) goes to
// the gateway, or waits: it is not dropped as one for a vanished gateway.
func TestTask_KickForLapsedGatewayAnsweringMeanwhileIsNotDropped(t *testing.T) {
	gw := startGateway(t, gatewayMode{held: true}) // the probe waits for release
	expiry := time.Now().Add(time.Minute)
	tk, reg := scriptedTask(t, registry.Snapshot{Live: map[string]time.Time{gw.addr: expiry}})
	ctx := context.Background()
	tk.readRegistry(ctx)
	reg.set(registry.Snapshot{Gone: map[string]time.Time{gw.addr: expiry}})
	tk.readRegistry(ctx) // probes it
	testwait.For(t, 5*time.Second, "the lapsed gateway's probe", func() bool {
		return gw.pushes.Load() == 1
	})

	// The kick's registry read is held while the probe answers.
	held := reg.holdNext()
	msg := newKickMsg(&event.KickEvent{UserId: 7, Gateway: gw.addr, ConnId: 1,
		Reason: protocol.CloseReason_KICKED})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk.handleKick(ctx, msg)
	}()
	<-held.taken
	gw.release()
	testwait.For(t, 5*time.Second, "the probe to answer", func() bool {
		return tk.lapsed.answering(gw.addr)
	})
	close(held.release)
	<-done

	settled := <-msg.settled
	if settled == "ack" && len(gw.kicksCopy()) == 0 {
		t.Error("the kick for a lapsed gateway that answers was acked unsent")
	}
}
