package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/resonance-im/resonance/bench/scenario"
)

// connectWorkerCmd is the hidden subcommand a connect worker process runs:
// the bench starting itself again, speaking JSON lines on stdin and stdout.
const connectWorkerCmd = "connect-worker"

// connectFlags are the flags of connect that are lists or pick the cluster.
type connectFlags struct {
	addrs, pids, heapURLs, metricsURLs []string
	json                               bool
}

// runConnect parses the connect flags, runs scenario.ConnectSpread and
// prints its report.
func runConnect(ctx context.Context, args []string, out, errOut io.Writer) int {
	cfg := scenario.SpreadConfig{Progress: errOut}
	f := connectFlags{addrs: []string{"127.0.0.1:7000"}}
	fs := flag.NewFlagSet("connect", flag.ContinueOnError)
	fs.SetOutput(errOut)
	bindConnect(fs, &cfg, &f)
	if code, done := parseArgs(fs, args, "hold", "warmup", "cluster-gateways"); done {
		return code
	}
	if err := f.gateways(fs, &cfg); err != nil {
		fmt.Fprintf(errOut, "bench: %v\n", err)
		return 2
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(errOut, "bench: find the bench binary for its workers: %v\n", err)
		return 1
	}
	cfg.WorkerCommand = func() *exec.Cmd { return exec.Command(exe, connectWorkerCmd) }

	res, err := scenario.ConnectSpread(ctx, cfg)
	var rep scenario.Report
	if err == nil || errors.Is(err, scenario.ErrCheckFailed) {
		rep = res.Report() // a run that failed part-way prints only its error
	}
	o := outputFlags{json: f.json}
	return o.finish(rep, err, out, errOut)
}

func bindConnect(fs *flag.FlagSet, cfg *scenario.SpreadConfig, f *connectFlags) {
	listFlag(fs, &f.addrs, "addr", "gateway addresses, comma-separated (default 127.0.0.1:7000)")
	listFlag(fs, &f.pids, "pid", "gateway process ids in --addr order: RSS and CPU (Linux /proc)")
	listFlag(fs, &f.heapURLs, "heap-url",
		"gateways' /debug/pprof/heap?gc=1&debug=1 in --addr order: Go heap after a forced GC")
	listFlag(fs, &f.metricsURLs, "metrics-url",
		"gateways' /metrics in --addr order: connections, and RSS and heap when not given above")
	fs.IntVar(&cfg.Conns, "conns", 1000, "connections to open and log in")
	fs.BoolVar(&cfg.WebSocket, "ws", false, "connect over WebSocket instead of raw TCP")
	fs.DurationVar(&cfg.Hold, "hold", 10*time.Second, "keep the connections open this long")
	fs.IntVar(&cfg.Users, "users", 10, "users registered; connections share them as devices\n"+
		"(logic's default login budget per account takes 8 each)")
	fs.IntVar(&cfg.Parallel, "parallel", 64, "connections being opened at once, per worker")
	fs.IntVar(&cfg.Warmup, "warmup", 0,
		"connections opened before the 'before' memory sample (the rest are measured)")
	fs.BoolVar(&cfg.Relogin, "relogin", false,
		"after the hold, reconnect every connection with its token and measure that ramp")
	fs.IntVar(&cfg.Workers, "workers", 1,
		"client processes at least; more are started to keep each under --per-worker")
	fs.IntVar(&cfg.PerWorker, "per-worker", scenario.DefaultPerWorker,
		"most connections of one client process (under its open-file limit)")
	fs.IntVar(&cfg.PerSourceIP, "per-source", 10000,
		"most connections of a client process from one source address in 127.0.0.0/8")
	fs.BoolVar(&f.json, "json", false, "print the report as JSON instead of a table")

	cl := &cfg.Cluster
	fs.IntVar(&cl.Gateways, "cluster-gateways", 0,
		"start logic, task and this many gateways as processes on MariaDB, Redis and NATS\n"+
			"instead of using --addr (measured and stopped by the bench)")
	fs.StringVar(&cl.Bin, "bin", "",
		"resonance binary of the cluster (default: go build of this module)")
	fs.StringVar(&cl.Services.MySQLDSN, "db-dsn", "root@tcp(127.0.0.1:3306)/test?parseTime=true",
		"MariaDB DSN of the cluster")
	fs.StringVar(&cl.Services.RedisAddr, "redis-addr", "127.0.0.1:6379",
		"Redis address of the cluster")
	fs.StringVar(&cl.Services.NATSURL, "nats-url", "nats://127.0.0.1:4222",
		"NATS URL of the cluster")
	fs.IntVar(&cl.HashMemoryKiB, "cluster-hash-memory-kib", 64,
		"argon2id memory of the cluster logic's password hashes (production: 19456)")
	fs.IntVar(&cl.HashTime, "cluster-hash-time", 1,
		"argon2id passes of the cluster logic's password hashes (production: 2)")
	fs.DurationVar(&cl.Timeout, "timeout", 15*time.Minute,
		"bound of a cluster run (the build comes on top)")
}

// listFlag defines a comma-separated list flag whose value replaces dst.
func listFlag(fs *flag.FlagSet, dst *[]string, name, usage string) {
	fs.Func(name, usage, func(s string) error {
		*dst = nil
		for _, v := range strings.Split(s, ",") {
			if v = strings.TrimSpace(v); v != "" {
				*dst = append(*dst, v)
			}
		}
		return nil
	})
}

// gateways fills cfg.Gateways from the lists, which must match --addr, or
// refuses them with a cluster, which brings its own.
func (f connectFlags) gateways(fs *flag.FlagSet, cfg *scenario.SpreadConfig) error {
	if cfg.Cluster.Gateways > 0 {
		var given []string
		fs.Visit(func(fl *flag.Flag) {
			switch fl.Name {
			case "addr", "pid", "heap-url", "metrics-url":
				given = append(given, "--"+fl.Name)
			}
		})
		if len(given) > 0 {
			return fmt.Errorf("--cluster-gateways measures its own gateways: drop %s",
				strings.Join(given, " "))
		}
		return nil
	}
	n := len(f.addrs)
	for _, l := range []struct {
		name string
		v    []string
	}{{"pid", f.pids}, {"heap-url", f.heapURLs}, {"metrics-url", f.metricsURLs}} {
		if len(l.v) != 0 && len(l.v) != n {
			return fmt.Errorf("--%s lists %d values for %d gateways in --addr", l.name,
				len(l.v), n)
		}
	}
	for i, addr := range f.addrs {
		g := scenario.GatewayTarget{Addr: addr}
		if len(f.pids) > 0 {
			pid, err := parsePID(f.pids[i])
			if err != nil {
				return fmt.Errorf("--pid %q: %w", f.pids[i], err)
			}
			g.PID = pid
		}
		if len(f.heapURLs) > 0 {
			g.HeapURL = f.heapURLs[i]
		}
		if len(f.metricsURLs) > 0 {
			g.MetricsURL = f.metricsURLs[i]
		}
		cfg.Gateways = append(cfg.Gateways, g)
	}
	return nil
}

// runConnectWorker is the connect-worker subcommand: one client worker of a
// connect run, driven by its parent through stdin and stdout.
func runConnectWorker(ctx context.Context, in io.Reader, out, errOut io.Writer) int {
	if err := scenario.RunConnectWorker(ctx, in, out); err != nil {
		fmt.Fprintf(errOut, "bench: %v\n", err)
		return 1
	}
	return 0
}
