package logic

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// TestKitex_OSSignalsAreTheCallers checks that the Kitex server leaves OS
// signals to the process: Kitex by default stops a server on SIGINT, SIGTERM
// or SIGHUP by itself, which in one process stopped logic while the gateway
// was still draining (SIGTERM), or for good while the process served on with
// /readyz ready (SIGHUP). Only Stop stops it.
func TestKitex_OSSignalsAreTheCallers(t *testing.T) {
	// The process's own handler, as main's: without one SIGHUP would end
	// the test binary.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP)
	defer signal.Stop(sigs)

	e := newEnv(t, sqliteConfig(t))
	cli, served := serveKitex(t, e)
	registerOver(t, cli, "alice")
	time.Sleep(200 * time.Millisecond) // the server is past its start

	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sigs:
	case <-time.After(5 * time.Second):
		t.Fatal("SIGHUP not received")
	}
	time.Sleep(300 * time.Millisecond) // what a server acting on it would take
	select {
	case err := <-served:
		served <- err
		t.Fatalf("Serve returned after a SIGHUP, before Stop: %v", err)
	default:
	}
	if _, err := cli.Register(context.Background(),
		&protocol.RegisterReq{Username: "bob", Password: testPassword}, testConn); err != nil {
		t.Fatalf("register after SIGHUP: %v", err)
	}
}
