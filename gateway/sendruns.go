package gateway

import (
	"context"
	"fmt"

	"github.com/resonance-im/resonance/internal/coalesce"
	"github.com/resonance-im/resonance/internal/rpcerr"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
)

// sendCallsInFlight is how many SendRuns calls the gateway has out to logic
// before the runs of SENDs that come later wait to go out together. A run
// that finds a call slot free goes out at once, so a lone SEND is never held
// back; under load each call carries the runs of many connections. Fewer
// calls cost less than the same SENDs as more calls: at 5,000 msgs/s from 100
// connections, the Kitex round trip per SEND, and the goroutines it wakes on
// both sides, kept a 2-core machine's run queue long enough that acks waited
// tens of milliseconds for a CPU.
const sendCallsInFlight = 4

// newSendRuns returns the batcher that carries the runs of SENDs of all
// connections to logic as SendRuns calls, up to logicrpc.MaxSendBatch SENDs
// each (see package coalesce). A connection's worker waits for its run's
// outcomes before it sends more, and a run a call has taken is answered by
// that call, so a connection never has two runs in flight, and its SENDs
// keep their order.
func (g *Gateway) newSendRuns() *coalesce.Batcher[*logicrpc.SendRun, []*logicrpc.SendOutcome] {
	return coalesce.New(g.rpcCtx, coalesce.Config{InFlight: sendCallsInFlight,
		MaxUnits: int(logicrpc.MaxSendBatch), Timeout: g.cfg.RequestTimeout},
		func(run *logicrpc.SendRun) int { return len(run.Reqs) }, g.callSendRuns)
}

// callSendRuns makes one SendRuns call and checks that it answered every
// SEND.
func (g *Gateway) callSendRuns(ctx context.Context,
	runs []*logicrpc.SendRun) ([][]*logicrpc.SendOutcome, error) {
	sends := 0
	for _, run := range runs {
		sends += len(run.Reqs)
	}
	g.stats.sendBatches.Add(1)
	g.stats.batchedSends.Add(uint64(sends))
	out, err := g.logic.SendRuns(ctx, runs)
	if rpcerr.UnknownMethod(err) {
		g.stats.sendFallbacks.Add(1) // once per call; each run falls back
	}
	if err != nil {
		return nil, err
	}
	if len(out) != len(runs) {
		return nil, fmt.Errorf("%w: %d outcome lists for %d runs", ErrNoReply, len(out), len(runs))
	}
	for i, run := range runs {
		if len(out[i]) != len(run.Reqs) {
			return nil, fmt.Errorf("%w: %d outcomes for the %d sends of conn %d", ErrNoReply,
				len(out[i]), len(run.Reqs), run.Session.GetConnId())
		}
	}
	return out, nil
}
