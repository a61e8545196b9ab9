package scenario

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConnect_FailsOnBadCredentials(t *testing.T) {
	s := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg, _ := connectDefaults(ConnectConfig{Addr: s.Addr(), Conns: 5, Users: 1})
	if _, err := registerSpread(ctx, cfg.Addr, cfg.Prefix, 1); err != nil {
		t.Fatalf("register: %v", err)
	}
	wrong := []credential{{username: cfg.Prefix + "0", password: "not it"}}
	r := &ramp{cfg: cfg, creds: wrong, conns: make([]*benchConn, 5),
		latencies: make([]time.Duration, 5), keepCtx: ctx}
	defer r.closeAll()
	if err := r.run(ctx); err == nil {
		t.Fatal("ramp with a wrong password succeeded")
	}
}

// A connection whose every attempt is refused fails naming its device, its
// user and the last refusal. The error used to be "connection 0: connect:
// refused as overloaded 50 times", which said neither who was refused nor
// whether by the gateway's accept rate or by which login budget or queue.
func TestConnect_RefusedConnectionNamesItsLastRefusal(t *testing.T) {
	s := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg, _ := connectDefaults(ConnectConfig{Addr: s.Addr(), Conns: 1, Users: 1})
	creds, err := registerSpread(ctx, cfg.Addr, cfg.Prefix, 1)
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	s.FailLogins(1000) // every login answered UNAVAILABLE, a shed login
	r := &ramp{cfg: cfg, creds: creds, conns: make([]*benchConn, 1),
		latencies: make([]time.Duration, 1), refusals: 3, backoff: time.Millisecond}
	defer r.closeAll()
	err = r.run(ctx)
	want := []string{"connection 0", "device bench-0 of user " + creds[0].username,
		"refused 3 times", "answered UNAVAILABLE: injected failure"}
	for _, w := range want {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Fatalf("ramp = %v, want an error with %q", err, w)
		}
	}
	if !errors.Is(err, errRefused) || r.refused.Load() != 3 {
		t.Fatalf("ramp = %v after %d refusals, want errRefused after 3", err, r.refused.Load())
	}
}
