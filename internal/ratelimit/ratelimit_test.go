package ratelimit

import (
	"strconv"
	"testing"
	"time"
)

// fakeClock lets a test move time by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newTestLimiter(cfg Config) (*Limiter, *fakeClock) {
	c := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	l := New(cfg)
	l.now = c.now
	return l, c
}

func TestLimiter_BurstThenRefill(t *testing.T) {
	l, clock := newTestLimiter(Config{Burst: 3, Per: time.Second})
	for i := range 3 {
		if !l.Allow("a") {
			t.Fatalf("event %d refused within the burst", i)
		}
	}
	if l.Allow("a") {
		t.Fatal("event past the burst allowed")
	}
	if !l.Allow("b") {
		t.Fatal("another key shares a's bucket")
	}
	clock.t = clock.t.Add(time.Second)
	if !l.Allow("a") || l.Allow("a") {
		t.Fatal("one second should give back exactly one event")
	}
}

func TestLimiter_CheckDoesNotTake(t *testing.T) {
	l, _ := newTestLimiter(Config{Burst: 1})
	for range 5 {
		if !l.Check("a") {
			t.Fatal("Check refused a fresh key")
		}
	}
	if !l.Allow("a") || l.Check("a") {
		t.Fatal("Check should see the bucket Allow emptied")
	}
}

func TestLimiter_KeysStayBounded(t *testing.T) {
	l, _ := newTestLimiter(Config{Burst: 1, MaxKeys: 64})
	for i := range 10000 {
		l.Allow(strconv.Itoa(i))
	}
	if n := l.Len(); n > 64 {
		t.Fatalf("%d keys remembered, want at most 64", n)
	}
}
