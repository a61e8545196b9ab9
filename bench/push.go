package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/resonance-im/resonance/bench/scenario"
)

// runPush parses the push flags, runs scenario.Push and prints its report.
func runPush(ctx context.Context, args []string, out, errOut io.Writer) int {
	var cfg scenario.PushConfig
	var o outputFlags
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:7000", "gateway address (host:port)")
	fs.StringVar(&cfg.PushAddr, "push-addr", "",
		"the same gateway's push Kitex address (its --push-listen), required: the\n"+
			"whole system in one process takes a random push port unless told one")
	fs.StringVar(&cfg.InternalSecret, "internal-secret", os.Getenv("RESONANCE_INTERNAL_SECRET"),
		"the gateway's --internal-secret, which its push port requires (default\n"+
			"$RESONANCE_INTERNAL_SECRET): start the whole system with one to run push")
	fs.StringVar(&cfg.MetricsURL, "metrics-url", "",
		"to find the receivers' conn ids, "+metricsURLUsage)
	fs.IntVar(&cfg.Receivers, "receivers", 500, "logged-in receiving connections")
	fs.IntVar(&cfg.Batch, "batch", 500, "targets per Push call")
	fs.IntVar(&cfg.Callers, "callers", 4, "Push calls in flight")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long Push is called")
	fs.IntVar(&cfg.Window, "window", 0,
		"frames accepted but not yet read at most (default 8 per receiver)")
	o.bind(fs)
	if code, done := parseArgs(fs, args, "window"); done {
		return code
	}
	if cfg.PushAddr == "" {
		fmt.Fprintln(errOut, "bench: push: --push-addr is required: the gateway's "+
			"--push-listen address (start the server with --push-listen HOST:PORT)")
		return 2
	}
	if err := resolveMetricsURL(fs, cfg.Addr, &cfg.MetricsURL, false); err != nil {
		fmt.Fprintf(errOut, "bench: push: %v\n", err)
		return 2
	}
	cfg.ServerPID, cfg.Progress = o.pid, errOut
	rep, err := scenario.Push(ctx, cfg)
	return o.finish(rep, err, out, errOut)
}
