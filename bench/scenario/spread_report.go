package scenario

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// SpreadResult is what ConnectSpread measured.
type SpreadResult struct {
	// Conns is the number of connections the run was to open.
	Conns int
	// Password is the first ramp, every connection logging in with a
	// password; Token the re-login with tokens (nil without Relogin).
	Password SpreadPhase
	Token    *SpreadPhase
	// Dropped counts the connections that failed a heartbeat before the
	// hold ended.
	Dropped  int
	Workers  []WorkerReport
	Gateways []GatewayReport
	// CPU is each process group's CPU over each ramp, for the processes
	// known: gateways with a pid, the cluster's logic and task, the workers.
	CPU []PhaseCPU

	cfg SpreadConfig
}

// SpreadPhase is one ramp over all workers.
type SpreadPhase struct {
	Conns   int // logged in
	Refused int // attempts refused or shed as overloaded, and retried
	// Ramp runs from the first command to the last worker's answer,
	// without the pause for the warm-up sample.
	Ramp  time.Duration
	Login *Histogram // connect + handshake + login round trip
}

// Rate is the logged-in connections per second of the ramp.
func (p SpreadPhase) Rate() float64 { return perSecond(int64(p.Conns), p.Ramp) }

// WorkerReport is where one worker's connections went.
type WorkerReport struct {
	PID int
	// Sources are the distinct local addresses of its connections.
	Sources []string
	// Targets are its connections per gateway address.
	Targets map[string]int
}

// String lists the worker's source addresses and its connections per
// gateway.
func (w WorkerReport) String() string {
	targets := slices.Sorted(maps.Keys(w.Targets))
	for i, t := range targets {
		targets[i] = fmt.Sprintf("%s=%d", t, w.Targets[t])
	}
	return fmt.Sprintf("sources %s; conns %s", strings.Join(w.Sources, ","),
		strings.Join(targets, " "))
}

// GatewayReport is one gateway's share and memory.
type GatewayReport struct {
	Addr string
	// Planned is how many connections dial it; Measured how many of them
	// open after the warm-up sample (the divisor of its memory per
	// connection).
	Planned, Measured int
	// Before is sampled after the warm-up connections, After after the
	// ramp; a field is -1 when not measured.
	Before, After memSample
}

// perConn returns the change of a memory field from Before to After per
// measured connection in KiB, and false when it was not measured.
func (g GatewayReport) perConn(field func(memSample) float64) (float64, bool) {
	b, a := field(g.Before), field(g.After)
	if b < 0 || a < 0 || g.Measured <= 0 {
		return 0, false
	}
	return (a - b) / 1024 / float64(g.Measured), true
}

func rssOf(s memSample) float64  { return s.rssBytes }
func heapOf(s memSample) float64 { return s.heapBytes }

// check fails with ErrCheckFailed unless every connection logged in, in
// each ramp, and none was dropped.
func (r SpreadResult) check() error {
	var problems []string
	if r.Password.Conns != r.Conns {
		problems = append(problems, fmt.Sprintf("%d of %d logged in", r.Password.Conns, r.Conns))
	}
	if r.Token != nil && r.Token.Conns != r.Conns {
		problems = append(problems, fmt.Sprintf("%d of %d logged in again with their tokens",
			r.Token.Conns, r.Conns))
	}
	if r.Dropped > 0 {
		problems = append(problems, fmt.Sprintf("%d connections dropped", r.Dropped))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrCheckFailed, strings.Join(problems, ", "))
	}
	return nil
}

// Report is the result as the bench tool prints it.
func (r SpreadResult) Report() Report {
	c := r.cfg
	rep := Report{Scenario: "connect", OK: r.check() == nil, CPU: r.CPU,
		Params: []Metric{{Name: "conns", Value: float64(r.Conns)},
			{Name: "users", Value: float64(c.Users)},
			{Name: "gateways", Value: float64(len(r.Gateways))},
			{Name: "workers", Value: float64(len(r.Workers))},
			{Name: "ws", Value: boolValue(c.WebSocket)},
			{Name: "warmup", Value: float64(c.Warmup)},
			{Name: "hold", Value: c.Hold.Seconds(), Unit: "s"}}}
	rep.Metrics = append(rep.Metrics, r.Password.metrics("password")...)
	rep.Metrics = append(rep.Metrics, Metric{Name: "dropped during hold",
		Value: float64(r.Dropped)})
	rep.Latencies = []Latency{latencyOfHistogram("login, password", r.Password.Login)}
	if r.Token != nil {
		rep.Metrics = append(rep.Metrics, r.Token.metrics("token")...)
		rep.Latencies = append(rep.Latencies, latencyOfHistogram("login, token", r.Token.Login))
	}
	rep.Metrics = append(rep.Metrics, r.memoryMetrics()...)
	return rep
}

func (p SpreadPhase) metrics(kind string) []Metric {
	return []Metric{{Name: kind + " logins", Value: float64(p.Conns)},
		{Name: kind + " ramp", Value: round2(p.Ramp.Seconds()), Unit: "s"},
		{Name: kind + " login rate", Value: round1(p.Rate()), Unit: "conns/s"},
		{Name: kind + " refused (retried)", Value: float64(p.Refused)}}
}

// memoryMetrics reports each gateway's connections and memory per
// connection, then the sums over all gateways measured.
func (r SpreadResult) memoryMetrics() []Metric {
	var out []Metric
	var total [2]struct {
		delta, after float64
		conns        int
	}
	for i, g := range r.Gateways {
		name := fmt.Sprintf("gateway %d", i+1)
		if g.After.conns >= 0 {
			out = append(out, Metric{Name: name + " conns", Value: g.After.conns})
		} else {
			out = append(out, Metric{Name: name + " conns (planned)", Value: float64(g.Planned)})
		}
		for k, m := range []struct {
			name  string
			field func(memSample) float64
		}{{"heap", heapOf}, {"rss", rssOf}} {
			if v, ok := g.perConn(m.field); ok {
				out = append(out, Metric{Name: name + " " + m.name + " per conn", Value: round2(v),
					Unit: "KiB"})
				total[k].delta += m.field(g.After) - m.field(g.Before)
				total[k].after += m.field(g.After)
				total[k].conns += g.Measured
			}
		}
	}
	for k, name := range []string{"heap", "rss"} {
		if t := total[k]; t.conns > 0 {
			out = append(out,
				Metric{Name: "all gateways " + name, Value: round1(t.after / (1 << 20)), Unit: "MiB"},
				Metric{Name: "all gateways " + name + " per conn",
					Value: round2(t.delta / 1024 / float64(t.conns)), Unit: "KiB"})
		}
	}
	return out
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
