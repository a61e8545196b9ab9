package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/resonance-im/resonance/bench/scenario"
)

// runConnect parses the connect flags, runs scenario.Connect and prints its
// summary line. With --pid it also prints the server's resident memory
// after the warm-up connections and after the ramp, and with --heap-url its
// Go heap, each divided by the connections opened in between.
func runConnect(ctx context.Context, args []string, out, errOut io.Writer) int {
	var cfg scenario.ConnectConfig
	var pid int
	var heapURL string
	fs := flag.NewFlagSet("connect", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:7000", "gateway address (host:port)")
	fs.IntVar(&cfg.Conns, "conns", 1000, "connections to open and log in")
	fs.BoolVar(&cfg.WebSocket, "ws", false, "connect over WebSocket instead of raw TCP")
	fs.DurationVar(&cfg.Hold, "hold", 10*time.Second, "keep the connections open this long")
	fs.IntVar(&cfg.Users, "users", 10, "users registered; connections share them as devices")
	fs.IntVar(&cfg.Parallel, "parallel", 64, "connections being opened at once")
	fs.IntVar(&cfg.Warmup, "warmup", 0,
		"connections opened before the 'before' memory sample (the rest are measured)")
	fs.IntVar(&pid, "pid", 0, "server process id: report its VmRSS (Linux)")
	fs.StringVar(&heapURL, "heap-url", "",
		"server's /debug/pprof/heap?debug=1 URL: report its Go heap")
	fs.BoolVar(&cfg.Relogin, "relogin", false,
		"after the hold, reconnect every connection with its token and measure that ramp")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}

	var before, after memorySample
	cfg.Warmed = func() {
		time.Sleep(2 * time.Second) // as after the ramp: same settling time
		before = sampleMemory(pid, heapURL)
	}
	cfg.Ramped = func() {
		time.Sleep(2 * time.Second) // let the server finish the logins' background work
		after = sampleMemory(pid, heapURL)
	}
	res, err := scenario.Connect(ctx, cfg)
	if err != nil {
		fmt.Fprintf(errOut, "bench: %v\n", err)
		if errors.Is(err, scenario.ErrBadConfig) {
			return 2
		}
		return 1
	}
	fmt.Fprintln(out, res)
	printMemory(out, before, after, res.Conns-min(cfg.Warmup, res.Conns))
	return 0
}

// memorySample is the server's memory at one moment; -1 when not measured.
type memorySample struct {
	rssKiB    int64
	heapBytes int64
}

func sampleMemory(pid int, heapURL string) memorySample {
	m := memorySample{rssKiB: -1, heapBytes: -1}
	if pid > 0 {
		m.rssKiB = readRSS(pid)
	}
	if heapURL != "" {
		m.heapBytes = scenario.ReadHeapInuse(context.Background(), heapURL)
	}
	return m
}

func printMemory(out io.Writer, before, after memorySample, conns int) {
	if conns <= 0 {
		return
	}
	if before.rssKiB >= 0 && after.rssKiB >= 0 {
		delta := after.rssKiB - before.rssKiB
		fmt.Fprintf(out, "server rss: before=%dKiB after=%dKiB per_conn=%.2fKiB\n",
			before.rssKiB, after.rssKiB, float64(delta)/float64(conns))
	}
	if before.heapBytes >= 0 && after.heapBytes >= 0 {
		delta := after.heapBytes - before.heapBytes
		fmt.Fprintf(out, "server heap_inuse: before=%dKiB after=%dKiB per_conn=%.2fKiB\n",
			before.heapBytes>>10, after.heapBytes>>10, float64(delta)/1024/float64(conns))
	}
}

// readRSS returns VmRSS of pid in KiB, or -1.
func readRSS(pid int) int64 {
	return scanKiB("/proc/"+strconv.Itoa(pid)+"/status", "VmRSS:")
}

func scanKiB(path, key string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}
