package main

import (
	"context"
	"flag"
	"io"
	"time"

	"github.com/resonance-im/resonance/bench/scenario"
)

// runChat parses the chat flags, runs scenario.Chat and prints its report.
func runChat(ctx context.Context, args []string, out, errOut io.Writer) int {
	var cfg scenario.ChatConfig
	var o outputFlags
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:7000", "gateway address (host:port)")
	fs.IntVar(&cfg.Users, "users", 100, "users, in pairs, each sending to its partner (even)")
	fs.IntVar(&cfg.Rate, "rate", 1000, "offered messages per second over all users")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long messages are offered")
	fs.IntVar(&cfg.MaxInFlight, "max-inflight", 20000, "sends waiting for their ack at most")
	fs.DurationVar(&cfg.Timeout, "timeout", 30*time.Second,
		"wait for acks and delivery after the last send")
	o.bind(fs)
	if code, done := parseArgs(fs, args); done {
		return code
	}
	cfg.ServerPID, cfg.Progress = o.pid, errOut
	rep, err := scenario.Chat(ctx, cfg)
	return o.finish(rep, err, out, errOut)
}
