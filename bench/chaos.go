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

// runChaos parses the chaos flags, runs scenario.Chaos, prints every device
// (ok or FAIL) and the summary line.
func runChaos(ctx context.Context, args []string, out, errOut io.Writer) int {
	var cfg scenario.ChaosConfig
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.StringVar(&cfg.Bin, "bin", "", "resonance binary (default: go build of this module)")
	fs.StringVar(&cfg.Services.MySQLDSN, "db-dsn", "root@tcp(127.0.0.1:3306)/test?parseTime=true",
		"MariaDB DSN")
	fs.StringVar(&cfg.Services.RedisAddr, "redis-addr", "127.0.0.1:6379", "Redis address")
	fs.StringVar(&cfg.Services.NATSURL, "nats-url", "nats://127.0.0.1:4222", "NATS URL")
	fs.IntVar(&cfg.Users, "users", 4, "users, two devices each (at least 2)")
	fs.IntVar(&cfg.Messages, "messages", 20, "messages sent by each device")
	fs.DurationVar(&cfg.Interval, "interval", 300*time.Millisecond,
		"pause between sends of a device")
	fs.DurationVar(&cfg.Down, "down", 500*time.Millisecond, "time a killed role stays down")
	fs.DurationVar(&cfg.Timeout, "timeout", 100*time.Second,
		"bound of the run (the build comes on top)")
	fs.StringVar(&cfg.Prefix, "prefix", "", "prefix of tables, stream and keys (default random)")
	fs.IntVar(&cfg.Rounds, "rounds", 1, "times each role is killed, spread over the sends")
	fs.BoolVar(&cfg.Embedded, "embedded", false,
		"kill the whole system as one process on embedded defaults (no MariaDB, Redis, NATS)")
	if code, done := parseArgs(fs, args); done {
		return code
	}
	cfg.Log = errOut

	res, err := scenario.Chaos(ctx, cfg)
	if err != nil && !errors.Is(err, scenario.ErrCheckFailed) && res.Devices == 0 {
		fmt.Fprintf(errOut, "bench: %v\n", err)
		if errors.Is(err, scenario.ErrBadConfig) {
			return 2
		}
		return 1
	}
	for _, line := range res.Lines() {
		fmt.Fprintln(out, line)
	}
	fmt.Fprintf(errOut, "chaos: resumes=%d (one per device at start, one per reconnect)\n",
		res.Resumes)
	fmt.Fprintln(out, res)
	if err != nil {
		fmt.Fprintf(errOut, "bench: %v\n", err)
		return 1
	}
	return 0
}
