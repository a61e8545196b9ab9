package e2etest

import (
	"context"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/app"
	"github.com/resonance-im/resonance/bench/scenario"
)

// system is the in-process system the tests share, with the addresses the
// scenarios need.
type system struct {
	addr, pushAddr, metricsURL string
}

// startSystem starts every role in one process on free ports. The frame rate
// limit is off: echo sends far more than a client may.
func startSystem(t *testing.T) system {
	t.Helper()
	pushAddr := freeAddr(t)
	cfg := app.Config{Role: app.RoleAll, DataDir: t.TempDir(),
		Prefix:      fmt.Sprintf("bench%d", time.Now().UnixNano()),
		LogicListen: "127.0.0.1:0", PushListen: pushAddr, HTTPListen: "127.0.0.1:0",
		InternalSecret: benchSecret}
	cfg.Gateway.Addr = "127.0.0.1:0"
	cfg.Gateway.FrameRate = -1
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sys, err := app.Start(ctx, cfg, zerolog.Nop())
	if err != nil {
		t.Fatalf("start system: %v", err)
	}
	t.Cleanup(sys.Stop)
	return system{addr: sys.GatewayAddr().String(), pushAddr: pushAddr,
		metricsURL: "http://" + sys.HTTPAddr().String() + "/metrics"}
}

// benchSecret is the system's internal secret, which push needs.
const benchSecret = "bench-e2e-secret"

// freeAddr returns a loopback address free a moment ago. The push listener
// takes no port 0 we could read back, so this one is picked ahead.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func TestScenarios_TinyRunsAgainstTheSystem(t *testing.T) {
	sys := startSystem(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pid := os.Getpid() // the system runs in this process

	tests := []struct {
		name string
		run  func() (scenario.Report, error)
		// want are metrics the report must hold with these values.
		want map[string]float64
		// counts are latencies the report must hold with these counts.
		counts map[string]uint64
	}{
		{name: "echo", run: func() (scenario.Report, error) {
			return scenario.Echo(ctx, scenario.EchoConfig{Addr: sys.addr, Conns: 4, Depth: 2,
				Duration: 300 * time.Millisecond, ServerPID: pid})
		}},
		{name: "chat", run: func() (scenario.Report, error) {
			// 100 messages; the 2 that open the pairs' conversations
			// before the clock starts are not counted.
			return scenario.Chat(ctx, scenario.ChatConfig{Addr: sys.addr, Users: 4, Rate: 200,
				Duration: 500 * time.Millisecond, ServerPID: pid})
		}, want: map[string]float64{"sent msgs": 100, "acked msgs": 100, "delivered msgs": 100,
			"lost": 0, "duplicated": 0, "reordered": 0},
			counts: map[string]uint64{"end to end": 100, "ack": 100, "sent after due": 100}},
		{name: "push", run: func() (scenario.Report, error) {
			return scenario.Push(ctx, scenario.PushConfig{Addr: sys.addr,
				PushAddr: sys.pushAddr, InternalSecret: benchSecret, MetricsURL: sys.metricsURL,
				Receivers: 12, Batch: 5,
				Callers: 2, Duration: 300 * time.Millisecond, ServerPID: pid})
		}},
		{name: "group", run: func() (scenario.Report, error) {
			// 2 groups of 6, 3 online each: 40 messages, each pushed to the
			// 2 other online members of its group.
			return scenario.Group(ctx, scenario.GroupConfig{Addr: sys.addr, Groups: 2, Size: 6,
				Online: 0.5, Rate: 80, Duration: 500 * time.Millisecond, ServerPID: pid})
		}, want: map[string]float64{"sent msgs": 40, "acked msgs": 40, "deliveries": 80,
			"lost": 0, "duplicated": 0, "reordered": 0}},
		{name: "idle", run: func() (scenario.Report, error) {
			return scenario.Idle(ctx, scenario.IdleConfig{Addr: sys.addr, Conns: 20,
				Hold: 300 * time.Millisecond, Settle: time.Millisecond,
				MetricsURL: sys.metricsURL, ServerPID: pid})
		}, want: map[string]float64{"logged-in conns": 20, "dropped": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := tt.run()
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if !rep.OK || rep.Scenario != tt.name || len(rep.Latencies) == 0 ||
				rep.Latencies[0].Count == 0 || rep.ServerCPU == nil {
				t.Fatalf("report %+v", rep)
			}
			for name, want := range tt.want {
				if got, ok := metric(rep, name); !ok || got != want {
					t.Errorf("%s = %v (reported %v), want %v", name, got, ok, want)
				}
			}
			for name, want := range tt.counts {
				if got, ok := latencyCount(rep, name); !ok || got != want {
					t.Errorf("latency %q counted %d (reported %v), want %d", name, got, ok, want)
				}
			}
			t.Logf("%+v", rep.Metrics)
		})
	}
}

// metric returns the value of rep's metric name.
func metric(rep scenario.Report, name string) (float64, bool) {
	for _, m := range rep.Metrics {
		if m.Name == name {
			return m.Value, true
		}
	}
	return 0, false
}

// latencyCount returns the count of rep's latency name.
func latencyCount(rep scenario.Report, name string) (uint64, bool) {
	for _, l := range rep.Latencies {
		if l.Name == name {
			return l.Count, true
		}
	}
	return 0, false
}

// A short --prefix makes short user names; the bench's passwords still meet
// the server's minimum of 8 bytes (the prefix "rp" once gave "pw-rp0", which
// registration refused).
func TestSmoke_ShortPrefixAgainstTheSystem(t *testing.T) {
	sys := startSystem(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := scenario.Smoke(ctx, scenario.SmokeConfig{Addr: sys.addr, Prefix: "rp", Users: 4,
		Messages: 5, Concurrency: 2, Timeout: 10 * time.Second})
	if err != nil || !res.OK() || res.Delivered != 20 {
		t.Fatalf("smoke with prefix rp: %v, %v", res, err)
	}
}
