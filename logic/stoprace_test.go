package logic

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// stopOnServing is a log writer that starts stop when Serve logs that it
// serves, after Serve has created the Kitex server and before Run has built
// the transport that a Kitex Stop would shut down, and holds Serve there
// until sent says Stop has sent the exit signal.
type stopOnServing struct {
	stop func()
	sent func() bool
}

func (w *stopOnServing) Write(p []byte) (int, error) {
	if !bytes.Contains(p, []byte("logic serving")) || w.stop == nil {
		return len(p), nil
	}
	go w.stop()
	for deadline := time.Now().Add(5 * time.Second); !w.sent(); {
		if time.Now().After(deadline) {
			break // Stop never got that far; the test fails below
		}
		time.Sleep(time.Millisecond)
	}
	return len(p), nil
}

// A Stop that comes between Serve creating the Kitex server and Run
// starting it still closes the listener: Kitex's Stop, run once only, finds
// nothing to shut down then, and Run would serve on after Serve returned.
func TestService_StopAsServeStartsClosesListener(t *testing.T) {
	w := &stopOnServing{}
	e := newEnvWith(t, sqliteConfig(t), func(d *Deps) {
		d.Log = zerolog.New(w).Level(zerolog.InfoLevel)
	})
	stopped := make(chan error, 1)
	w.stop = func() { stopped <- e.svc.Stop() }
	// Read on Serve's goroutine, which set exit.
	w.sent = func() bool { return len(e.svc.exit) == 1 }

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- e.svc.Serve(ln) }()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve still running 10 s after Stop")
	}
	if err := <-stopped; err != nil {
		t.Fatalf("stop: %v", err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		_ = c.Close()
		t.Fatalf("%s still accepts connections after Stop and Serve returned", addr)
	}
}
