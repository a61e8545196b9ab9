package scenario

import (
	"fmt"
	"math/rand/v2"
	"net"
)

// Bounds of a spread run's plan.
const (
	// DefaultPerWorker is the most connections one worker process holds by
	// default: under the 20000 open files a process may have here, with room
	// for the rest of the process.
	DefaultPerWorker = 18000
	// maxWorkers is the most workers: worker w dials from 127.o.(1+w).x.
	maxWorkers = 254
	// maxSourcesPerWorker is the most source addresses of one worker: the
	// last octet runs from 2 to 251.
	maxSourcesPerWorker = 250
)

// spreadPlan splits a run's connections over worker processes and
// gateways. Connections have run-wide indices 0..conns-1: worker w opens
// shares[w], and connection g dials gateway g % gateways, so every worker
// spreads over every gateway and every gateway gets an even share.
type spreadPlan struct {
	conns    int
	gateways int
	shares   []share
}

// share is the part of a run one worker opens: run-wide indices First up
// to First+Count, the first Warmup of them before the warm-up sample.
type share struct {
	First  int `json:"first"`
	Count  int `json:"count"`
	Warmup int `json:"warmup"`
}

// planSpread splits conns connections, warmup of them opened first, over
// workers workers and gateways gateways, as evenly as integers allow.
func planSpread(conns, warmup, workers, gateways int) spreadPlan {
	p := spreadPlan{conns: conns, gateways: gateways, shares: make([]share, workers)}
	first := 0
	for w := range p.shares {
		count := evenShare(conns, workers, w)
		p.shares[w] = share{First: first, Count: count,
			Warmup: min(evenShare(warmup, workers, w), count)}
		first += count
	}
	return p
}

// evenShare is part i of n split into parts parts: the first n%parts parts
// get one more.
func evenShare(n, parts, i int) int {
	s := n / parts
	if i < n%parts {
		s++
	}
	return s
}

// gatewayOf returns the gateway of run-wide connection g.
func (p spreadPlan) gatewayOf(g int) int { return g % p.gateways }

// measured returns, per gateway, the connections opened after the warm-up
// sample: those the memory per connection is divided by.
func (p spreadPlan) measured() []int {
	out := make([]int, p.gateways)
	for _, s := range p.shares {
		for gw := range out {
			out[gw] += countResidue(s.First+s.Warmup, s.First+s.Count, p.gateways, gw)
		}
	}
	return out
}

// perGateway returns how many connections of the whole run dial each
// gateway.
func (p spreadPlan) perGateway() []int {
	out := make([]int, p.gateways)
	for gw := range out {
		out[gw] = countResidue(0, p.conns, p.gateways, gw)
	}
	return out
}

// countResidue counts the g in [lo, hi) with g % m == r (0 <= r < m).
func countResidue(lo, hi, m, r int) int {
	below := func(x int) int { return (x + m - 1 - r) / m } // of [0, x)
	return below(hi) - below(lo)
}

// workerCount is the number of workers for conns connections: at least
// want, and enough that none holds more than perWorker.
func workerCount(conns, want, perWorker int) int {
	return max(want, 1, (conns+perWorker-1)/perWorker)
}

// spreadSources gives each worker of a run its own source addresses in
// 127.0.0.0/8: worker w dials from 127.octet.(1+w).(2+i/perSource), so no
// two workers share an address and no address carries more than perSource
// connections (their ephemeral ports are shared by every gateway they
// dial). octet is random per run, so that a run started right after another
// neither meets its TIME_WAIT ports nor the login budgets it spent.
type spreadSources struct {
	octet     byte
	perSource int
}

func newSpreadSources(perSource int) spreadSources {
	return spreadSources{octet: byte(1 + rand.IntN(254)), perSource: perSource}
}

// ip returns the source address of connection i of worker w.
func (s spreadSources) ip(w, i int) net.IP {
	return net.IPv4(127, s.octet, byte(1+w), byte(2+i/s.perSource))
}

// check reports a plan these sources cannot serve.
func (s spreadSources) check(p spreadPlan) error {
	if len(p.shares) > maxWorkers {
		return fmt.Errorf("%w: connect: %d workers (--workers, or --conns over --per-worker), "+
			"at most %d", ErrBadConfig, len(p.shares), maxWorkers)
	}
	if most := p.shares[0].Count; (most+s.perSource-1)/s.perSource > maxSourcesPerWorker {
		return fmt.Errorf("%w: connect: %d connections per worker need more than %d source "+
			"addresses of --per-source %d connections each", ErrBadConfig, most,
			maxSourcesPerWorker, s.perSource)
	}
	return nil
}
