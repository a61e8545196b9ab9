package scenario

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// IdleConfig configures Idle. Zero fields take the default named.
type IdleConfig struct {
	// Addr is the gateway's client address; required.
	Addr string
	// Conns is the number of connections to open, log in and hold; required.
	Conns int
	// WebSocket opens WebSocket connections instead of raw TCP.
	WebSocket bool
	// Hold is how long the connections are held, heartbeating, once all are
	// logged in; default 30s.
	Hold time.Duration
	// Users is how many users the connections log in as, each connection as
	// its own device; default one per 8 connections (logic's default
	// password budget per account). A value given is used as is: see
	// loginBudgetNote.
	Users int
	// Parallel bounds the connections being opened at once; default 64.
	Parallel int
	// Warmup is how many connections open before the baseline memory sample,
	// so that the login machinery's memory (argon2 above all) is not counted
	// per connection; default a tenth of Conns, at most 1000.
	Warmup int
	// MetricsURL is the gateway's /metrics page; when set, its RSS, Go heap
	// and open connections are reported at the baseline, the start and the
	// end of the hold.
	MetricsURL string
	// HeapURL, when set, is the gateway's /debug/pprof/heap?gc=1&debug=1:
	// the Go heap is read there, after a forced collection, instead of from
	// MetricsURL, whose heap still holds the logins' garbage.
	HeapURL string
	// Settle is the wait before each memory sample, for the server to finish
	// the logins' background work (route writes, bookkeeping); default 2s.
	Settle time.Duration
	// ServerPID, when set, is the gateway process whose CPU time is measured
	// over the hold.
	ServerPID int
	// Progress receives a status line every second; nil prints none.
	Progress io.Writer
}

func (c IdleConfig) withDefaults() (IdleConfig, error) {
	if err := refuseNegative("idle", c); err != nil {
		return c, err
	}
	if c.Addr == "" || c.Conns <= 0 {
		return c, fmt.Errorf("%w: idle needs --addr and --conns above 0", ErrBadConfig)
	}
	c.Hold, c.Settle = cmp0(c.Hold, 30*time.Second), cmp0(c.Settle, 2*time.Second)
	c.Users = cmpOr(c.Users, usersFor(c.Conns))
	if c.Warmup == 0 {
		c.Warmup = min(c.Conns/10, 1000)
	}
	c.Warmup = min(c.Warmup, c.Conns-1)
	return c, nil
}

// memSample is the gateway's memory and connections at one moment; a
// field is -1 when not measured.
type memSample struct {
	rssBytes, heapBytes, conns float64
}

// Idle opens cfg.Conns connections with the ramp of Connect, each logged in
// and heartbeating at half the server's interval, and holds them for
// cfg.Hold. It reports the gateway's CPU over the hold and its RSS and Go
// heap per connection at the start and the end of the hold: the change since
// the baseline taken after the warm-up connections, divided by the
// connections opened since. It fails with ErrCheckFailed when the server
// dropped a connection.
func Idle(ctx context.Context, cfg IdleConfig) (Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Report{}, err
	}
	var samples [3]memSample // baseline, start and end of the hold
	r, err := newIdleRamp(ctx, cfg, &samples[0])
	if err != nil {
		return Report{}, err
	}
	defer r.stop()

	start := time.Now()
	var holding atomic.Bool
	stop := make(chan struct{})
	waitProgress := progress(cfg.Progress, stop, func() string {
		phase := "ramp"
		if holding.Load() {
			phase = "hold"
		}
		return fmt.Sprintf("idle: %4.0fs %s conns=%d/%d dropped=%d",
			time.Since(start).Seconds(), phase, r.opened.Load(), cfg.Conns, r.dropped.Load())
	})
	defer func() {
		close(stop)
		waitProgress()
	}()
	if err := r.run(ctx); err != nil {
		return Report{}, fmt.Errorf("idle: %w", err)
	}
	res := r.result(time.Since(start) - r.paused)
	samples[1] = cfg.sample(ctx)
	holding.Store(true)
	cpu := startCPU(cfg.ServerPID)
	select {
	case <-ctx.Done():
		return Report{}, ctx.Err()
	case <-time.After(cfg.Hold):
	}
	usage := cpu.stop()
	samples[2] = cfg.sample(ctx)
	return idleReport(cfg, res, r.latencies, r.dropped.Load(), samples, usage)
}

// idleRamp is Connect's ramp with the means to end its heartbeats.
type idleRamp struct {
	*ramp
	stopKeeping context.CancelFunc
}

// newIdleRamp registers the users and prepares the ramp, which samples the
// baseline into base once the warm-up connections are in.
func newIdleRamp(ctx context.Context, cfg IdleConfig, base *memSample) (*idleRamp, error) {
	prefix := uniquePrefix("idle")
	if cfg.Progress != nil {
		if note := loginBudgetNote("idle", cfg.Conns, cfg.Users); note != "" {
			fmt.Fprintln(cfg.Progress, note)
		}
		fmt.Fprintf(cfg.Progress, "idle: registering %d users\n", cfg.Users)
	}
	creds, err := registerSpread(ctx, cfg.Addr, prefix, cfg.Users)
	if err != nil {
		return nil, fmt.Errorf("idle: register: %w", err)
	}
	ccfg, err := connectDefaults(ConnectConfig{Addr: cfg.Addr, Conns: cfg.Conns,
		Users: cfg.Users, WebSocket: cfg.WebSocket, Parallel: cfg.Parallel, Prefix: prefix,
		Warmup: cfg.Warmup, Warmed: func() { *base = cfg.sample(ctx) }})
	if err != nil {
		return nil, err
	}
	keepCtx, stopKeeping := context.WithCancel(ctx)
	return &idleRamp{ramp: &ramp{cfg: ccfg, creds: creds, conns: make([]*benchConn, cfg.Conns),
		latencies: make([]time.Duration, cfg.Conns), source: newSources().ip,
		keepCtx: keepCtx}, stopKeeping: stopKeeping}, nil
}

// stop ends the heartbeats and closes every connection.
func (r *idleRamp) stop() {
	r.stopKeeping()
	r.closeAll()
	r.keepers.Wait()
}

// sample waits c.Settle and reads the gateway's memory.
func (c IdleConfig) sample(ctx context.Context) memSample {
	select {
	case <-ctx.Done():
	case <-time.After(c.Settle):
	}
	s := memSample{rssBytes: -1, heapBytes: -1, conns: -1}
	if c.MetricsURL != "" {
		v := readMetrics(ctx, c.MetricsURL, "process_resident_memory_bytes",
			"go_memstats_heap_inuse_bytes", "resonance_gateway_connections")
		s.rssBytes, s.heapBytes, s.conns = v[0], v[1], v[2]
	}
	if c.HeapURL != "" {
		s.heapBytes = float64(ReadHeapInuse(ctx, c.HeapURL))
	}
	return s
}

func idleReport(cfg IdleConfig, res ConnectResult, logins []time.Duration, dropped int64,
	samples [3]memSample, usage *CPUUsage) (Report, error) {
	start := time.Now()
	login := NewRecorder(start)
	for _, d := range logins {
		login.Record(start, d)
	}
	ws := 0.0
	if cfg.WebSocket {
		ws = 1
	}
	measured := float64(cfg.Conns - cfg.Warmup)
	rep := Report{Scenario: "idle", ServerCPU: usage,
		Params: []Metric{{Name: "conns", Value: float64(cfg.Conns)},
			{Name: "users", Value: float64(cfg.Users)},
			{Name: "ws", Value: ws}, {Name: "warmup", Value: float64(cfg.Warmup)},
			{Name: "hold", Value: cfg.Hold.Seconds(), Unit: "s"}},
		Metrics: []Metric{
			{Name: "logged-in conns", Value: float64(res.Conns)},
			{Name: "ramp", Value: res.Ramp.Seconds(), Unit: "s"},
			{Name: "refused (retried)", Value: float64(res.Refused)},
			{Name: "dropped", Value: float64(dropped)},
		},
		Latencies: []Latency{latencyOf("login", login)}}
	if usage != nil {
		rep.Metrics = append(rep.Metrics, Metric{Name: "server cpu per 10k conns",
			Value: round1(100 * usage.Cores * 10000 / float64(cfg.Conns)), Unit: "% of a core"})
	}
	for i, name := range []string{"start", "end"} {
		rep.Metrics = append(rep.Metrics, memoryMetrics(name, samples[0], samples[i+1],
			measured)...)
	}
	rep.OK = dropped == 0 && res.Conns == cfg.Conns
	if !rep.OK {
		return rep, fmt.Errorf("%w: %d connections dropped during the hold", ErrCheckFailed,
			dropped)
	}
	return rep, nil
}

// memoryMetrics reports sample s taken at (the start or end of the hold):
// the gateway's open connections, and its RSS and heap, whole and per
// connection opened since the baseline. What was not measured is left out.
func memoryMetrics(at string, base, s memSample, conns float64) []Metric {
	var out []Metric
	if s.conns >= 0 {
		out = append(out, Metric{Name: "gateway conns at " + at, Value: s.conns})
	}
	for _, m := range []struct {
		name    string
		v, base float64
	}{{"rss", s.rssBytes, base.rssBytes}, {"heap", s.heapBytes, base.heapBytes}} {
		if m.v < 0 {
			continue
		}
		out = append(out, Metric{Name: m.name + " at " + at, Value: round1(m.v / 1024),
			Unit: "KiB"})
		if m.base >= 0 && conns > 0 {
			out = append(out, Metric{Name: m.name + " per conn at " + at,
				Value: round2((m.v - m.base) / 1024 / conns), Unit: "KiB"})
		}
	}
	return out
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

func round2(v float64) float64 { return math.Round(v*100) / 100 }

// readMetrics reads the named series (without labels) from a Prometheus text
// page, in order; a series missing or unreadable is -1.
func readMetrics(ctx context.Context, url string, names ...string) []float64 {
	out := make([]float64, len(names))
	for i := range out {
		out[i] = -1
	}
	body, err := httpGet(ctx, url)
	if err != nil {
		return out
	}
	defer body.Close()
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		for i, want := range names {
			if name == want {
				if v, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
					out[i] = v
				}
			}
		}
	}
	return out
}

// ReadHeapInuse reads HeapInuse from the runtime.MemStats lines that
// pprof's heap profile prints with debug=1 (with gc=1, after a forced
// collection), or -1.
func ReadHeapInuse(ctx context.Context, url string) int64 {
	body, err := httpGet(ctx, url)
	if err != nil {
		return -1
	}
	defer body.Close()
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "# HeapInuse = "); ok {
			if n, err := strconv.ParseInt(strings.TrimSpace(rest), 10, 64); err == nil {
				return n
			}
		}
	}
	return -1
}

// httpGet returns the body of a 200 answer to GET url within 10 seconds.
func httpGet(ctx context.Context, url string) (io.ReadCloser, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return cancelOnClose{ReadCloser: resp.Body, cancel: cancel}, nil
}

// cancelOnClose ends a request's context when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
