package coalesce

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resonance-im/resonance/internal/testwait"
)

// gate is a call function whose calls wait until the test lets each go;
// each call comes to the test on calls.
type gate struct {
	calls chan *gatedCall
}

type gatedCall struct {
	ctx     context.Context
	items   []int
	release chan struct{}
}

func (g *gate) call(ctx context.Context, items []int) ([]int, error) {
	c := &gatedCall{ctx: ctx, items: items, release: make(chan struct{})}
	g.calls <- c
	select {
	case <-c.release:
		return slices.Clone(items), nil // each item answered with itself
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (g *gate) next(t *testing.T) *gatedCall {
	t.Helper()
	select {
	case c := <-g.calls:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no call")
		return nil
	}
}

const testInFlight = 2

// newGated returns a Batcher of items sized by their value, bounded to 64
// units a call, calling g.
func newGated(g *gate) *Batcher[int, int] {
	return newGatedConfig(g, Config{InFlight: testInFlight, MaxUnits: 64,
		Timeout: 5 * time.Second})
}

// newGatedConfig is newGated with cfg.
func newGatedConfig(g *gate, cfg Config) *Batcher[int, int] {
	return New(context.Background(), cfg, func(n int) int { return n }, g.call)
}

// fillInFlight starts testInFlight lone items of 1 and returns their calls,
// held.
func fillInFlight(t *testing.T, b *Batcher[int, int], g *gate) []*gatedCall {
	t.Helper()
	var held []*gatedCall
	for range testInFlight {
		go func() { _, _ = b.Do(context.Background(), 1) }()
		held = append(held, g.next(t))
	}
	return held
}

// doAsync runs b.Do(ctx, n) on a goroutine of its own and returns where its
// result comes.
func doAsync(b *Batcher[int, int], ctx context.Context, n int) <-chan result {
	done := make(chan result, 1)
	go func() {
		out, err := b.Do(ctx, n)
		done <- result{out, err}
	}()
	return done
}

// awaitResult returns the result from done, failing after 5s.
func awaitResult(t *testing.T, done <-chan result, what string) result {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no answer after 5s", what)
		return result{}
	}
}

// noCall fails if a call comes within a short while.
func noCall(t *testing.T, g *gate, why string) {
	t.Helper()
	select {
	case c := <-g.calls:
		t.Fatalf("a call of %v went out: %s", c.items, why)
	case <-time.After(50 * time.Millisecond):
	}
}

type result struct {
	out int
	err error
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.For(t, 5*time.Second, what, cond)
}

// Items go out alone while fewer than InFlight calls are out; then they
// queue, and a queue that makes a full call goes out at once with every
// slot taken, the rest waiting for a slot; an item abandoned while queued is
// never sent; every slot comes back.
func TestBatcher_LoneThenQueuedThenFullCallAtOnce(t *testing.T) {
	g := &gate{calls: make(chan *gatedCall, 16)}
	b := newGated(g)
	results := make(chan result, 16)
	do := func(ctx context.Context, n int) {
		out, err := b.Do(ctx, n)
		results <- result{out, err}
	}
	var held []*gatedCall
	for range testInFlight {
		go do(context.Background(), 1)
		held = append(held, g.next(t))
	}
	ctx, cancel := context.WithCancel(context.Background())
	go do(ctx, 10)
	waitFor(t, "the item to abandon queued", func() bool { _, u := b.Queued(); return u == 10 })
	cancel()
	if r := <-results; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("abandoned item answered %v, want not sent", r.err)
	}
	go do(context.Background(), 56)
	waitFor(t, "56 queued", func() bool { _, u := b.Queued(); return u == 56 })
	select {
	case c := <-g.calls:
		t.Fatalf("a call of %v went out before the queue held a full call", c.items)
	default:
	}
	go do(context.Background(), 8) // 56 + 8 = 64: a full call, at once
	full := g.next(t)
	if !slices.Equal(full.items, []int{56, 8}) {
		t.Fatalf("full call of %v, want [56 8]", full.items)
	}
	go do(context.Background(), 5)
	waitFor(t, "5 queued", func() bool { _, u := b.Queued(); return u == 5 })
	for _, c := range append(held, full) {
		close(c.release)
	}
	last := g.next(t)
	if !slices.Equal(last.items, []int{5}) {
		t.Fatalf("last call of %v, want [5]", last.items)
	}
	close(last.release)
	var outs []int
	for range testInFlight + 3 {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		outs = append(outs, r.out)
	}
	slices.Sort(outs)
	if !slices.Equal(outs, []int{1, 1, 5, 8, 56}) {
		t.Fatalf("outcomes %v, want each item's own", outs)
	}
	waitFor(t, "every slot back", func() bool {
		items, units := b.Queued()
		return b.InFlight() == 0 && items == 0 && units == 0
	})
}

// A caller whose context ends after a call took its item waits for that
// call and gets its outcome: a caller that went on could send its next item
// while this one is still out.
func TestBatcher_TakenItemWaitsForItsCall(t *testing.T) {
	g := &gate{calls: make(chan *gatedCall, 16)}
	b := newGated(g)
	var held []*gatedCall
	for range testInFlight {
		go func() { _, _ = b.Do(context.Background(), 1) }()
		held = append(held, g.next(t))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan result, 1)
	go func() {
		out, err := b.Do(ctx, 7)
		done <- result{out, err}
	}()
	waitFor(t, "7 queued", func() bool { _, u := b.Queued(); return u == 7 })
	close(held[0].release) // its return takes 7 into a call
	taken := g.next(t)
	<-ctx.Done()
	select {
	case r := <-done:
		t.Fatalf("taken item answered %v, %v while its call is out", r.out, r.err)
	case <-time.After(100 * time.Millisecond):
	}
	close(taken.release)
	if r := <-done; r.err != nil || r.out != 7 {
		t.Fatalf("taken item answered %v, %v; want its call's 7", r.out, r.err)
	}
	close(held[1].release)
}

// A call that answers a different number of outcomes fails each of its
// items.
func TestBatcher_ShortAnswerFails(t *testing.T) {
	b := New(context.Background(), Config{InFlight: 1, MaxUnits: 8, Timeout: time.Second}, nil,
		func(context.Context, []int) ([]int, error) { return nil, nil })
	if _, err := b.Do(context.Background(), 3); !errors.Is(err, ErrShortAnswer) {
		t.Fatalf("short answer gave %v, want ErrShortAnswer", err)
	}
}

// Close fails the queued items at once and later items without a call;
// calls in flight answer their items, and no call starts after them.
func TestBatcher_CloseFailsQueuedAndLaterItems(t *testing.T) {
	g := &gate{calls: make(chan *gatedCall, 16)}
	b := newGated(g)
	held := fillInFlight(t, b, g)
	queuedItem := doAsync(b, context.Background(), 7)
	waitFor(t, "7 queued", func() bool { _, u := b.Queued(); return u == 7 })

	b.Close()
	if r := awaitResult(t, queuedItem, "queued item"); !errors.Is(r.err, ErrClosed) {
		t.Fatalf("queued item answered %v, %v; want ErrClosed", r.out, r.err)
	}
	later := awaitResult(t, doAsync(b, context.Background(), 3), "item after Close")
	if !errors.Is(later.err, ErrClosed) {
		t.Fatalf("item after Close answered %v, %v; want ErrClosed", later.out, later.err)
	}
	b.Close() // a second Close is harmless

	for _, c := range held {
		close(c.release)
	}
	noCall(t, g, "after Close no call starts")
	waitFor(t, "every slot back", func() bool {
		items, units := b.Queued()
		return b.InFlight() == 0 && items == 0 && units == 0
	})
}

// Batch calls run through Config.Go; lone calls on their callers'
// goroutines.
func TestBatcher_GoRunsBatchCalls(t *testing.T) {
	g := &gate{calls: make(chan *gatedCall, 16)}
	var started atomic.Int32
	b := newGatedConfig(g, Config{InFlight: testInFlight, MaxUnits: 64, Timeout: 5 * time.Second,
		Go: func(fn func()) {
			started.Add(1)
			go fn()
		}})
	held := fillInFlight(t, b, g)
	if n := started.Load(); n != 0 {
		t.Fatalf("lone calls started %d goroutines through Go, want none", n)
	}
	batched := doAsync(b, context.Background(), 5)
	waitFor(t, "5 queued", func() bool { _, u := b.Queued(); return u == 5 })
	close(held[0].release)
	batch := g.next(t)
	if n := started.Load(); n != 1 {
		t.Fatalf("a batch call started %d goroutines through Go, want 1", n)
	}
	close(batch.release)
	close(held[1].release)
	if r := awaitResult(t, batched, "batched item"); r.err != nil || r.out != 5 {
		t.Fatalf("batched item answered %v, %v; want 5", r.out, r.err)
	}
}

// An item that waits MaxQueueWait in the queue leaves it unsent, although
// its context goes on.
func TestBatcher_MaxQueueWaitBoundsTheQueue(t *testing.T) {
	g := &gate{calls: make(chan *gatedCall, 16)}
	const maxWait = 50 * time.Millisecond
	b := newGatedConfig(g, Config{InFlight: testInFlight, MaxUnits: 64, Timeout: 5 * time.Second,
		MaxQueueWait: maxWait})
	held := fillInFlight(t, b, g)
	start := time.Now()
	r := awaitResult(t, doAsync(b, context.Background(), 7), "queued item")
	if !errors.Is(r.err, context.DeadlineExceeded) {
		t.Fatalf("item queued past MaxQueueWait answered %v, %v; want DeadlineExceeded",
			r.out, r.err)
	}
	if took := time.Since(start); took < maxWait {
		t.Fatalf("item left the queue after %v, before MaxQueueWait", took)
	}
	for _, c := range held {
		close(c.release)
	}
	noCall(t, g, "the item that left the queue is not sent")
}

// With Timeout zero a batch call runs on the Batcher's context unbounded;
// with one, bounded.
func TestBatcher_ZeroTimeoutLeavesBatchCallsUnbounded(t *testing.T) {
	for _, tc := range []struct {
		name        string
		timeout     time.Duration
		hasDeadline bool
	}{
		{name: "zero", timeout: 0, hasDeadline: false},
		{name: "5s", timeout: 5 * time.Second, hasDeadline: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &gate{calls: make(chan *gatedCall, 16)}
			b := newGatedConfig(g, Config{InFlight: testInFlight, MaxUnits: 64,
				Timeout: tc.timeout})
			held := fillInFlight(t, b, g)
			batched := doAsync(b, context.Background(), 5)
			waitFor(t, "5 queued", func() bool { _, u := b.Queued(); return u == 5 })
			close(held[0].release)
			batch := g.next(t)
			if _, ok := batch.ctx.Deadline(); ok != tc.hasDeadline || batch.ctx.Err() != nil {
				t.Errorf("batch call's context has a deadline: %v, err %v; want %v, nil",
					ok, batch.ctx.Err(), tc.hasDeadline)
			}
			close(batch.release)
			close(held[1].release)
			if r := awaitResult(t, batched, "batched item"); r.err != nil {
				t.Fatal(r.err)
			}
		})
	}
}
