package scenario

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestConnect_LogsInEveryConnection(t *testing.T) {
	s := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ramped := false
	res, err := Connect(ctx, ConnectConfig{Addr: s.Addr(), Conns: 60, Users: 3,
		PerSourceIP: 25, Hold: 300 * time.Millisecond, Ramped: func() { ramped = true },
		Relogin: true})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Log(res)
	if res.Conns != 60 || res.Dropped != 0 || !ramped || res.LoginP50 <= 0 ||
		res.LoginP99 < res.LoginP50 || res.ConnectsPerSec() <= 0 {
		t.Fatalf("result %s, ramped %v; want 60 logged in, none dropped", res, ramped)
	}
	// Every connection came back with its token, as its own device.
	if tok := res.Token; tok == nil || tok.Conns != 60 || tok.LoginP50 <= 0 {
		t.Fatalf("token re-login %+v, want 60 logged in", tok)
	}
}

func TestConnect_FailsOnBadCredentials(t *testing.T) {
	s := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg, _ := connectDefaults(ConnectConfig{Addr: s.Addr(), Conns: 5, Users: 1})
	if _, err := registerUsers(ctx, cfg); err != nil {
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

func TestConnect_RejectsBadConfig(t *testing.T) {
	_, err := Connect(context.Background(), ConnectConfig{Conns: 5})
	if !errors.Is(err, ErrBadConfig) {
		t.Fatalf("Connect without an address: %v, want ErrBadConfig", err)
	}
}
