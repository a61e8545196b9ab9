package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/resonance-im/resonance/bench/scenario"
)

// runSmoke parses the smoke flags, runs scenario.Smoke and prints its
// summary line.
func runSmoke(ctx context.Context, args []string, out, errOut io.Writer) int {
	var cfg scenario.SmokeConfig
	fs := flag.NewFlagSet("smoke", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:7000", "gateway address (host:port)")
	fs.IntVar(&cfg.Users, "users", 20, "users, each on its own connection (at least 2)")
	fs.IntVar(&cfg.Messages, "messages", 50, "messages sent by each user")
	fs.IntVar(&cfg.Concurrency, "concurrency", 16, "sends in flight across all users")
	fs.DurationVar(&cfg.Timeout, "timeout", time.Minute, "wait for delivery after the last ack")
	fs.StringVar(&cfg.Prefix, "prefix", "", "username prefix (default random per run)")
	if code, done := parseArgs(fs, args); done {
		return code
	}

	res, err := scenario.Smoke(ctx, cfg)
	if err != nil && !errors.Is(err, scenario.ErrCheckFailed) {
		fmt.Fprintf(errOut, "bench: %v\n", err)
		if errors.Is(err, scenario.ErrBadConfig) {
			return 2
		}
		return 1
	}
	fmt.Fprintln(out, res)
	if err != nil {
		fmt.Fprintf(errOut, "bench: %v\n", err)
		return 1
	}
	return 0
}
