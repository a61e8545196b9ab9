package task

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

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
	// maxBatchReqs bounds the reqs of one PushBatch call. A default
	// instance never queues that many for one gateway (each worker and
	// notify worker waits for its push, so Workers+notifyWorkers at most);
	// the bound keeps one call's size in check when Workers is raised, as
	// each req may carry maxRun frames.
	maxBatchReqs = 256
	// pushOnlyRecheck is how long a gateway that did not know PushBatch is
	// sent Push calls only; then PushBatch is tried again, as the gateway
	// at that address may have been upgraded in place.
	pushOnlyRecheck = time.Minute
)

// waiterState says where a queued push stands; guarded by pushCoalescer.mu.
type waiterState uint8

const (
	waiterQueued waiterState = iota // in the queue, not sent
	waiterSent                      // taken by a call
	waiterGone                      // its caller stopped waiting before a call took it
)

// pushWaiter is one push that queued behind the calls in flight.
type pushWaiter struct {
	req   *pushrpc.PushReq
	state waiterState
	// ctx and deadline bound its caller's wait; a push whose wait is over
	// when its turn comes in sendEach is not sent.
	ctx      context.Context
	deadline time.Time
	// resp and err are set before done is closed, then only read.
	resp *pushrpc.PushResp
	err  error
	done chan struct{}
}

// answer hands w its outcome; it is called once per waiter.
func (w *pushWaiter) answer(resp *pushrpc.PushResp, err error) {
	w.resp, w.err = resp, err
	close(w.done)
}

// pushCoalescer sends the pushes to one gateway: each goes out at once as a
// Push call while fewer than maxCallsInFlight calls are out; later ones
// queue, and each call that returns sends the queue (up to maxBatchReqs) as
// one PushBatch call. A lone push is thus never held back, and under load
// the Kitex cost of a call (client middleware, codec, the gateway's
// dispatch) is paid per batch instead of per push. The queue is FIFO, so
// the pushes of one caller keep their order.
//
// A push that goes out at once is called on its caller's goroutine; each
// batch runs on a goroutine of its own, which sends the next batch when the
// queue refilled meanwhile. It is safe for concurrent use.
type pushCoalescer struct {
	addr    string
	cli     push.Client
	timeout time.Duration   // a queued push's wait, queueing and call together
	clients *gatewayClients // its cache: goroutines, metrics, log
	// ctx is the context of the batch calls, cancelled by close.
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	inFlight int           // calls out, lone pushes and batches
	queue    []*pushWaiter // FIFO; waiterGone entries are skipped
	// pushOnlyUntil, when set, is until when the gateway is sent Push
	// calls only: it answered PushBatch with an unknown method.
	pushOnlyUntil time.Time
	closed        bool
}

func newPushCoalescer(addr string, cli push.Client, g *gatewayClients) *pushCoalescer {
	ctx, cancel := context.WithCancel(context.Background())
	return &pushCoalescer{addr: addr, cli: cli, timeout: g.timeout, clients: g,
		ctx: ctx, cancel: cancel}
}

// push sends req to the gateway and returns its answer, or an error when
// the call failed, ctx ended first or, for a push that had to queue,
// timeout passed first. A push still queued when ctx ends or timeout passes
// is not sent.
func (c *pushCoalescer) push(ctx context.Context,
	req *pushrpc.PushReq) (*pushrpc.PushResp, error) {
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return nil, errClientClosed
	case c.pushOnly():
		c.mu.Unlock()
		return c.cli.Push(ctx, req)
	case c.inFlight < c.clients.inFlight:
		c.inFlight++
		c.mu.Unlock()
		resp, err := c.cli.Push(ctx, req)
		c.sendQueued(c.next())
		return resp, err
	}
	if err := ctx.Err(); err != nil {
		c.mu.Unlock()
		return nil, fmt.Errorf("push not sent: %w", err)
	}
	w := &pushWaiter{req: req, ctx: ctx, deadline: time.Now().Add(c.timeout),
		done: make(chan struct{})}
	c.queue = append(c.queue, w)
	c.mu.Unlock()
	return c.wait(ctx, w)
}

// pushOnly reports whether the gateway is to get Push calls only; c.mu is
// held. The clock is read only while that is remembered.
func (c *pushCoalescer) pushOnly() bool {
	if c.pushOnlyUntil.IsZero() {
		return false
	}
	if time.Now().Before(c.pushOnlyUntil) {
		return true
	}
	c.pushOnlyUntil = time.Time{}
	return false
}

// wait returns w's answer, or an error once ctx ends or c.timeout passes
// while w is still queued. The timer bounds a queued push as PushTimeout
// bounded a lone call: a push queued behind a stalled call would otherwise
// wait for that call and then for its own. A push a call has taken is
// answered by that call, which its own timeout bounds: a caller that went on
// could push its conversation's next event before this one lands.
func (c *pushCoalescer) wait(ctx context.Context, w *pushWaiter) (*pushrpc.PushResp, error) {
	timer := time.NewTimer(c.timeout)
	defer timer.Stop()
	var cause error
	select {
	case <-w.done:
		return w.resp, w.err
	case <-ctx.Done():
		cause = ctx.Err()
	case <-timer.C:
		cause = fmt.Errorf("no answer within %v: %w", c.timeout, context.DeadlineExceeded)
	}
	if c.unqueue(w) {
		return nil, fmt.Errorf("push not sent: %w", cause)
	}
	<-w.done
	return w.resp, w.err
}

// unqueue marks w gone if it is still queued, so that no call takes it, and
// reports whether it did; false means a call has taken w.
func (c *pushCoalescer) unqueue(w *pushWaiter) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w.state != waiterQueued {
		return false
	}
	w.state = waiterGone
	return true
}

// next takes the next batch from the queue for a call that returned, or
// gives back that call's slot when nothing is queued.
func (c *pushCoalescer) next() []*pushWaiter {
	c.mu.Lock()
	defer c.mu.Unlock()
	var batch []*pushWaiter
	taken := 0
	if !c.closed {
		for _, w := range c.queue {
			if len(batch) == maxBatchReqs {
				break
			}
			taken++
			if w.state == waiterQueued {
				w.state = waiterSent
				batch = append(batch, w)
			}
		}
	}
	// Shift the rest to the front so that the array is reused, and clear
	// the tail so that answered waiters can be collected.
	n := copy(c.queue, c.queue[taken:])
	clear(c.queue[n:])
	c.queue = c.queue[:n]
	if len(batch) == 0 {
		c.inFlight--
	}
	return batch
}

// sendQueued sends batch, and the batches after it, on a goroutine of its
// own; nil sends nothing.
func (c *pushCoalescer) sendQueued(batch []*pushWaiter) {
	if batch == nil {
		return
	}
	c.clients.calls.Go(c.clients.log, "task-push-batch", func() {
		for ; batch != nil; batch = c.next() {
			c.send(batch)
		}
	})
}

// send makes the call of batch and answers each of its waiters: a single
// push goes as a Push call, more as one PushBatch call, or as Push calls one
// after the other to a gateway older than PushBatch.
func (c *pushCoalescer) send(batch []*pushWaiter) {
	c.mu.Lock()
	pushOnly := c.pushOnly()
	c.mu.Unlock()
	if len(batch) == 1 || pushOnly {
		c.sendEach(batch)
		return
	}
	reqs := make([]*pushrpc.PushReq, len(batch))
	for i, w := range batch {
		reqs[i] = w.req
	}
	c.clients.metrics.pushBatchReqs.Observe(float64(len(reqs)))
	resps, err := c.cli.PushBatch(c.ctx, reqs)
	switch {
	case rpcerr.UnknownMethod(err):
		c.rememberPushOnly()
		c.sendEach(batch)
	case err != nil:
		err = c.callErr(fmt.Errorf("push batch of %d: %w", len(batch), err))
		for _, w := range batch {
			w.answer(nil, err)
		}
	case len(resps) != len(batch):
		err = fmt.Errorf("push batch of %d answered with %d", len(batch), len(resps))
		for _, w := range batch {
			w.answer(nil, err)
		}
	default:
		for i, w := range batch {
			w.answer(batchAnswer(resps[i]))
		}
	}
}

// batchAnswer turns one PushResp of a PushBatch answer into what the req's
// own Push call would have returned.
func batchAnswer(resp *pushrpc.PushResp) (*pushrpc.PushResp, error) {
	switch {
	case resp == nil:
		return nil, errors.New("push batch answered a req with nothing")
	case resp.Error != nil:
		return nil, fmt.Errorf("%w: %s", errPushRefused, *resp.Error)
	}
	return resp, nil
}

// sendEach sends the pushes of batch as Push calls, one after the other so
// that they keep their order; a push whose caller's wait is over by its turn
// (its context ended, or c.timeout passed) is not sent, so that a batch to a
// stalled gateway costs each caller at most its own wait and one call.
func (c *pushCoalescer) sendEach(batch []*pushWaiter) {
	for _, w := range batch {
		if w.ctx.Err() != nil || time.Now().After(w.deadline) {
			w.answer(nil, fmt.Errorf("push not sent: its caller's wait of %v is over",
				c.timeout))
			continue
		}
		resp, err := c.cli.Push(c.ctx, w.req)
		if err != nil {
			err = c.callErr(err)
		}
		w.answer(resp, err)
	}
}

// callErr returns err, or errClientClosed when c was closed meanwhile: the
// call failed because close cancelled it.
func (c *pushCoalescer) callErr(err error) error {
	if c.ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", errClientClosed, err)
	}
	return err
}

// rememberPushOnly notes that the gateway does not know PushBatch.
func (c *pushCoalescer) rememberPushOnly() {
	c.mu.Lock()
	c.pushOnlyUntil = time.Now().Add(pushOnlyRecheck)
	c.mu.Unlock()
	c.clients.metrics.pushBatchFallbacks.Inc()
	c.clients.log.Info().Str("gateway", c.addr).Dur("recheck", pushOnlyRecheck).
		Msg("gateway does not know PushBatch (older release); sending it Push calls")
}

// close fails the queued pushes and cancels the batch calls in flight,
// whose waiters then fail too; pushes handed to c later fail at once. Lone
// pushes in flight run on their callers' contexts and finish as they
// would. close may be called more than once.
func (c *pushCoalescer) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	c.cancel()
	for _, w := range c.queue {
		if w.state == waiterQueued {
			w.state = waiterSent
			w.answer(nil, errClientClosed)
		}
	}
	clear(c.queue)
	c.queue = nil
}
