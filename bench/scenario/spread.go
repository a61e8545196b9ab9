package scenario

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// SpreadConfig configures ConnectSpread. Zero fields take the default named.
type SpreadConfig struct {
	// Gateways are the gateways the connections spread over, in turn, and
	// what to measure each by; required unless Cluster starts its own.
	Gateways []GatewayTarget
	// Cluster, with Cluster.Gateways set, starts the gateways for the run.
	Cluster SpreadCluster
	// Conns is the number of connections to open and log in; required.
	Conns int
	// WebSocket opens WebSocket connections instead of raw TCP.
	WebSocket bool
	// Users is how many users are registered; each connection logs in as
	// one of them with a device of its own. Default 10. More than 8
	// connections a user is over logic's default login budget per account:
	// the run then says so first (loginBudgetNote).
	Users int
	// Parallel bounds the connections being opened at once by each worker;
	// default 64.
	Parallel int
	// PerSourceIP is the most connections a worker opens from one source
	// address; default 10000. A re-login takes as many ports again while
	// the first ones wait in TIME_WAIT, so keep it under half of the
	// ephemeral port range (about 28000).
	PerSourceIP int
	// Workers is the least number of workers; default 1. There are as many
	// more as it takes to give none more than PerWorker connections.
	Workers int
	// PerWorker is the most connections of one worker; default
	// DefaultPerWorker.
	PerWorker int
	// WorkerCommand returns the command of one worker process: one that
	// runs RunConnectWorker on its standard input and output (the bench's
	// hidden connect-worker subcommand). With nil, or with a single worker,
	// the workers run in this process.
	WorkerCommand func() *exec.Cmd
	// Warmup is how many connections open before the first memory sample;
	// default 0.
	Warmup int
	// Settle is the wait before each memory sample, for the gateways to
	// finish the logins' background work; default 2s.
	Settle time.Duration
	// Hold keeps the connections open, heartbeating, this long after the
	// second memory sample; zero holds none.
	Hold time.Duration
	// Relogin, after the hold, closes every connection and opens them all
	// again with their tokens: a reconnect storm with no password hashing.
	Relogin bool
	// Prefix names the users; default random per run.
	Prefix string
	// Progress receives a status line a second and the cluster's progress;
	// nil prints none.
	Progress io.Writer
}

// GatewayTarget is one gateway of ConnectSpread and the means to measure it;
// each empty means is skipped.
type GatewayTarget struct {
	// Addr is the gateway's client address; required.
	Addr string
	// PID is the gateway process: its RSS is read from /proc and its CPU
	// time measured over each ramp.
	PID int
	// MetricsURL is its /metrics: RSS (without PID), Go heap (without
	// HeapURL) and open connections.
	MetricsURL string
	// HeapURL is its /debug/pprof/heap?gc=1&debug=1: the Go heap after a
	// forced collection.
	HeapURL string
}

// SpreadCluster has ConnectSpread start logic, task and Gateways gateways
// as processes against MariaDB, Redis and NATS, measure them and stop them
// (and remove the run's tables, stream and keys) at the end. Logic runs
// with password and registration limits out of the way and a cheap password
// hash; gateways with no accept rate limit.
type SpreadCluster struct {
	// Gateways is how many gateways to start; zero starts no cluster. Each
	// is a process with its own open-file limit, so the connections per
	// gateway must stay under it.
	Gateways int
	// Bin is the resonance binary; default: go build of this module.
	Bin string
	// Services are MariaDB, Redis and NATS; defaults on loopback.
	Services ChaosServices
	// HashMemoryKiB and HashTime are logic's argon2id cost; default 64 KiB
	// and 1 pass, so that every connection's first (password) login costs
	// microseconds instead of tens of milliseconds.
	HashMemoryKiB, HashTime int
	// Timeout bounds the run from the start of the processes; default 15m.
	Timeout time.Duration
}

// Defaults of SpreadCluster.
const (
	defaultClusterHashMemoryKiB = 64
	defaultClusterTimeout       = 15 * time.Minute
)

func (c SpreadConfig) withDefaults() (SpreadConfig, error) {
	if err := refuseNegative("connect", c); err != nil {
		return c, err
	}
	if c.Conns <= 0 || (len(c.Gateways) == 0 && c.Cluster.Gateways <= 0) {
		return c, fmt.Errorf("%w: connect needs --addr (or --cluster-gateways) and --conns "+
			"above 0", ErrBadConfig)
	}
	for _, g := range c.Gateways {
		if g.Addr == "" {
			return c, fmt.Errorf("%w: a gateway without an address", ErrBadConfig)
		}
	}
	c.Users = min(cmpOr(c.Users, 10), c.Conns)
	c.Parallel = cmpOr(c.Parallel, 64)
	c.PerSourceIP = cmpOr(c.PerSourceIP, 10000)
	c.PerWorker = cmpOr(c.PerWorker, DefaultPerWorker)
	c.Workers = workerCount(c.Conns, c.Workers, c.PerWorker)
	c.Warmup = min(c.Warmup, c.Conns)
	c.Settle = cmp0(c.Settle, 2*time.Second)
	if c.Prefix == "" {
		c.Prefix = uniquePrefix("conn")
	}
	if lim := openFileLimit(); lim > 0 && c.PerWorker > lim-fileMargin {
		return c, fmt.Errorf("%w: connect: --per-worker %d, but a process may open %d files",
			ErrBadConfig, c.PerWorker, lim)
	}
	if c.Cluster.Gateways > 0 {
		return c.withClusterDefaults()
	}
	return c, nil
}

// fileMargin is the open files a process needs besides its connections.
const fileMargin = 500

func (c SpreadConfig) withClusterDefaults() (SpreadConfig, error) {
	cl := &c.Cluster
	cl.Services = cl.Services.withDefaults()
	cl.HashMemoryKiB = cmpOr(cl.HashMemoryKiB, defaultClusterHashMemoryKiB)
	cl.HashTime = cmpOr(cl.HashTime, 1)
	cl.Timeout = cmp0(cl.Timeout, defaultClusterTimeout)
	perGateway := (c.Conns + cl.Gateways - 1) / cl.Gateways
	if lim := openFileLimit(); lim > 0 && perGateway > lim-fileMargin {
		return c, fmt.Errorf("%w: connect: --conns makes %d connections per gateway, but a "+
			"process may open %d files: raise --cluster-gateways", ErrBadConfig, perGateway, lim)
	}
	return c, nil
}

// ConnectSpread ramps cfg.Conns logged-in connections over the gateways from
// worker processes, each dialing from its own source addresses, and measures
// the ramp: connections per second and login latency, the gateways' RSS and
// Go heap per connection (the change from after the warm-up connections to
// after the ramp) and, for the processes it knows, their CPU. With Relogin
// it then closes them all and measures the token re-login ramp. A worker
// that fails fails the run, with its message; every worker is gone when it
// returns. It fails with ErrCheckFailed when a connection was dropped.
func ConnectSpread(ctx context.Context, cfg SpreadConfig) (SpreadResult, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return SpreadResult{}, err
	}
	if cfg.Progress != nil {
		// The progress line's goroutine and the run both write to it.
		cfg.Progress = &lockedWriter{w: cfg.Progress}
	}
	if note := cfg.loginBudgetNote(); note != "" && cfg.Progress != nil {
		fmt.Fprintln(cfg.Progress, note)
	}
	if cfg.Cluster.Gateways > 0 {
		return spreadOnCluster(ctx, cfg)
	}
	return runSpread(ctx, cfg, nil)
}

// loginBudgetNote warns, as idle and echo do, when the password ramp puts
// more logins on one account than logic's default budget takes (see
// loginBudgetNote), or is "". The cluster's logic is started with that
// budget out of the way, so a cluster run is never warned; the token
// re-login checks no password.
func (c SpreadConfig) loginBudgetNote() string {
	if c.Cluster.Gateways > 0 {
		return ""
	}
	return loginBudgetNote("connect", c.Conns, c.Users)
}

// spreadOnCluster starts logic, task and the gateways, runs the spread
// against them and stops them.
func spreadOnCluster(ctx context.Context, cfg SpreadConfig) (SpreadResult, error) {
	c := cfg.Cluster
	log := cfg.Progress
	if log == nil {
		log = io.Discard
	}
	prefix := strings.TrimSuffix(uniquePrefix("conn"), "-") // table names allow no dash
	p := procRun{name: "connect", bin: c.Bin, prefix: prefix, services: c.Services,
		timeout: c.Timeout, log: log, topology: topology{logic: 1, task: 1, gateway: c.Gateways}}
	unlimited := "1000000/1ms"
	prepare := func(cl *cluster) {
		cl.roleArgs = map[string][]string{
			roleLogic: {"--login-account-limit", unlimited, "--login-addr-limit", unlimited,
				"--register-addr-limit", unlimited,
				"--hash-memory-kib", fmt.Sprint(c.HashMemoryKiB),
				"--hash-time", fmt.Sprint(c.HashTime)},
			roleGateway: {"--pprof", "--accept-rate", "-1"},
		}
	}
	return runProcs(ctx, p, prepare, func(ctx context.Context, cl *cluster) (SpreadResult, error) {
		cfg.Gateways = nil
		for _, name := range cl.names(roleGateway) {
			in := cl.instances[name]
			cfg.Gateways = append(cfg.Gateways, GatewayTarget{Addr: in.client, PID: cl.pid(name),
				MetricsURL: "http://" + in.http + "/metrics",
				HeapURL:    "http://" + in.http + "/debug/pprof/heap?gc=1&debug=1"})
		}
		fmt.Fprintf(log, "connect: cluster up: logic, task and %d gateways (prefix %s)\n",
			len(cfg.Gateways), prefix)
		others := []cpuProbe{{group: roleLogic, pid: cl.pid(roleLogic)},
			{group: roleTask, pid: cl.pid(roleTask)}}
		return runSpread(ctx, cfg, others)
	})
}

// pid returns the process id of the running instance name, or 0.
func (c *cluster) pid(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.procs[name]; p != nil {
		return p.cmd.Process.Pid
	}
	return 0
}

// The phases of a spread run that ramp, as progress lines and CPU rows
// name them.
const (
	phasePassword = "password ramp"
	phaseToken    = "token re-login"
)

// spreadRun is one run of runSpread.
type spreadRun struct {
	cfg   SpreadConfig
	plan  spreadPlan
	fleet *fleet
	res   SpreadResult
	// cpu are the processes whose CPU time is measured over each ramp.
	cpu   []cpuProbe
	phase atomic.Value // string: the phase the progress line names
}

// runSpread registers the users, starts the workers and drives them through
// the phases, sampling the gateways in between. others are processes besides
// the gateways and workers whose CPU to measure.
func runSpread(ctx context.Context, cfg SpreadConfig, others []cpuProbe) (SpreadResult, error) {
	plan := planSpread(cfg.Conns, cfg.Warmup, cfg.Workers, len(cfg.Gateways))
	src := newSpreadSources(cfg.PerSourceIP)
	if err := src.check(plan); err != nil {
		return SpreadResult{}, err
	}
	r := &spreadRun{cfg: cfg, plan: plan}
	r.phase.Store("registering")
	r.say("connect: registering %d users\n", cfg.Users)
	if _, err := registerSpread(ctx, cfg.Gateways[0].Addr, cfg.Prefix, cfg.Users); err != nil {
		return SpreadResult{}, fmt.Errorf("connect: register: %w", err)
	}
	command := cfg.WorkerCommand
	if cfg.Workers == 1 {
		command = nil // one worker runs in this process
	}
	f, err := startFleet(ctx, command, r.jobs(src))
	if err != nil {
		return SpreadResult{}, err
	}
	defer f.stop()
	r.fleet = f
	r.cpu = r.cpuProbes(others)
	r.say("connect: %d workers ready, %d connections over %d gateways\n", len(f.workers),
		cfg.Conns, len(cfg.Gateways))

	stop := make(chan struct{})
	waitProgress := progress(cfg.Progress, stop, r.progressLine)
	err = r.phases(ctx)
	close(stop)
	waitProgress()
	if err != nil {
		return r.res, err
	}
	return r.res, r.res.check()
}

// jobs returns each worker's job.
func (r *spreadRun) jobs(src spreadSources) []workerJob {
	addrs := make([]string, len(r.cfg.Gateways))
	for i, g := range r.cfg.Gateways {
		addrs[i] = g.Addr
	}
	jobs := make([]workerJob, len(r.plan.shares))
	for w, sh := range r.plan.shares {
		jobs[w] = workerJob{Index: w, Addrs: addrs, Share: sh, Users: r.cfg.Users,
			Prefix: r.cfg.Prefix, WebSocket: r.cfg.WebSocket, Parallel: r.cfg.Parallel,
			SourceOctet: src.octet, PerSource: src.perSource}
	}
	return jobs
}

// phases runs the password ramp (warm-up, sample, rest, sample), the hold,
// and the token re-login, filling r.res.
func (r *spreadRun) phases(ctx context.Context) error {
	r.res = SpreadResult{Conns: r.cfg.Conns, Workers: make([]WorkerReport, len(r.fleet.workers)),
		Gateways: r.gatewayReports(), cfg: r.cfg}
	r.enter(phasePassword)
	_, warmTook, err := r.fleet.step(ctx, cmdWarmup, evWarmed)
	if err != nil {
		return err
	}
	r.sample(ctx, func(g *GatewayReport, s memSample) { g.Before = s })
	meter := startCPUs(r.cpu)
	ramped, rampTook, err := r.fleet.step(ctx, cmdRamp, evRamped)
	if err != nil {
		return err
	}
	r.res.CPU = append(r.res.CPU, meter.stop(phasePassword)...)
	r.res.Password = mergePhases(ramped, warmTook+rampTook)
	for w, ev := range ramped {
		rep := WorkerReport{PID: r.fleet.workers[w].pid, Sources: ev.Phase.Sources,
			Targets: ev.Phase.Targets}
		r.res.Workers[w] = rep
		r.say("connect: worker %d (pid %d): %s\n", w, rep.PID, rep)
	}
	r.sample(ctx, func(g *GatewayReport, s memSample) { g.After = s })

	r.enter("hold")
	if err := sleepCtx(ctx, r.cfg.Hold); err != nil {
		return err
	}
	closed, _, err := r.fleet.step(ctx, cmdClose, evClosed)
	if err != nil {
		return err
	}
	for _, ev := range closed {
		r.res.Dropped += ev.Dropped
	}
	if r.cfg.Relogin {
		if err := r.relogin(ctx); err != nil {
			return err
		}
	}
	r.enter("exit")
	_, _, err = r.fleet.step(ctx, cmdExit, evExited)
	return err
}

// relogin runs the token re-login ramp and closes its connections.
func (r *spreadRun) relogin(ctx context.Context) error {
	r.enter(phaseToken)
	meter := startCPUs(r.cpu)
	relogged, took, err := r.fleet.step(ctx, cmdRelogin, evRelogged)
	if err != nil {
		return err
	}
	r.res.CPU = append(r.res.CPU, meter.stop(phaseToken)...)
	tok := mergePhases(relogged, took)
	r.res.Token = &tok
	_, _, err = r.fleet.step(ctx, cmdClose, evClosed)
	return err
}

// enter names the next phase for the progress line.
func (r *spreadRun) enter(phase string) {
	r.fleet.resetOpened()
	r.phase.Store(phase)
}

func (r *spreadRun) progressLine() string {
	phase := r.phase.Load().(string)
	line := "connect: " + phase
	if phase == phasePassword || phase == phaseToken {
		line += fmt.Sprintf(" conns=%d/%d", r.fleet.opened(), r.cfg.Conns)
	}
	return line
}

func (r *spreadRun) say(format string, args ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, format, args...)
	}
}

// gatewayReports lists the gateways with the connections the plan gives
// each.
func (r *spreadRun) gatewayReports() []GatewayReport {
	planned, measured := r.plan.perGateway(), r.plan.measured()
	out := make([]GatewayReport, len(r.cfg.Gateways))
	for i, g := range r.cfg.Gateways {
		out[i] = GatewayReport{Addr: g.Addr, Planned: planned[i], Measured: measured[i],
			Before: unmeasured, After: unmeasured}
	}
	return out
}

// sample waits cfg.Settle and reads every gateway's memory into set.
func (r *spreadRun) sample(ctx context.Context, set func(*GatewayReport, memSample)) {
	if sleepCtx(ctx, r.cfg.Settle) != nil {
		return
	}
	for i, g := range r.cfg.Gateways {
		set(&r.res.Gateways[i], g.sample(ctx))
	}
}

// unmeasured is a memSample of nothing.
var unmeasured = memSample{rssBytes: -1, heapBytes: -1, conns: -1}

// sample reads the gateway's RSS, Go heap and open connections by what g
// names.
func (g GatewayTarget) sample(ctx context.Context) memSample {
	s := unmeasured
	if g.MetricsURL != "" {
		v := readMetrics(ctx, g.MetricsURL, "process_resident_memory_bytes",
			"go_memstats_heap_inuse_bytes", "resonance_gateway_connections")
		s.rssBytes, s.heapBytes, s.conns = v[0], v[1], v[2]
	}
	if g.PID > 0 {
		if kib := readRSS(g.PID); kib >= 0 {
			s.rssBytes = float64(kib) * 1024
		}
	}
	if g.HeapURL != "" {
		s.heapBytes = float64(ReadHeapInuse(ctx, g.HeapURL))
	}
	return s
}

// cpuProbes lists the processes whose CPU each ramp measures: the gateways
// with a pid, others, and the workers.
func (r *spreadRun) cpuProbes(others []cpuProbe) []cpuProbe {
	var probes []cpuProbe
	for _, g := range r.cfg.Gateways {
		if g.PID > 0 {
			probes = append(probes, cpuProbe{group: "gateways", pid: g.PID})
		}
	}
	probes = append(probes, others...)
	seen := make(map[int]bool)
	for _, w := range r.fleet.workers {
		if !seen[w.pid] { // in-process workers share the bench's pid
			seen[w.pid] = true
			probes = append(probes, cpuProbe{group: "bench clients", pid: w.pid})
		}
	}
	return probes
}

// mergePhases sums the workers' answers to one ramp that took took.
func mergePhases(evs []workerEvent, took time.Duration) SpreadPhase {
	p := SpreadPhase{Ramp: took, Login: &Histogram{}}
	for _, ev := range evs {
		if ev.Phase == nil {
			continue
		}
		p.Conns += ev.Phase.Conns
		p.Refused += ev.Phase.Refused
		if ev.Phase.Login != nil {
			p.Login.Merge(ev.Phase.Login)
		}
	}
	return p
}

// lockedWriter serializes the writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
