package scenario

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/resonance-im/resonance/internal/rpcauth"
	"github.com/resonance-im/resonance/kitex_gen/pushrpc"
)

// gatewayCounters are what findConns needs from the gateway's /metrics.
type gatewayCounters struct {
	startMs  int64 // process start, Unix ms (10 ms resolution)
	accepted int64 // connections accepted since boot
}

// readGatewayCounters reads process_start_time_seconds and
// resonance_gateway_accepted_total from a Prometheus text page.
func readGatewayCounters(ctx context.Context, url string) (gatewayCounters, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return gatewayCounters{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return gatewayCounters{}, fmt.Errorf("push: metrics: %w", err)
	}
	defer resp.Body.Close()
	var gc gatewayCounters
	var seen int
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		switch {
		case err != nil:
		case name == "process_start_time_seconds":
			gc.startMs, seen = int64(v*1000), seen+1
		case name == "resonance_gateway_accepted_total":
			gc.accepted, seen = int64(v), seen+1
		}
	}
	if seen != 2 {
		return gc, fmt.Errorf("push: %s lacks the process start time or accepted count", url)
	}
	return gc, nil
}

// bootSearch bounds how long after its process started a gateway may
// have booted, and the slack around the accepted counts (connections
// opened by others meanwhile).
const (
	bootSearch  = 60 * time.Second
	acceptSlack = 64
)

// findConns learns the receivers' conn ids, which the protocol does not
// tell a client. The gateway numbers connections from its boot time in ms
// shifted left by 20, plus the count accepted: the receivers' ids are
// boot<<20 + (before.accepted, after.accepted], and boot falls a little
// after the process start. It probes candidate boot times by pushing a
// probe frame to those ids as the first receiver's user (the gateway reports
// which targets are not that user's connection) until one matches, then
// finds every user's receivers in that range.
func (r *pushRun) findConns(ctx context.Context, before, after gatewayCounters) error {
	want := make(map[int64]int)
	var users []int64
	for _, c := range r.conns {
		if want[c.userID] == 0 {
			users = append(users, c.userID)
		}
		want[c.userID]++
	}
	probe := r.frame(0)
	lo, hi := before.accepted-acceptSlack, after.accepted+acceptSlack
	var base int64 = -1
	for ms := before.startMs - 20; ms < before.startMs+bootSearch.Milliseconds(); ms++ {
		found, err := r.probe(ctx, probe, users[0], ms<<20+lo, ms<<20+hi)
		if err != nil {
			return err
		}
		if len(found) > 0 {
			base = ms << 20
			break
		}
	}
	if base < 0 {
		return fmt.Errorf("%w: no boot time matched", errConnsNotFound)
	}
	for _, u := range users {
		found, err := r.probe(ctx, probe, u, base+lo, base+hi)
		if err != nil {
			return err
		}
		r.targets = append(r.targets, found...)
	}
	if len(r.targets) != len(r.conns) {
		return fmt.Errorf("%w: %d of %d", errConnsNotFound, len(r.targets), len(r.conns))
	}
	return r.waitFor(ctx, func() bool { return r.probes.Load() >= int64(len(r.conns)) })
}

// probe pushes frame to conn ids [from, to) as user and returns the targets
// the gateway found.
func (r *pushRun) probe(ctx context.Context, frame []byte, user, from, to int64) (
	[]*pushrpc.Target, error) {
	var found []*pushrpc.Target
	for lo := from; lo < to; lo += probeWindow {
		targets := make([]*pushrpc.Target, min(probeWindow, to-lo))
		for i := range targets {
			targets[i] = &pushrpc.Target{ConnId: lo + int64(i), UserId: user}
		}
		resp, err := r.cli.Push(ctx, &pushrpc.PushReq{Targets: targets, Frame: frame})
		if err != nil && strings.Contains(err.Error(), rpcauth.ErrDenied.Error()) {
			// The denial comes back as the remote's text, not the error.
			return nil, fmt.Errorf("push: the push port refused the call: give the "+
				"server's internal secret (--internal-secret or $RESONANCE_INTERNAL_SECRET, "+
				"to both): %w", err)
		} else if err != nil {
			return nil, fmt.Errorf("push: probe conn ids from %d: %w", lo, err)
		}
		missing := make(map[int64]bool, len(resp.MissingConns))
		for _, id := range resp.MissingConns {
			missing[id] = true
		}
		for _, t := range targets {
			if !missing[t.ConnId] {
				found = append(found, t)
			}
		}
	}
	return found, nil
}
