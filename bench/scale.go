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

// runScale parses the scale flags, runs scenario.Scale, prints every device
// (ok or FAIL) and the summary line.
func runScale(ctx context.Context, args []string, out, errOut io.Writer) int {
	var cfg scenario.ScaleConfig
	fs := flag.NewFlagSet("scale", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.StringVar(&cfg.Bin, "bin", "", "resonance binary (default: go build of this module)")
	fs.StringVar(&cfg.Services.MySQLDSN, "db-dsn", "root@tcp(127.0.0.1:3306)/test?parseTime=true",
		"MariaDB DSN")
	fs.StringVar(&cfg.Services.RedisAddr, "redis-addr", "127.0.0.1:6379", "Redis address")
	fs.StringVar(&cfg.Services.NATSURL, "nats-url", "nats://127.0.0.1:4222", "NATS URL")
	fs.IntVar(&cfg.Users, "users", 4, "users, one device on each gateway (at least 2)")
	fs.IntVar(&cfg.Messages, "messages", 16,
		"messages sent by each device, half before the killed gateway vanished")
	fs.DurationVar(&cfg.Interval, "interval", 200*time.Millisecond,
		"pause between sends of a device")
	fs.DurationVar(&cfg.RegisterTTL, "register-ttl", 3*time.Second,
		"gateways' registry TTL: how long the killed gateway looks alive")
	fs.DurationVar(&cfg.Timeout, "timeout", 90*time.Second,
		"bound of the run (the build comes on top)")
	fs.StringVar(&cfg.Prefix, "prefix", "", "prefix of tables, stream and keys (default random)")
	if code, done := parseArgs(fs, args); done {
		return code
	}
	cfg.Log = errOut

	res, err := scenario.Scale(ctx, cfg)
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
	fmt.Fprintln(out, res)
	if err != nil {
		fmt.Fprintf(errOut, "bench: %v\n", err)
		return 1
	}
	return 0
}
