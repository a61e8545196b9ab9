package task

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/internal/registry"
	"github.com/resonance-im/resonance/internal/route"
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
