package logic

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/resonance-im/resonance/internal/ratelimit"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Two users' devices pinning at once cannot pass MaxPins between them: each
// pin counts the conversation's pins under its row lock.
func TestPin_ConcurrentPinsKeepTheLimit(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		e.svc.limits.pin = ratelimit.New(ratelimit.Config{Burst: 100, Per: time.Hour})
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		const n = MaxPins + 10
		conv := e.sendN(t, alice, bob, n, "m").ConvId
		var wg sync.WaitGroup
		for seq := int64(1); seq <= n; seq++ {
			wg.Add(1)
			go func(seq int64) {
				defer wg.Done()
				user := []int64{alice, bob}[seq%2]
				_, _ = e.svc.Pin(ctxBG, session(user, seq%3+1), &protocol.PinReq{
					ClientMsgId: fmt.Sprintf("race-%d", seq), ConvId: conv, Seq: seq})
			}(seq)
		}
		wg.Wait()
		if got := e.pinsOf(t, alice, conv); len(got) != MaxPins {
			t.Fatalf("%d pins after %d racing pins, want %d: %v", len(got), n, MaxPins, got)
		}
		if rows := e.countRows(t, &pinRow{}, "conv_id = ?", conv); rows != MaxPins {
			t.Fatalf("%d pin rows, want %d", rows, MaxPins)
		}
	})
}
