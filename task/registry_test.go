package task

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/internal/registry"
	"github.com/resonance-im/resonance/internal/route"
	"github.com/resonance-im/resonance/internal/syncbuf"
	"github.com/resonance-im/resonance/internal/testwait"
	"github.com/resonance-im/resonance/kitex_gen/event"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// registryDeps are the deps of a task on en with reg as its registry.
func registryDeps(en *env, reg registry.Registry) Deps {
	return Deps{Log: zerolog.Nop(), JS: en.js, MQ: en.names, Routes: en.routes, Registry: reg}
}

func mustRegister(t *testing.T, reg registry.Registry, addr string) {
	t.Helper()
	if err := reg.Register(context.Background(), addr, time.Minute); err != nil {
		t.Fatal(err)
	}
}

func mustDeregister(t *testing.T, reg registry.Registry, addr string) {
	t.Helper()
	if err := reg.Deregister(context.Background(), addr); err != nil {
		t.Fatal(err)
	}
}

func TestTask_SkipsDeregisteredGatewayWithoutTimeout(t *testing.T) {
	en := newEnv(t)
	gone := startGateway(t, gatewayMode{stall: true}) // would hold each push for PushTimeout
	unregistered := startGateway(t, gatewayMode{})    // an older gateway: never registers
	reg := registry.NewMemory(0)
	mustRegister(t, reg, gone.addr)
	mustDeregister(t, reg, gone.addr)
	en.putRoute(t, route.Route{UserID: 1, DeviceID: "d", Gateway: gone.addr, ConnID: 1})
	en.putRoute(t, route.Route{UserID: 2, DeviceID: "d", Gateway: unregistered.addr, ConnID: 2})
	cfg := testConfig()
	// Far beyond the waits below: an attempt on the stalled gateway would
	// hold the event past them.
	cfg.PushTimeout = 20 * time.Second
	cfg.AckWait = 30 * time.Second
	startTaskDeps(t, cfg, registryDeps(en, reg))

	for seq := int64(1); seq <= 3; seq++ {
		en.publish(t, newEvent("p2p:1:2", seq, []int64{1, 2}, route.Route{UserID: 9}))
	}
	testwait.For(t, 5*time.Second, "pushes to the unregistered gateway", func() bool {
		return len(unregistered.framesOf(2)) == 3
	})
	testwait.For(t, 5*time.Second, "events acked", en.settled(t))
	if n := gone.pushes.Load(); n != 0 {
		t.Fatalf("the deregistered gateway got %d push calls, want none", n)
	}
}

func TestTask_PushesToGatewayBackAtSameAddress(t *testing.T) {
	en := newEnv(t)
	gw := startGateway(t, gatewayMode{})
	reg := registry.NewMemory(0)
	mustRegister(t, reg, gw.addr)
	mustDeregister(t, reg, gw.addr)
	cfg := testConfig()
	cfg.RegistryRefresh = time.Hour // only the first read: the view says vanished
	rt := startTaskDeps(t, cfg, registryDeps(en, reg))
	testwait.For(t, 5*time.Second, "the view to see the gateway vanished", func() bool {
		return rt.task.view.state(gw.addr) == registry.Vanished
	})

	// The gateway restarts on the same address and a device logs in there.
	mustRegister(t, reg, gw.addr)
	en.putRoute(t, route.Route{UserID: 2, DeviceID: "d", Gateway: gw.addr, ConnID: 7})
	en.publish(t, newEvent("p2p:1:2", 1, []int64{2}, route.Route{UserID: 1}))
	testwait.For(t, 5*time.Second, "push to the restarted gateway", func() bool {
		return len(gw.framesOf(7)) == 1
	})
}

func TestTask_DropsClientOfVanishedGateway(t *testing.T) {
	en := newEnv(t)
	gw := startGateway(t, gatewayMode{})
	reg := registry.NewMemory(0)
	mustRegister(t, reg, gw.addr)
	cfg := testConfig()
	cfg.RegistryRefresh = 20 * time.Millisecond
	rt := startTaskDeps(t, cfg, registryDeps(en, reg))
	en.putRoute(t, route.Route{UserID: 2, DeviceID: "d", Gateway: gw.addr, ConnID: 2})
	en.publish(t, newEvent("p2p:1:2", 1, []int64{2}, route.Route{UserID: 1}))
	testwait.For(t, 5*time.Second, "push", func() bool { return len(gw.framesOf(2)) == 1 })
	if n := rt.task.gateways.len(); n != 1 {
		t.Fatalf("%d gateway clients after a push, want 1", n)
	}

	mustDeregister(t, reg, gw.addr)
	testwait.For(t, 5*time.Second, "client dropped", func() bool { return rt.task.gateways.len() == 0 })
}

func TestTask_SkipsKickOnVanishedGateway(t *testing.T) {
	en := newEnv(t)
	gone := startGateway(t, gatewayMode{stall: true})
	reg := registry.NewMemory(0)
	mustRegister(t, reg, gone.addr)
	mustDeregister(t, reg, gone.addr)
	cfg := testConfig()
	cfg.PushTimeout = 20 * time.Second
	cfg.AckWait = 30 * time.Second
	startTaskDeps(t, cfg, registryDeps(en, reg))

	en.publishKick(t, &event.KickEvent{UserId: 7, Gateway: gone.addr, ConnId: 5,
		Reason: protocol.CloseReason_KICKED})
	testwait.For(t, 5*time.Second, "kick acked", func() bool {
		return en.durableSettled(t, en.names.KickConsumer())
	})
	if n := len(gone.kicksCopy()); n != 0 {
		t.Fatalf("the vanished gateway got %d kicks, want none", n)
	}
}

// lapse lets addr's registration, which the task's view has seen live,
// run out without a deregistration, as that of a gateway that can no
// longer reach the registry does, and waits for the view to call it
// lapsed. The last registration is short so that the test is, and the
// view, reading every RegistryRefresh, sees it live first.
func lapse(t *testing.T, rt *runningTask, reg registry.Registry, addr string) {
	t.Helper()
	waitState(t, rt, addr, registry.Live)
	if err := reg.Register(context.Background(), addr, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 10*time.Second, "the view to see "+addr+" lapsed", func() bool {
		return rt.task.view.lapsed(addr)
	})
}

// waitState waits until the task's view of the registry says st of addr.
func waitState(t *testing.T, rt *runningTask, addr string, st registry.State) {
	t.Helper()
	testwait.For(t, 10*time.Second, "the view to see "+addr+" "+st.String(), func() bool {
		return rt.task.view.state(addr) == st
	})
}

// A gateway whose registration lapsed (it could not refresh it) but that
// still serves is found by a probe and pushed to, rather than skipped as a
// vanished one until its devices resync.
func TestTask_PushesToLapsedGatewayThatAnswers(t *testing.T) {
	en := newEnv(t)
	gw := startGateway(t, gatewayMode{})
	reg := registry.NewMemory(0)
	mustRegister(t, reg, gw.addr)
	cfg := testConfig()
	cfg.RegistryRefresh = 20 * time.Millisecond
	rt := startTaskDeps(t, cfg, registryDeps(en, reg))
	lapse(t, rt, reg, gw.addr)
	testwait.For(t, 10*time.Second, "the lapsed gateway to answer its probe", func() bool {
		return rt.task.lapsed.answering(gw.addr)
	})

	en.putRoute(t, route.Route{UserID: 2, DeviceID: "d", Gateway: gw.addr, ConnID: 7})
	en.publish(t, newEvent("p2p:1:2", 1, []int64{2}, route.Route{UserID: 1}))
	testwait.For(t, 5*time.Second, "push to the lapsed gateway", func() bool {
		return len(gw.framesOf(7)) == 1
	})
	gauge := rt.task.metrics.registry.WithLabelValues("lapsed_answering")
	testwait.For(t, 5*time.Second, "the lapsed gateway counted as answering", func() bool {
		return testutil.ToFloat64(gauge) == 1
	})
}

// A lapsed gateway that does not answer costs no push a wait: it gets one
// probe at a time, beside the pushes, and is skipped meanwhile. One that
// deregistered is never probed.
func TestTask_LapsedDeadGatewayIsProbedNotWaitedFor(t *testing.T) {
	en := newEnv(t)
	dead := startGateway(t, gatewayMode{stall: true}) // holds each call for PushTimeout
	left := startGateway(t, gatewayMode{stall: true})
	live := startGateway(t, gatewayMode{})
	reg := registry.NewMemory(0)
	mustRegister(t, reg, dead.addr)
	mustRegister(t, reg, left.addr)
	mustRegister(t, reg, live.addr)
	cfg := testConfig()
	cfg.RegistryRefresh = 20 * time.Millisecond
	// Far beyond the waits below: a push that waited on a stalled gateway
	// would hold its event past them.
	cfg.PushTimeout = 20 * time.Second
	cfg.AckWait = 30 * time.Second
	rt := startTaskDeps(t, cfg, registryDeps(en, reg))
	lapse(t, rt, reg, dead.addr)
	waitState(t, rt, left.addr, registry.Live)
	mustDeregister(t, reg, left.addr)
	waitState(t, rt, left.addr, registry.Vanished)

	en.putRoute(t, route.Route{UserID: 1, DeviceID: "d", Gateway: dead.addr, ConnID: 1})
	en.putRoute(t, route.Route{UserID: 2, DeviceID: "d", Gateway: left.addr, ConnID: 2})
	en.putRoute(t, route.Route{UserID: 3, DeviceID: "d", Gateway: live.addr, ConnID: 3})
	for seq := int64(1); seq <= 3; seq++ {
		en.publish(t, newEvent("group:1", seq, []int64{1, 2, 3}, route.Route{UserID: 9}))
	}
	testwait.For(t, 5*time.Second, "pushes to the live gateway", func() bool {
		return len(live.framesOf(3)) == 3
	})
	testwait.For(t, 5*time.Second, "events acked", en.settled(t))
	if n := dead.pushes.Load(); n > 1 {
		t.Errorf("the lapsed, stalled gateway got %d calls, want at most its one probe", n)
	}
	if n := left.pushes.Load(); n != 0 {
		t.Errorf("the deregistered gateway got %d calls, want none", n)
	}
}

// A kick that fails on a lapsed gateway that answered its probe stops the
// calls to it, as a failed push does: without that, a lapsed gateway that
// died is called for every kick (each waiting out PushTimeout on a hung
// host), and never probed again, until the registry forgets it.
func TestTask_FailedKickStopsCallsToLapsedGateway(t *testing.T) {
	en := newEnv(t)
	gw := startGateway(t, gatewayMode{})
	reg := registry.NewMemory(0)
	mustRegister(t, reg, gw.addr)
	cfg := testConfig()
	cfg.RegistryRefresh = 20 * time.Millisecond
	rt := startTaskDeps(t, cfg, registryDeps(en, reg))
	lapse(t, rt, reg, gw.addr)
	testwait.For(t, 10*time.Second, "the lapsed gateway to answer its probe", func() bool {
		return rt.task.lapsed.answering(gw.addr)
	})

	gw.down()
	en.publishKick(t, &event.KickEvent{UserId: 7, Gateway: gw.addr, ConnId: 1,
		Reason: protocol.CloseReason_KICKED})
	testwait.For(t, 5*time.Second, "calls to the lapsed gateway to stop after a failed kick",
		func() bool { return !rt.task.lapsed.answering(gw.addr) })
}

// A kick for a lapsed gateway whose probe has not answered yet waits for
// the probe rather than being dropped: the gateway may well be alive, and a
// dropped kick leaves the replaced connection open for good, where a
// skipped push costs only a resync.
func TestTask_KickWaitsForLapsedGatewaysProbe(t *testing.T) {
	en := newEnv(t)
	gw := startGateway(t, gatewayMode{held: true}) // Push calls (the probe) wait for release
	reg := registry.NewMemory(0)
	mustRegister(t, reg, gw.addr)
	cfg := testConfig()
	cfg.RegistryRefresh = 20 * time.Millisecond
	cfg.MaxDeliver = 10
	rt := startTaskDeps(t, cfg, registryDeps(en, reg))
	lapse(t, rt, reg, gw.addr)
	testwait.For(t, 10*time.Second, "the lapsed gateway's probe", func() bool {
		return gw.pushes.Load() == 1
	})

	en.publishKick(t, &event.KickEvent{UserId: 7, Gateway: gw.addr, ConnId: 1,
		Reason: protocol.CloseReason_KICKED})
	testwait.For(t, 5*time.Second, "the kick handled once", func() bool {
		return testutil.ToFloat64(rt.task.metrics.skipped)+
			testutil.ToFloat64(rt.task.metrics.retried) >= 1
	})
	gw.release()
	testwait.For(t, 10*time.Second, "the kick on the lapsed gateway once it answered", func() bool {
		return len(gw.kicksCopy()) == 1
	})
}

// A registry read that completes after a newer one, which saw a gateway
// live again, must not drop the gateway's client as vanished on its older
// word: pushes queued on the client would fail. The newer read here is one
// a push makes to check a vanished gateway (skipGateway).
func TestTask_OutdatedRegistryReadKeepsLiveGatewaysClient(t *testing.T) {
	const addr = "127.0.0.1:24001" // its client is made, never called
	expiry := time.Now().Add(time.Minute)
	tk, reg := scriptedTask(t, registry.Snapshot{Live: map[string]time.Time{addr: expiry}})
	ctx := context.Background()
	tk.readRegistry(ctx)
	if _, err := tk.gateways.get(addr); err != nil {
		t.Fatal(err)
	}

	// The gateway deregisters, and a registry read sees it gone but is slow
	// to complete; meanwhile it registers again and a newer read sees it.
	reg.set(registry.Snapshot{Gone: map[string]time.Time{addr: time.Now()}})
	held := reg.holdNext()
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk.readRegistry(ctx)
	}()
	<-held.taken
	reg.set(registry.Snapshot{Live: map[string]time.Time{addr: expiry.Add(time.Minute)}})
	if snap, err := tk.view.since(ctx, tk.view.mark()); err != nil ||
		snap.State(addr) != registry.Live {
		t.Fatalf("the newer read: %+v, %v; want %s live", snap, err, addr)
	}
	close(held.release)
	<-done

	if tk.view.state(addr) != registry.Live {
		t.Fatalf("the view calls %s %v after the older read, want live", addr, tk.view.state(addr))
	}
	if n := tk.gateways.len(); n != 1 {
		t.Errorf("%d clients after an older read completed, want the live gateway's", n)
	}
}

// A kick or push that comes while task's first registry read is under way
// (it starts the kick consumer and that read together) found every gateway
// unknown and called one the read was about to show vanished, waiting out
// the call's timeout: TestTask_SkipsKickOnVanishedGateway timed out so on
// a loaded machine. skipGateway now waits for the first read.
func TestTask_SkipWaitsForTheFirstRegistryRead(t *testing.T) {
	const addr = "127.0.0.1:24002" // never called
	tk, reg := scriptedTask(t, registry.Snapshot{Gone: map[string]time.Time{addr: time.Now()}})
	ctx := context.Background()
	held := reg.holdNext()
	first := make(chan struct{})
	go func() {
		defer close(first)
		tk.readRegistry(ctx) // watchRegistry's first
	}()
	<-held.taken

	skipped := make(chan bool, 1)
	go func() { skipped <- tk.skipGateway(ctx, addr, tk.view.mark()) }()
	select {
	case skip := <-skipped:
		t.Fatalf("skipGateway = %v before the first registry read completed", skip)
	case <-time.After(100 * time.Millisecond): // waiting, as it should
	}
	close(held.release)
	<-first
	if !<-skipped {
		t.Fatal("a gateway the first registry read holds vanished was not skipped")
	}
}

// A registry that keeps failing is warned of at the first failure and then
// once a minute, not at every read (every 2 s by default, which the shared
// sampler let through, 5 in 10 s), and its return is said once.
func TestTask_RegistryOutageWarnsOncePerMinute(t *testing.T) {
	var logs syncbuf.Buffer
	reg := &scriptedRegistry{}
	tk, err := New(testConfig(), Deps{Log: zerolog.New(&logs), JS: fakeJS{},
		MQ: newNamesForTest(), Routes: route.NewMemory(time.Minute), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tk.gateways.closeAll)
	ctx := context.Background()
	reg.fail(errors.New("registry unreachable"))
	for range 30 {
		tk.readRegistry(ctx)
	}
	if n := strings.Count(logs.String(), "gateway registry read failed"); n != 1 {
		t.Fatalf("%d warnings for 30 failed reads within a minute, want 1:\n%s", n, logs.String())
	}

	// Past the minute, once more; then the return, once.
	start := time.Now()
	tk.registryFailed(errors.New("registry unreachable"), start.Add(registryWarnEvery))
	reg.fail(nil)
	tk.readRegistry(ctx)
	tk.readRegistry(ctx)
	warned := strings.Count(logs.String(), "gateway registry read failed")
	back := strings.Count(logs.String(), "gateway registry read again")
	if warned != 2 || back != 1 {
		t.Fatalf("%d warnings and %d recoveries, want 2 and 1:\n%s", warned, back, logs.String())
	}
}
