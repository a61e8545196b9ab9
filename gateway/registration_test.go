package gateway

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
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
//
// The port is probed with a dial, since a transport that listens on a
// duplicate of the socket (Kitex's netpoll did) keeps it open after the
// listener is closed. But a port given back is free for any process on the
// machine to bind before the dial gets there: a dial that connects fails
// the test only if this process still listens on the port.
func TestGateway_StopRightAfterStart(t *testing.T) {
	for range 20 {
		h := startGateway(t, Config{})
		if err := h.stop(t); err != nil {
			t.Fatalf("Run = %v", err)
		}
		c, err := net.DialTimeout("tcp", h.pushAddr, time.Second)
		if err != nil {
			continue
		}
		_ = c.Close()
		port := h.gw.pushLn.Addr().(*net.TCPAddr).Port
		if ours, err := listensOn(port); err != nil || ours {
			t.Fatalf("push port %s still accepts after stop (this process listens: %v, %v)",
				h.pushAddr, ours, err)
		}
		t.Logf("push port %s was bound by another process after stop", h.pushAddr)
	}
}

// listensOn reports whether a socket of this process, whichever of its
// descriptors, listens on TCP port, as Linux's /proc tells.
func listensOn(port int) (bool, error) {
	inodes := map[string]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			return false, err
		}
		// Each line: sl local_address rem_address st ... inode; the local
		// port is the hex after the colon, and st 0A is LISTEN.
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" {
				continue
			}
			_, hexPort, _ := strings.Cut(f[1], ":")
			if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil && int(p) == port {
				inodes["socket:["+f[9]+"]"] = true
			}
		}
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return false, err
	}
	for _, fd := range fds {
		if link, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && inodes[link] {
			return true, nil
		}
	}
	return false, nil
}
