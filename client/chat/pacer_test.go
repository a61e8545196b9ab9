package chat

import (
	"context"
	"testing"
	"time"
)

func TestPacer_BurstThenSteady(t *testing.T) {
	ctx := context.Background()
	var p pacer
	start := time.Now()
	for i := range sendBurst {
		if err := p.wait(ctx); err != nil {
			t.Fatalf("send %d of the burst: %v", i, err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the burst took %s", d)
	}
	start = time.Now()
	for range 10 {
		if err := p.wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d < 9*sendEvery {
		t.Fatalf("10 sends past the burst took %s, want at least %s", d, 9*sendEvery)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := p.wait(cancelled); err == nil {
		t.Fatal("wait returned nil on a cancelled context")
	}
}
