package gateway

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/resonance-im/resonance/internal/rpcerr"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc/logic"
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

// sendState says where a queued run stands; guarded by sendCoalescer.mu.
type sendState uint8

const (
	sendQueued sendState = iota // in the queue, not sent
	sendSent                    // taken by a call
	sendGone                    // its worker stopped waiting before a call took it
)

// sendWaiter is one connection's run of SENDs that queued behind the calls
// in flight.
type sendWaiter struct {
	run   *logicrpc.SendRun
	state sendState
	// out and err are set before done is closed, then only read.
	out  []*logicrpc.SendOutcome
	err  error
	done chan struct{}
}

func (w *sendWaiter) answer(out []*logicrpc.SendOutcome, err error) {
	w.out, w.err = out, err
	close(w.done)
}

// sendCoalescer carries the runs of SENDs of all connections to logic as
// SendRuns calls. A run goes out at once, on its worker's goroutine, while
// fewer than sendCallsInFlight calls are out; later runs queue, and each
// call that returns sends the queue (up to logicrpc.MaxSendBatch SENDs) as
// one call, on a goroutine of its own, which goes on while the queue
// refills. A queue that holds a full call's worth goes out at once whatever
// is in flight, so the bound shapes the batches but never caps the rate.
//
// A connection's worker waits for its run's outcomes before it sends more,
// and once a call has taken its run it waits for that call's answer even
// past its own deadline (the call has a RequestTimeout of its own), so a
// connection never has two runs in flight, and its SENDs keep their order.
// It is safe for concurrent use.
type sendCoalescer struct {
	logic   logic.Client
	ctx     context.Context // of the batch calls
	timeout time.Duration   // of one batch call
	stats   *gatewayStats

	mu       sync.Mutex
	inFlight int
	queue    []*sendWaiter // FIFO; sendGone entries are skipped
	queued   int           // SENDs of the queued waiters
}

// send stores run through logic and returns its outcomes, or an error when
// the call failed. A run still queued when ctx ends is not sent, and send
// returns ctx's error; a run already taken by a call is answered by it. A
// queued run thus waits at most its ctx in the queue, then a RequestTimeout
// in its call.
func (c *sendCoalescer) send(ctx context.Context,
	run *logicrpc.SendRun) ([]*logicrpc.SendOutcome, error) {
	c.mu.Lock()
	if c.inFlight < sendCallsInFlight {
		c.inFlight++
		c.mu.Unlock()
		out, err := c.call(ctx, []*logicrpc.SendRun{run})
		if batch := c.next(); batch != nil {
			go c.sendBatches(batch)
		}
		if err != nil {
			return nil, err
		}
		return out[0], nil
	}
	w := &sendWaiter{run: run, done: make(chan struct{})}
	c.queue = append(c.queue, w)
	c.queued += len(run.Reqs)
	var full []*sendWaiter
	if c.queued >= logicrpc.MaxSendBatch {
		c.inFlight++
		full = c.take()
	}
	c.mu.Unlock()
	if full != nil {
		go c.sendBatches(full)
	}
	select {
	case <-w.done:
	case <-ctx.Done():
		if c.unqueue(w) {
			return nil, fmt.Errorf("sends not sent to logic: %w", ctx.Err())
		}
		<-w.done
	}
	return w.out, w.err
}

// unqueue marks w gone if it is still queued, so that no call takes it, and
// reports whether it did; false means a call has taken w.
func (c *sendCoalescer) unqueue(w *sendWaiter) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w.state != sendQueued {
		return false
	}
	w.state = sendGone
	c.queued -= len(w.run.Reqs)
	return true
}

// next takes the next batch for a call that returned, or gives back that
// call's slot when nothing is queued.
func (c *sendCoalescer) next() []*sendWaiter {
	c.mu.Lock()
	defer c.mu.Unlock()
	batch := c.take()
	if batch == nil {
		c.inFlight--
	}
	return batch
}

// take removes from the queue's head the waiters of one call: up to
// logicrpc.MaxSendBatch SENDs, and at least one run. It returns nil when
// none waits. c.mu is held.
func (c *sendCoalescer) take() []*sendWaiter {
	var batch []*sendWaiter
	taken, sends := 0, 0
	for _, w := range c.queue {
		if w.state == sendQueued {
			n := len(w.run.Reqs)
			if len(batch) > 0 && sends+n > logicrpc.MaxSendBatch {
				break
			}
			w.state = sendSent
			batch = append(batch, w)
			sends += n
			c.queued -= n
		}
		taken++
	}
	// Shift the rest to the front so that the array is reused, and clear
	// the tail so that answered waiters can be collected.
	n := copy(c.queue, c.queue[taken:])
	clear(c.queue[n:])
	c.queue = c.queue[:n]
	return batch
}

// sendBatches calls logic with batch, answers its waiters, and goes on with
// the next batch while one waits; it holds one call slot throughout.
func (c *sendCoalescer) sendBatches(batch []*sendWaiter) {
	for ; batch != nil; batch = c.next() {
		runs := make([]*logicrpc.SendRun, len(batch))
		for i, w := range batch {
			runs[i] = w.run
		}
		ctx, cancel := context.WithTimeout(c.ctx, c.timeout)
		out, err := c.call(ctx, runs)
		cancel()
		for i, w := range batch {
			if err != nil {
				w.answer(nil, err)
			} else {
				w.answer(out[i], nil)
			}
		}
	}
}

// call makes one SendRuns call and checks that it answered every SEND.
func (c *sendCoalescer) call(ctx context.Context,
	runs []*logicrpc.SendRun) ([][]*logicrpc.SendOutcome, error) {
	sends := 0
	for _, run := range runs {
		sends += len(run.Reqs)
	}
	c.stats.sendBatches.Add(1)
	c.stats.batchedSends.Add(uint64(sends))
	out, err := c.logic.SendRuns(ctx, runs)
	if rpcerr.UnknownMethod(err) {
		c.stats.sendFallbacks.Add(1) // once per call; each run falls back
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
