package rpcerr

import (
	"sync"
	"testing"
	"time"
)

// A refusal is remembered for its recheck period and then forgotten; of
// concurrent refusals exactly one is the first, the one that logs.
func TestOlderPeer_RemembersARefusalForItsPeriod(t *testing.T) {
	var o OlderPeer
	if o.Active() {
		t.Fatal("the zero value is active")
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	firsts := 0
	for range 8 {
		wg.Go(func() {
			if o.Refused(time.Hour) {
				mu.Lock()
				firsts++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firsts != 1 {
		t.Fatalf("%d of 8 concurrent refusals reported first, want 1", firsts)
	}
	if !o.Active() {
		t.Fatal("not active after a refusal")
	}

	// A period that is over: the method is tried again, and the next
	// refusal is a first again.
	o.Refused(time.Nanosecond)
	time.Sleep(time.Millisecond)
	if o.Active() {
		t.Fatal("still active after the recheck period")
	}
	if !o.Refused(time.Hour) {
		t.Fatal("a refusal after the period is not reported first")
	}
}
