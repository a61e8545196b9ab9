// Command bench runs load and correctness scenarios against a running
// Resonance gateway, or against roles it starts itself:
//
//	go run ./bench smoke --addr 127.0.0.1:7000 --users 20 --messages 50
//	go run ./bench chaos --users 4 --messages 20   # MariaDB, Redis, NATS
//	go run ./bench scale                            # 2 of each role; a gateway dies
//	go run ./bench connect --addr 127.0.0.1:7000 --conns 15000 [--ws]
//	go run ./bench connect --cluster-gateways 3 --conns 40000 --relogin  # MariaDB, Redis, NATS
//	go run ./bench echo --addr 127.0.0.1:7000 --conns 64 --duration 10s
//	go run ./bench chat --addr 127.0.0.1:7000 --rate 5000 --duration 10s
//	go run ./bench push --addr 127.0.0.1:7000 --push-addr 127.0.0.1:7200
//	go run ./bench group --addr 127.0.0.1:7000 --groups 1 --size 200 --rate 200
//	go run ./bench idle --addr 127.0.0.1:7000 --conns 5000 --duration 30s [--ws]
//
// echo, chat, push, group and idle print a table (--json: JSON), write an HTML report
// with --html and report the server's CPU with --pid; connect prints a table or JSON.
//
// Each scenario lives in its own file here (flags and output) and in package
// scenario (the logic, callable from tests). The exit status is 0 when the
// scenario's checks pass, 1 when they fail and 2 on bad usage.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"sort"
)

// command is one scenario of the tool; run returns the exit status.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, out, errOut io.Writer) int
}

var commands = map[string]command{
	"smoke": {summary: "1:1 messages between N users; checks exactly-once, in-order delivery",
		run: runSmoke},
	"connect": {summary: "ramps N logged-in connections over gateways and client processes",
		run: runConnect},
	"chaos": {summary: "roles as processes killed and restarted under load; checks delivery",
		run: runChaos},
	"scale": {summary: "2 gateways, 2 logic, 2 task as processes; a gateway killed", run: runScale},
	"echo":  {summary: "HEARTBEAT request/response in a closed loop; frames/s", run: runEcho},
	"chat":  {summary: "1:1 messages at a fixed offered rate; end-to-end latency", run: runChat},
	"push":  {summary: "the gateway's Push service called directly; deliveries/s", run: runPush},
	"group": {summary: "group messages at a fixed offered rate; fan-out deliveries/s, latency",
		run: runGroup},
	"idle": {summary: "holds N logged-in connections; gateway CPU and memory per connection",
		run: runIdle},
}

// cpuProfileEnv names a file to write the bench's own CPU profile to, for
// finding what the load generator spends of the CPUs it shares with the
// server.
const cpuProfileEnv = "BENCH_CPUPROFILE"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	stopProfile := profileCPU(os.Getenv(cpuProfileEnv), os.Stderr)
	code := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stopProfile()
	stop()
	os.Exit(code)
}

// profileCPU starts a CPU profile written to path, when path is not empty,
// and returns what stops it.
func profileCPU(path string, errOut io.Writer) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintf(errOut, "bench: %s=%s: %v\n", cpuProfileEnv, path, err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintf(errOut, "bench: %s: %v\n", path, err)
		}
	}
}

func dispatch(ctx context.Context, args []string, out, errOut io.Writer) int {
	switch {
	case len(args) == 0:
		usage(errOut)
		return 2
	case args[0] == "help" || args[0] == "-h" || args[0] == "--help":
		usage(out) // asked for: not an error
		return 0
	}
	if args[0] == connectWorkerCmd { // hidden: started by connect itself
		return runConnectWorker(ctx, os.Stdin, out, errOut)
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(errOut, "bench: unknown scenario %q\n", args[0])
		usage(errOut)
		return 2
	}
	return cmd.run(ctx, args[1:], out, errOut)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: bench <scenario> [flags]   (bench <scenario> -h for its flags)")
	fmt.Fprintln(w, "scenarios:")
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-8s %s\n", name, commands[name].summary)
	}
}
