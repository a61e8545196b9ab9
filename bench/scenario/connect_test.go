package scenario

import (
	"context"
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
