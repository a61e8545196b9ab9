package gateway

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	gwregistry "github.com/resonance-im/resonance/internal/registry"
)

// failingRegistry refuses every call.
type failingRegistry struct{ gwregistry.Registry }

var errRegistryDown = errors.New("registry down")

func (failingRegistry) Register(context.Context, string, time.Duration) error {
	return errRegistryDown
}

// runWithRegistry runs a second gateway on reg, sharing h's logic client.
func runWithRegistry(t *testing.T, h *harness, reg gwregistry.Registry,
	ttl time.Duration) (g *Gateway, stop func() error) {
	t.Helper()
	g, err := New(Config{Addr: "127.0.0.1:0", NumEventLoop: 1, RegisterTTL: ttl},
		Deps{Log: zerolog.New(zerolog.NewTestWriter(t)), Logic: h.gw.logic,
			PushListener: listen(t), Registry: reg})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error { // idempotent: a test stops it, and so does its cleanup
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(15 * time.Second):
				t.Error("Run did not return after cancel")
			}
		})
		return runErr
	}
	select {
	case <-g.Ready():
	case err := <-done:
		cancel()
		return g, func() error { return err }
	case <-time.After(5 * time.Second):
		t.Fatal("gateway not ready after 5s")
	}
	t.Cleanup(func() { _ = stop() })
	return g, stop
}

func snapshotOf(t *testing.T, reg gwregistry.Registry) gwregistry.Snapshot {
	t.Helper()
	s, err := reg.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestGateway_RegistersRefreshesAndDeregisters(t *testing.T) {
	h := startGateway(t, Config{}) // for a real logic client
	reg := gwregistry.NewMemory(0)
	const ttl = 300 * time.Millisecond
	g, stop := runWithRegistry(t, h, reg, ttl)

	first, ok := snapshotOf(t, reg).Live[g.pushAddr]
	if !ok {
		t.Fatalf("%s not live once ready: %+v", g.pushAddr, snapshotOf(t, reg))
	}
	// Outliving the first TTL proves the refresh.
	deadline := time.Now().Add(5 * time.Second)
	for snapshotOf(t, reg).Live[g.pushAddr].Before(first.Add(ttl)) {
		if time.Now().After(deadline) {
			t.Fatalf("registration not refreshed past %v: %+v", first, snapshotOf(t, reg))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := snapshotOf(t, reg).State(g.pushAddr); st != gwregistry.Live {
		t.Fatalf("state %v after refresh, want live", st)
	}

	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if st := snapshotOf(t, reg).State(g.pushAddr); st != gwregistry.Vanished {
		t.Fatalf("state %v after shutdown, want vanished", st)
	}
}

func TestGateway_RunFailsWhenRegistrationFails(t *testing.T) {
	h := startGateway(t, Config{})
	g, stop := runWithRegistry(t, h, failingRegistry{}, time.Second)
	if err := stop(); !errors.Is(err, errRegistryDown) {
		t.Fatalf("Run = %v, want the registry's error", err)
	}
	if g.Addr() != nil {
		t.Fatal("gateway became ready without a registration")
	}
}

// A gateway stopped as soon as it is ready stops cleanly and gives its push
// port back, however early in the push server's start the stop lands.
func TestGateway_StopRightAfterStart(t *testing.T) {
	for range 20 {
		h := startGateway(t, Config{})
		if err := h.stop(t); err != nil {
			t.Fatalf("Run = %v", err)
		}
		if c, err := net.DialTimeout("tcp", h.pushAddr, time.Second); err == nil {
			_ = c.Close()
			t.Fatalf("push port %s still accepts after stop", h.pushAddr)
		}
	}
}
