package task

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/resonance-im/resonance/internal/coalesce"
	"github.com/resonance-im/resonance/internal/rpcerr"
	"github.com/resonance-im/resonance/kitex_gen/pushrpc"
	"github.com/resonance-im/resonance/kitex_gen/pushrpc/push"
)

// Bounds of the coalescing of pushes to one gateway.
const (
	// maxCallsInFlight is how many calls a coalescer has in flight to its
	// gateway before later pushes wait to go out together. With one, a push
	// that comes while a call is out would wait a whole round trip although
	// the gateway is idle for much of it (the answer on the wire, task
	// decoding it). Two looked enough on paper, but on a loaded 2-core
	// machine a call takes 10-20 ms, mostly waiting for a CPU, and 1:1 chat
	// at 20,000 msgs/s fell behind by seconds (end to end p99 4-9 s); with
	// eight, 1-1.7 s, the batches still 10-20 pushes each.
	maxCallsInFlight = 8
	// maxBatchReqs bounds the reqs of one PushBatch call; a queue that
	// holds that many goes out at once. A default instance never queues
	// that many for one gateway (each worker and notify worker waits for
	// its push, so Workers+notifyWorkers at most); the bound keeps one
	// call's size in check when Workers is raised, as each req may carry
	// maxRun frames.
	maxBatchReqs = 256
	// pushOnlyRecheck is how long a gateway that did not know PushBatch is
	// sent Push calls only; then PushBatch is tried again, as the gateway
	// at that address may have been upgraded in place.
	pushOnlyRecheck = time.Minute
)

// pushItem is one push handed to a coalescer's batcher. ctx and deadline
// bound its caller's wait, so that the one-by-one fallback (sendEach) can
// leave out a push whose wait is over by its turn; the batcher holds an
// item only while its caller waits.
type pushItem struct {
	req      *pushrpc.PushReq
	ctx      context.Context
	deadline time.Time
}

// pushAnswer is the outcome of one push: the gateway's answer to its req,
// or why there is none.
type pushAnswer struct {
	resp *pushrpc.PushResp
	err  error
}

// pushCoalescer sends the pushes to one gateway through a coalesce.Batcher:
// each goes out at once as a Push call while fewer than
// gatewayClients.inFlight calls are out; later ones queue, and each call
// that returns sends the queue (up to maxBatchReqs) as one PushBatch call.
// A lone push is thus never held back, and under load the Kitex cost of a
// call (client middleware, codec, the gateway's dispatch) is paid per batch
// instead of per push. The queue is FIFO, so the pushes of one caller keep
// their order.
//
// A push that goes out at once is called on its caller's goroutine; the
// batches run on goroutines of gatewayClients.calls. It is safe for
// concurrent use.
type pushCoalescer struct {
	addr    string
	cli     push.Client
	timeout time.Duration   // a queued push's wait, queueing and call together
	clients *gatewayClients // its cache: goroutines, metrics, log
	batches *coalesce.Batcher[pushItem, pushAnswer]
	// ctx is the context of the batch calls; close cancels it with
	// errClientClosed as the cause.
	ctx    context.Context
	cancel context.CancelCauseFunc
	// older remembers that the gateway answered PushBatch with an unknown
	// method: it is sent Push calls only for pushOnlyRecheck. It is the
	// address's (gatewayClients.older), shared with the clients made again.
	older *rpcerr.OlderPeer
}

func newPushCoalescer(addr string, cli push.Client, g *gatewayClients,
	older *rpcerr.OlderPeer) *pushCoalescer {
	ctx, cancel := context.WithCancelCause(context.Background())
	c := &pushCoalescer{addr: addr, cli: cli, timeout: g.timeout, clients: g,
		ctx: ctx, cancel: cancel, older: older}
	// No Timeout: the client's RPC timeout bounds each call, and a batch
	// sent one by one to an older gateway makes several in a row. The queue
	// wait is bounded as PushTimeout bounds a lone call: a push queued
	// behind a stalled call would otherwise wait for that call, then for its
	// own.
	cfg := coalesce.Config{InFlight: g.inFlight, MaxUnits: maxBatchReqs, MaxQueueWait: g.timeout,
		Go: func(fn func()) { g.calls.Go(g.log, "task-push-batch", fn) }}
	c.batches = coalesce.New(ctx, cfg, nil, c.call)
	return c
}

// push sends req to the gateway and returns its answer, or an error when
// the call failed, ctx ended first or, for a push that had to queue,
// timeout passed first. A push still queued when ctx ends or timeout passes
// is not sent; one a call has taken is answered by that call, which its own
// timeout bounds: a caller that went on could push its conversation's next
// event before this one lands.
func (c *pushCoalescer) push(ctx context.Context,
	req *pushrpc.PushReq) (*pushrpc.PushResp, error) {
	if c.pushOnly() {
		if c.ctx.Err() != nil {
			return nil, errClientClosed
		}
		return c.cli.Push(ctx, req)
	}
	a, err := c.batches.Do(ctx, pushItem{req: req, ctx: ctx, deadline: time.Now().Add(c.timeout)})
	switch {
	case errors.Is(err, coalesce.ErrClosed):
		return nil, errClientClosed
	case err != nil:
		return nil, err
	}
	return a.resp, a.err
}

// pushOnly reports whether the gateway is to get Push calls only.
func (c *pushCoalescer) pushOnly() bool { return c.older.Active() }

// call makes the call of items for the batcher, on the caller's ctx for a
// lone push and on c.ctx for a batch: a single push goes as a Push call,
// more as one PushBatch call, or as Push calls one after the other to a
// gateway older than PushBatch.
func (c *pushCoalescer) call(ctx context.Context, items []pushItem) ([]pushAnswer, error) {
	if len(items) == 1 || c.pushOnly() {
		return c.sendEach(ctx, items), nil
	}
	reqs := make([]*pushrpc.PushReq, len(items))
	for i, it := range items {
		reqs[i] = it.req
	}
	c.clients.metrics.pushBatchReqs.Observe(float64(len(reqs)))
	resps, err := c.cli.PushBatch(ctx, reqs)
	switch {
	case rpcerr.UnknownMethod(err):
		c.rememberPushOnly()
		return c.sendEach(ctx, items), nil
	case err != nil:
		return nil, callErr(ctx, fmt.Errorf("push batch of %d: %w", len(items), err))
	}
	answers := make([]pushAnswer, len(resps)) // the batcher checks the count
	for i, resp := range resps {
		answers[i] = batchAnswer(resp)
	}
	return answers, nil
}

// batchAnswer turns one PushResp of a PushBatch answer into what the req's
// own Push call would have returned.
func batchAnswer(resp *pushrpc.PushResp) pushAnswer {
	switch {
	case resp == nil:
		return pushAnswer{err: errors.New("push batch answered a req with nothing")}
	case resp.Error != nil:
		return pushAnswer{err: fmt.Errorf("%w: %s", errPushRefused, *resp.Error)}
	}
	return pushAnswer{resp: resp}
}

// sendEach sends the pushes of items as Push calls on ctx, one after the
// other so that they keep their order; a push whose caller's wait is over
// by its turn (its context ended, or c.timeout passed) is not sent, so that
// a batch to a stalled gateway costs each caller at most its own wait and
// one call.
//
// Known limit: every push of the batch is answered when the last returns,
// as a coalesce call answers its items together; the callers of the first
// ones wait for the rest. Batches go one by one only around a refusal of
// PushBatch (then pushes bypass the batcher), so it is a few batches a
// pushOnlyRecheck per older gateway.
func (c *pushCoalescer) sendEach(ctx context.Context, items []pushItem) []pushAnswer {
	answers := make([]pushAnswer, len(items))
	for i, it := range items {
		cause := it.ctx.Err()
		if cause == nil && time.Now().After(it.deadline) {
			cause = context.DeadlineExceeded
		}
		if cause != nil {
			answers[i].err = fmt.Errorf("push not sent: its caller's wait of %v is over: %w",
				c.timeout, cause)
			continue
		}
		resp, err := c.cli.Push(ctx, it.req)
		answers[i] = pushAnswer{resp: resp, err: callErr(ctx, err)}
	}
	return answers
}

// callErr returns err, or errClientClosed wrapping it when close cancelled
// ctx: the call failed because of that. A lone push's ctx is its caller's,
// which close leaves alone.
func callErr(ctx context.Context, err error) error {
	if err != nil && errors.Is(context.Cause(ctx), errClientClosed) {
		return fmt.Errorf("%w (%v)", errClientClosed, err)
	}
	return err
}

// rememberPushOnly notes that the gateway does not know PushBatch. Each
// refused call is counted; the first of a recheck period is logged.
func (c *pushCoalescer) rememberPushOnly() {
	c.clients.metrics.pushBatchFallbacks.Inc()
	if c.older.Refused(pushOnlyRecheck) {
		c.clients.log.Info().Str("gateway", c.addr).Dur("recheck", pushOnlyRecheck).
			Msg("gateway does not know PushBatch (older release); sending it Push calls")
	}
}

// close fails the queued pushes and cancels the batch calls in flight,
// whose pushes then fail too; pushes handed to c later fail at once. Lone
// pushes in flight run on their callers' contexts and finish as they
// would. Once close returns, c starts no batch goroutine, so that
// gatewayClients.closeAll can wait for them. close may be called more than
// once.
func (c *pushCoalescer) close() {
	// Closing the batcher first keeps a call that returns meanwhile from
	// sending the queue on a cancelled context.
	c.batches.Close()
	c.cancel(errClientClosed)
}
