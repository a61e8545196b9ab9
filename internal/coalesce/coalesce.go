// Package coalesce carries requests that queue behind calls in flight to a
// service in one call, for services that take a list (logic's SendRuns and
// LoginBatch, the gateway's PushBatch). A lone request is never held back;
// under load the cost of a call (Kitex on both sides, the goroutines it
// wakes) is paid per batch.
package coalesce

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Config bounds a Batcher and says how it runs its calls.
type Config struct {
	// InFlight is how many calls are out before later items wait to go
	// together.
	InFlight int
	// MaxUnits bounds the units (Size) of the items of one call; an item
	// larger than it goes alone.
	MaxUnits int
	// Timeout bounds a batch call. Zero leaves it to the call, for one that
	// bounds itself (an RPC client's own timeout). A lone item's call runs
	// on its caller's context instead.
	Timeout time.Duration
	// MaxQueueWait bounds an item's wait in the queue, as its caller's
	// context does: an item still queued then is not sent. It costs a timer
	// per queued item, none for one that goes out at once. Zero: only the
	// context bounds the wait.
	MaxQueueWait time.Duration
	// Go runs fn, a batch call and those that follow it, on a new
	// goroutine, so that a service can track it (run.Group) and wait for it
	// at shutdown. It is called with the Batcher's lock held, so it must
	// neither block nor call the Batcher. Nil: a go statement.
	Go func(fn func())
}

// Errors of a Batcher, compared with errors.Is.
var (
	// ErrShortAnswer means a call answered fewer or more outcomes than items.
	ErrShortAnswer = errors.New("coalesce: call answered a different number of outcomes")
	// ErrClosed means the Batcher was closed before a call took the item.
	ErrClosed = errors.New("coalesce: batcher closed")
)

// state says where a queued item stands; guarded by Batcher.mu.
type state uint8

const (
	queued state = iota // in the queue, not sent
	sent                // taken by a call, or failed by Close
	gone                // its caller stopped waiting before a call took it
)

type waiter[I, O any] struct {
	item  I
	units int
	state state
	// out and err are set before done is closed, then only read.
	out  O
	err  error
	done chan struct{}
}

func (w *waiter[I, O]) answer(out O, err error) {
	w.out, w.err = out, err
	close(w.done)
}

// Batcher carries items to call. An item goes out at once, on its caller's
// goroutine, while fewer than InFlight calls are out; later items queue, and
// each call that returns sends the queue (up to MaxUnits) as one call, on a
// goroutine of its own, which goes on while the queue refills. A queue that
// holds a full call goes out at once whatever is in flight, so InFlight
// shapes the batches but never caps the rate.
//
// An item still queued when its caller's context ends, or MaxQueueWait
// passes, is never sent; one a call has taken is answered by that call,
// which Timeout bounds, so a caller that waits for each item before it sends
// the next never has two out. call is given a lone item with its caller's
// context, and a batch, of one item or more, with the Batcher's. It is safe
// for concurrent use.
type Batcher[I, O any] struct {
	cfg  Config
	ctx  context.Context // of the batch calls
	call func(ctx context.Context, items []I) ([]O, error)
	size func(I) int

	mu       sync.Mutex
	inFlight int
	queue    []*waiter[I, O] // FIFO; gone entries are skipped
	units    int             // of the queued waiters
	closed   bool
}

// New returns a Batcher that makes its batch calls on ctx. call must answer
// one outcome per item, in order; size gives an item's units (nil: 1 each).
func New[I, O any](ctx context.Context, cfg Config, size func(I) int,
	call func(ctx context.Context, items []I) ([]O, error)) *Batcher[I, O] {
	if size == nil {
		size = func(I) int { return 1 }
	}
	return &Batcher[I, O]{cfg: cfg, ctx: ctx, call: call, size: size}
}

// Do sends item and returns its outcome, or the error of the call that
// carried it. An item still queued when ctx ends or MaxQueueWait passes is
// not sent, and Do returns that error; so an item waits at most its ctx (or
// MaxQueueWait) in the queue, then a Timeout in its call. After Close, Do
// returns ErrClosed.
func (b *Batcher[I, O]) Do(ctx context.Context, item I) (O, error) {
	b.mu.Lock()
	switch {
	case b.closed:
		b.mu.Unlock()
		var zero O
		return zero, ErrClosed
	case b.inFlight < b.cfg.InFlight:
		b.inFlight++
		b.mu.Unlock()
		return b.lone(ctx, item)
	}
	w := &waiter[I, O]{item: item, units: b.size(item), done: make(chan struct{})}
	b.queue = append(b.queue, w)
	b.units += w.units
	if b.units >= b.cfg.MaxUnits {
		b.inFlight++
		b.start(b.take())
	}
	b.mu.Unlock()
	return b.wait(ctx, w)
}

// lone calls with item alone on ctx, in a call slot taken for it, then hands
// the slot on.
func (b *Batcher[I, O]) lone(ctx context.Context, item I) (O, error) {
	outs, err := b.checked(ctx, []I{item})
	b.mu.Lock()
	if batch := b.next(); batch != nil {
		b.start(batch)
	}
	b.mu.Unlock()
	if err != nil {
		var zero O
		return zero, err
	}
	return outs[0], nil
}

// wait returns w's outcome once a call answered it, or an error when its
// caller's ctx ends or MaxQueueWait passes while w is still queued. Once a
// call has taken w, it waits for that call.
func (b *Batcher[I, O]) wait(ctx context.Context, w *waiter[I, O]) (O, error) {
	var expired <-chan time.Time
	if b.cfg.MaxQueueWait > 0 {
		timer := time.NewTimer(b.cfg.MaxQueueWait)
		defer timer.Stop()
		expired = timer.C
	}
	var cause error
	select {
	case <-w.done:
		return w.out, w.err
	case <-ctx.Done():
		cause = ctx.Err()
	case <-expired:
		cause = fmt.Errorf("queued for %v: %w", b.cfg.MaxQueueWait, context.DeadlineExceeded)
	}
	if b.unqueue(w) {
		var zero O
		return zero, fmt.Errorf("not sent: %w", cause)
	}
	<-w.done
	return w.out, w.err
}

// Queued returns the items waiting in the queue and their units.
func (b *Batcher[I, O]) Queued() (items, units int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, w := range b.queue {
		if w.state == queued {
			items++
		}
	}
	return items, b.units
}

// InFlight returns the calls out now.
func (b *Batcher[I, O]) InFlight() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.inFlight
}

// Close fails the items still queued, and those handed to Do later, with
// ErrClosed. Calls in flight go on and answer their items, but start no
// other call: to end them sooner, cancel the context given to New (lone
// calls run on their callers' contexts and end as they would). Once Close
// has returned, the Batcher starts no goroutine, so a group that Config.Go
// starts them in can be waited for. Close may be called more than once.
func (b *Batcher[I, O]) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for _, w := range b.queue {
		if w.state == queued {
			w.state = sent
			var zero O
			w.answer(zero, ErrClosed)
		}
	}
	clear(b.queue)
	b.queue, b.units = nil, 0
}

// unqueue marks w gone if it is still queued, so that no call takes it, and
// reports whether it did; false means a call has taken w.
func (b *Batcher[I, O]) unqueue(w *waiter[I, O]) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if w.state != queued {
		return false
	}
	w.state = gone
	b.units -= w.units
	return true
}

// next takes the next batch for a call that returned, or gives back that
// call's slot when nothing is queued. b.mu is held.
func (b *Batcher[I, O]) next() []*waiter[I, O] {
	batch := b.take()
	if batch == nil {
		b.inFlight--
	}
	return batch
}

// take removes from the queue's head the waiters of one call: up to
// MaxUnits, and at least one waiter. It returns nil when none waits. b.mu
// is held.
func (b *Batcher[I, O]) take() []*waiter[I, O] {
	var batch []*waiter[I, O]
	taken, units := 0, 0
	for _, w := range b.queue {
		if w.state == queued {
			if len(batch) > 0 && units+w.units > b.cfg.MaxUnits {
				break
			}
			w.state = sent
			batch = append(batch, w)
			units += w.units
			b.units -= w.units
		}
		taken++
	}
	// Shift the rest to the front so that the array is reused, and clear
	// the tail so that answered waiters can be collected.
	n := copy(b.queue, b.queue[taken:])
	clear(b.queue[n:])
	b.queue = b.queue[:n]
	return batch
}

// start runs batch, and the batches after it, on a goroutine of its own.
// b.mu is held: Close, which takes it, thus returns only after every
// goroutine that was to start has been handed to Config.Go.
func (b *Batcher[I, O]) start(batch []*waiter[I, O]) {
	if b.cfg.Go == nil {
		go b.sendBatches(batch)
		return
	}
	b.cfg.Go(func() { b.sendBatches(batch) })
}

// sendBatches calls with batch, answers its waiters, and goes on with the
// next batch while one waits; it holds one call slot throughout.
func (b *Batcher[I, O]) sendBatches(batch []*waiter[I, O]) {
	for batch != nil {
		items := make([]I, len(batch))
		for i, w := range batch {
			items[i] = w.item
		}
		outs, err := b.batchCall(items)
		for i, w := range batch {
			if err != nil {
				var zero O
				w.answer(zero, err)
			} else {
				w.answer(outs[i], nil)
			}
		}

		b.mu.Lock()
		batch = b.next()
		b.mu.Unlock()
	}
}

// batchCall makes the call of a batch, on b.ctx bounded by Timeout.
func (b *Batcher[I, O]) batchCall(items []I) ([]O, error) {
	if b.cfg.Timeout <= 0 {
		return b.checked(b.ctx, items)
	}
	ctx, cancel := context.WithTimeout(b.ctx, b.cfg.Timeout)
	defer cancel()
	return b.checked(ctx, items)
}

// checked makes one call and checks that it answered every item.
func (b *Batcher[I, O]) checked(ctx context.Context, items []I) ([]O, error) {
	outs, err := b.call(ctx, items)
	if err == nil && len(outs) != len(items) {
		err = fmt.Errorf("%w: %d for %d items", ErrShortAnswer, len(outs), len(items))
	}
	return outs, err
}
