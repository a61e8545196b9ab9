package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/resonance-im/resonance/bench/scenario"
)

// runIdle parses the idle flags, runs scenario.Idle and prints its report.
func runIdle(ctx context.Context, args []string, out, errOut io.Writer) int {
	var cfg scenario.IdleConfig
	var o outputFlags
	fs := flag.NewFlagSet("idle", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:7000", "gateway address (host:port)")
	fs.IntVar(&cfg.Conns, "conns", 1000, "connections to open, log in and hold")
	fs.BoolVar(&cfg.WebSocket, "ws", false, "connect over WebSocket instead of raw TCP")
	fs.DurationVar(&cfg.Hold, "duration", 30*time.Second,
		"hold the logged-in connections, heartbeating, this long")
	fs.IntVar(&cfg.Users, "users", 0, "users the connections log in as, as devices "+
		"(default conns/8:\nlogic's default budget of password logins per account)")
	fs.IntVar(&cfg.Parallel, "parallel", 64, "connections being opened at once")
	fs.IntVar(&cfg.Warmup, "warmup", 0,
		"connections opened before the baseline memory sample (default conns/10, at most 1000)")
	fs.StringVar(&cfg.MetricsURL, "metrics-url", "",
		"RSS, Go heap and connections from "+metricsURLUsage+"; empty: none read")
	fs.StringVar(&cfg.HeapURL, "heap-url", "",
		"gateway's /debug/pprof/heap?gc=1&debug=1 (needs --pprof): Go heap after a forced GC;\n"+
			"without it the heap comes from /metrics, garbage included")
	o.bind(fs)
	if code, done := parseArgs(fs, args, "users", "warmup"); done {
		return code
	}
	if err := resolveMetricsURL(fs, cfg.Addr, &cfg.MetricsURL, true); err != nil {
		fmt.Fprintf(errOut, "bench: idle: %v\n", err)
		return 2
	}
	cfg.ServerPID, cfg.Progress = o.pid, errOut
	rep, err := scenario.Idle(ctx, cfg)
	return o.finish(rep, err, out, errOut)
}
