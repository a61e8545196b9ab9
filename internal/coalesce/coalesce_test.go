package coalesce

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// gate is a call function whose calls wait until the test lets each go;
// each call comes to the test on calls.
type gate struct {
	calls chan *gatedCall
}

type gatedCall struct {
	items   []int
	release chan struct{}
}

func (g *gate) call(ctx context.Context, items []int) ([]int, error) {
	c := &gatedCall{items: items, release: make(chan struct{})}
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
	return New(context.Background(), Config{InFlight: testInFlight, MaxUnits: 64,
		Timeout: 5 * time.Second}, func(n int) int { return n }, g.call)
}

type result struct {
	out int
	err error
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
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
