package main

import (
	"context"
	"flag"
	"io"
	"time"

	"github.com/resonance-im/resonance/bench/scenario"
)

// runGroup parses the group flags, runs scenario.Group and prints its report.
func runGroup(ctx context.Context, args []string, out, errOut io.Writer) int {
	var cfg scenario.GroupConfig
	var o outputFlags
	fs := flag.NewFlagSet("group", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:7000", "gateway address (host:port)")
	fs.IntVar(&cfg.Groups, "groups", 1, "groups, with no member in common")
	fs.IntVar(&cfg.Size, "size", 200, "members of each group, owner included")
	fs.Float64Var(&cfg.Online, "online", 0.5,
		"share of each group's members logged in (one connection each; at least 2)")
	fs.IntVar(&cfg.Rate, "rate", 200, "offered group messages per second over all groups")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long messages are offered")
	fs.IntVar(&cfg.MaxInFlight, "max-inflight", 20000, "sends waiting for their ack at most")
	fs.DurationVar(&cfg.Timeout, "timeout", 30*time.Second,
		"wait for acks and delivery after the last send")
	o.bind(fs)
	if code, done := parseArgs(fs, args); done {
		return code
	}
	cfg.ServerPID, cfg.Progress = o.pid, errOut
	rep, err := scenario.Group(ctx, cfg)
	return o.finish(rep, err, out, errOut)
}
