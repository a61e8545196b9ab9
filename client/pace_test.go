package client

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestPacer_BurstThenSteady(t *testing.T) {
	ctx := context.Background()
	p := HalfFrameRate()
	start := time.Now()
	for i := range p.Burst {
		if err := p.Wait(ctx); err != nil {
			t.Fatalf("request %d of the burst: %v", i, err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the burst took %s", d)
	}
	start = time.Now()
	for range 10 {
		if err := p.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d < 9*p.Every {
		t.Fatalf("10 requests past the burst took %s, want at least %s", d, 9*p.Every)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := p.Wait(cancelled); err == nil {
		t.Fatal("Wait returned nil on a cancelled context")
	}
}

// Two uploads on one connection share its budget: together they must not
// go faster than one would alone, or the gateway closes the connection.
func TestPacer_SharedByConcurrentUsers(t *testing.T) {
	p := &Pacer{Every: 5 * time.Millisecond, Burst: 2}
	const each = 10
	start := time.Now()
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for range each {
				if err := p.Wait(context.Background()); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	// 20 requests, 2 of them in the burst: at least 17 intervals.
	if d, want := time.Since(start), 17*p.Every; d < want {
		t.Fatalf("2 × %d requests through one Pacer took %s, want at least %s", each, d, want)
	}
}

func TestPacer_ZeroLetsAllThrough(t *testing.T) {
	var p Pacer
	start := time.Now()
	for range 1000 {
		if err := p.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("1000 requests through a zero Pacer took %s", d)
	}
}
