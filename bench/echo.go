package main

import (
	"context"
	"flag"
	"io"
	"time"

	"github.com/resonance-im/resonance/bench/scenario"
)

// runEcho parses the echo flags, runs scenario.Echo and prints its report.
func runEcho(ctx context.Context, args []string, out, errOut io.Writer) int {
	var cfg scenario.EchoConfig
	var o outputFlags
	fs := flag.NewFlagSet("echo", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:7000", "gateway address (host:port)")
	fs.IntVar(&cfg.Conns, "conns", 64, "logged-in connections")
	fs.IntVar(&cfg.Depth, "depth", 1, "HEARTBEAT requests in flight per connection")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "length of the measured phase")
	fs.BoolVar(&cfg.WebSocket, "ws", false, "connect over WebSocket instead of raw TCP")
	fs.IntVar(&cfg.Users, "users", 0, "users the connections log in as, as devices "+
		"(default 10, or conns/8 when more:\nlogic's default budget of password logins per account)")
	o.bind(fs)
	if code, done := parseArgs(fs, args, "users"); done {
		return code
	}
	cfg.ServerPID, cfg.Progress = o.pid, errOut
	rep, err := scenario.Echo(ctx, cfg)
	return o.finish(rep, err, out, errOut)
}
