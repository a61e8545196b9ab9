package scenario

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// workerEnv makes the test binary a connect worker (see TestMain), as the
// bench's connect-worker subcommand makes the bench one.
const workerEnv = "RESONANCE_TEST_CONNECT_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		if err := RunConnectWorker(context.Background(), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testWorkerCommand starts this test binary as a worker process.
func testWorkerCommand() *exec.Cmd {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), workerEnv+"=1")
	return cmd
}

func TestPlanSpread_SplitsEvenlyOverWorkersAndGateways(t *testing.T) {
	cases := []struct {
		name                             string
		conns, warmup, workers, gateways int
		wantCounts                       []int
		wantPerGateway, wantMeasured     []int
	}{
		{name: "one of each", conns: 10, warmup: 2, workers: 1, gateways: 1,
			wantCounts: []int{10}, wantPerGateway: []int{10}, wantMeasured: []int{8}},
		{name: "40000 over 3 workers and 4 gateways", conns: 40000, warmup: 1000, workers: 3,
			gateways: 4, wantCounts: []int{13334, 13333, 13333},
			wantPerGateway: []int{10000, 10000, 10000, 10000},
			wantMeasured:   []int{9750, 9750, 9750, 9750}},
		{name: "uneven", conns: 7, warmup: 0, workers: 2, gateways: 3,
			wantCounts: []int{4, 3}, wantPerGateway: []int{3, 2, 2}, wantMeasured: []int{3, 2, 2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := planSpread(tc.conns, tc.warmup, tc.workers, tc.gateways)
			next, warm := 0, 0
			for w, s := range p.shares {
				if s.First != next || s.Count != tc.wantCounts[w] {
					t.Fatalf("share %d = %+v, want first %d count %d", w, s, next,
						tc.wantCounts[w])
				}
				next += s.Count
				warm += s.Warmup
			}
			if next != tc.conns || warm != tc.warmup {
				t.Fatalf("shares cover %d conns, %d warm-up; want %d, %d", next, warm,
					tc.conns, tc.warmup)
			}
			if got := p.perGateway(); !slices.Equal(got, tc.wantPerGateway) {
				t.Fatalf("per gateway %v, want %v", got, tc.wantPerGateway)
			}
			if got := p.measured(); !slices.Equal(got, tc.wantMeasured) {
				t.Fatalf("measured %v, want %v", got, tc.wantMeasured)
			}
		})
	}
}

func TestCountResidue_MatchesCounting(t *testing.T) {
	for m := 1; m <= 5; m++ {
		for lo := 0; lo <= 12; lo++ {
			for hi := lo; hi <= 12; hi++ {
				for r := range m {
					want := 0
					for g := lo; g < hi; g++ {
						if g%m == r {
							want++
						}
					}
					if got := countResidue(lo, hi, m, r); got != want {
						t.Fatalf("countResidue(%d, %d, %d, %d) = %d, want %d", lo, hi, m, r,
							got, want)
					}
				}
			}
		}
	}
}

func TestWorkerCount(t *testing.T) {
	cases := []struct{ conns, want, perWorker, workers int }{
		{conns: 100, want: 0, perWorker: 18000, workers: 1},
		{conns: 18000, want: 1, perWorker: 18000, workers: 1},
		{conns: 18001, want: 1, perWorker: 18000, workers: 2},
		{conns: 40000, want: 0, perWorker: 18000, workers: 3},
		{conns: 40000, want: 4, perWorker: 18000, workers: 4},
	}
	for _, tc := range cases {
		if got := workerCount(tc.conns, tc.want, tc.perWorker); got != tc.workers {
			t.Errorf("workerCount(%d, %d, %d) = %d, want %d", tc.conns, tc.want, tc.perWorker,
				got, tc.workers)
		}
	}
}

func TestSpreadSources_WorkersNeverShareAnAddress(t *testing.T) {
	src := spreadSources{octet: 9, perSource: 100}
	seen := make(map[string]int) // address -> worker
	for w := range 3 {
		for i := 0; i < 250; i += 7 {
			ip := src.ip(w, i)
			if !ip.IsLoopback() {
				t.Fatalf("worker %d conn %d: %v is not loopback", w, i, ip)
			}
			if other, ok := seen[ip.String()]; ok && other != w {
				t.Fatalf("%v used by workers %d and %d", ip, other, w)
			}
			seen[ip.String()] = w
		}
	}
	if got := src.ip(1, 250).String(); got != "127.9.2.4" {
		t.Fatalf("worker 1 conn 250 from %s, want 127.9.2.4", got)
	}
	if err := src.check(planSpread(30000, 0, 1, 1)); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("300 source addresses for one worker: %v, want ErrBadConfig", err)
	}
	if err := src.check(planSpread(255, 0, 255, 1)); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("255 workers: %v, want ErrBadConfig", err)
	}
}

// checkSpread fails t unless every connection logged in (twice with a
// re-login), each worker reached every gateway, and no two workers shared
// a source address.
func checkSpread(t *testing.T, res SpreadResult, gateways []string) {
	t.Helper()
	if res.Password.Conns != res.Conns || res.Dropped != 0 || res.Password.Rate() <= 0 ||
		res.Password.Login.Count() != uint64(res.Conns) {
		t.Fatalf("password ramp %+v, dropped %d; want %d logged in", res.Password, res.Dropped,
			res.Conns)
	}
	if tok := res.Token; tok == nil || tok.Conns != res.Conns ||
		tok.Login.Count() != uint64(res.Conns) {
		t.Fatalf("token re-login %+v, want %d logged in", tok, res.Conns)
	}
	owner := make(map[string]int)
	for w, rep := range res.Workers {
		for _, g := range gateways {
			if rep.Targets[g] == 0 {
				t.Errorf("worker %d (%s) never dialed gateway %s", w, rep, g)
			}
		}
		for _, src := range rep.Sources {
			if other, ok := owner[src]; ok {
				t.Errorf("source %s used by workers %d and %d", src, other, w)
			}
			owner[src] = w
		}
	}
}

// twoServers starts two fakes with the users of prefix registered on the
// second: ConnectSpread registers them through the first only, as gateways
// of one deployment share their users, and the fakes do not.
func twoServers(ctx context.Context, t *testing.T, prefix string, users int) (a, b string) {
	t.Helper()
	sa, sb := startServer(t), startServer(t)
	if _, err := registerSpread(ctx, sb.Addr(), prefix, users); err != nil {
		t.Fatal(err)
	}
	return sa.Addr(), sb.Addr()
}

func TestConnectSpread_InProcessWorkersOverTwoServers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	prefix := uniquePrefix("spread")
	a, b := twoServers(ctx, t, prefix, 3)
	res, err := ConnectSpread(ctx, SpreadConfig{
		Gateways: []GatewayTarget{{Addr: a}, {Addr: b}}, Prefix: prefix,
		Conns: 60, Users: 3, Workers: 2, PerSourceIP: 20, Warmup: 6,
		Settle: time.Millisecond, Hold: 300 * time.Millisecond, Relogin: true})
	if err != nil {
		t.Fatalf("ConnectSpread: %v", err)
	}
	checkSpread(t, res, []string{a, b})
	for w, rep := range res.Workers {
		// 30 connections at most 20 per source address.
		if len(rep.Sources) != 2 || rep.PID != os.Getpid() {
			t.Errorf("worker %d: %s, pid %d; want 2 sources, this process", w, rep, rep.PID)
		}
	}
	rep := res.Report()
	if !rep.OK || len(rep.Latencies) != 2 || len(rep.CPU) == 0 {
		t.Fatalf("report %+v", rep)
	}
}

func TestConnectSpread_WorkerProcesses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	prefix := uniquePrefix("spread")
	a, b := twoServers(ctx, t, prefix, 4)
	res, err := ConnectSpread(ctx, SpreadConfig{
		Gateways: []GatewayTarget{{Addr: a}, {Addr: b}}, Prefix: prefix,
		Conns: 40, Users: 4, Workers: 2, Settle: time.Millisecond, Relogin: true,
		WorkerCommand: testWorkerCommand})
	if err != nil {
		t.Fatalf("ConnectSpread: %v", err)
	}
	checkSpread(t, res, []string{a, b})
	if p0, p1 := res.Workers[0].PID, res.Workers[1].PID; p0 == p1 || p0 == os.Getpid() ||
		p1 == os.Getpid() {
		t.Fatalf("worker pids %d and %d, bench %d: want two processes of their own", p0, p1,
			os.Getpid())
	}
}

func TestConnectSpread_FailingWorkerFailsTheRun(t *testing.T) {
	s := startServer(t)
	// A gateway nobody listens on: every worker's second connection fails.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err = ConnectSpread(ctx, SpreadConfig{
		Gateways: []GatewayTarget{{Addr: s.Addr()}, {Addr: dead}},
		Conns:    8, Workers: 2, Settle: time.Millisecond, WorkerCommand: testWorkerCommand})
	if !errors.Is(err, errWorkerFailed) || !strings.Contains(err.Error(), dead) {
		t.Fatalf("err = %v, want a worker failure naming %s", err, dead)
	}
}

func TestConnectSpread_RejectsBadConfig(t *testing.T) {
	for _, cfg := range []SpreadConfig{
		{Conns: 5},
		{Gateways: []GatewayTarget{{Addr: "127.0.0.1:1"}}},
		{Gateways: []GatewayTarget{{}}, Conns: 5},
		{Cluster: SpreadCluster{Gateways: 1}, Conns: 1 << 30},
	} {
		if _, err := ConnectSpread(context.Background(), cfg); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%+v: err = %v, want ErrBadConfig", cfg, err)
		}
	}
}

// TestConnectSpread_ClusterSpreadsOverGatewaysAndWorkers runs the real
// thing small: logic, task and 2 gateways as processes on MariaDB, Redis
// and NATS, and 2 worker processes.
func TestConnectSpread_ClusterSpreadsOverGatewaysAndWorkers(t *testing.T) {
	if os.Getenv(chaosEnv) == "" {
		t.Skipf("set %s=1 to run logic, task and 2 gateways as processes against "+
			"MariaDB, Redis and NATS", chaosEnv)
	}
	var log strings.Builder
	res, err := ConnectSpread(context.Background(), SpreadConfig{
		Cluster: SpreadCluster{Gateways: 2, Bin: os.Getenv(chaosBinEnv),
			Timeout: 2 * time.Minute},
		Conns: 400, Users: 20, Workers: 2, PerSourceIP: 150, Warmup: 40,
		Hold: time.Second, Relogin: true, WorkerCommand: testWorkerCommand, Progress: &log})
	t.Log(log.String())
	if err != nil {
		t.Fatalf("ConnectSpread: %v", err)
	}
	gateways := make([]string, len(res.Gateways))
	for i, g := range res.Gateways {
		gateways[i] = g.Addr
		// Each gateway holds its half, by its own count, and was measured.
		if g.After.conns != 200 || g.After.heapBytes <= 0 || g.After.rssBytes <= 0 {
			t.Errorf("gateway %s: %+v, want 200 connections and its memory", g.Addr, g.After)
		}
	}
	checkSpread(t, res, gateways)
	for w, rep := range res.Workers {
		if len(rep.Sources) != 2 { // 200 connections, at most 150 per address
			t.Errorf("worker %d: %s, want 2 source addresses", w, rep)
		}
	}
	groups := make(map[string]bool)
	for _, c := range res.CPU {
		groups[c.Group] = true
	}
	if !groups["gateways"] || !groups[roleLogic] || !groups["bench clients"] {
		t.Errorf("cpu measured for %v, want gateways, logic and the clients", groups)
	}
	t.Log(res.Report().Metrics)
}

// A connect run whose connections are more than 8 per user says first that
// it may fail against logic's default login budget per account, and what
// to give instead, as idle and echo do; one within it, or on a cluster
// (whose logic is started with the budget out of the way), says nothing.
// Connect used to print nothing, and a run with few users failed on
// refusals nobody could explain.
func TestConnectSpread_SaysWhenOverTheLoginBudget(t *testing.T) {
	s := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tests := []struct {
		name     string
		users    int
		wantNote string
	}{
		{name: "over", users: 1, wantNote: "connect: 20 connections as 1 user is up to " +
			"20 password logins per account"},
		{name: "within", users: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var progress strings.Builder
			res, err := ConnectSpread(ctx, SpreadConfig{Gateways: []GatewayTarget{{Addr: s.Addr()}},
				Conns: 20, Users: tt.users, Settle: time.Millisecond, Progress: &progress})
			if err != nil {
				t.Fatalf("ConnectSpread: %v", err)
			}
			if !slices.Contains(res.Report().Params, Metric{Name: "users",
				Value: float64(tt.users)}) {
				t.Fatalf("report params %v, want users %d", res.Report().Params, tt.users)
			}
			out := progress.String()
			if tt.wantNote == "" && strings.Contains(out, "login-account-limit") ||
				!strings.Contains(out, tt.wantNote) {
				t.Fatalf("progress %q, want a note %q", out, tt.wantNote)
			}
			if tt.wantNote != "" && !strings.Contains(out, "give --users 3 or more") {
				t.Fatalf("progress %q, want it to say which --users", out)
			}
		})
	}
	cluster := SpreadConfig{Cluster: SpreadCluster{Gateways: 1}, Conns: 20, Users: 1}
	if note := cluster.loginBudgetNote(); note != "" {
		t.Fatalf("a cluster run notes %q", note)
	}
}
