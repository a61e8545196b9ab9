package clienttest

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/resonance-im/resonance/client"
)

// AwayGate keeps a Session away for as long as a test needs: set OnEvent as
// the Session's SessionConfig.OnEvent; after Hold, the next disconnection
// waits in OnEvent, on the Session's connection goroutine, until Release,
// so what the test does meanwhile happens while the device has no
// connection. The wait is a test's privilege: an app's OnEvent must
// return quickly.
type AwayGate struct {
	resumes atomic.Int32

	mu   sync.Mutex
	gate chan struct{} // nil unless held
	away bool          // a disconnection waits at the gate
}

// OnEvent follows the Session's events.
func (g *AwayGate) OnEvent(e client.Event) {
	switch e.Kind {
	case client.EventResumed:
		g.resumes.Add(1)
	case client.EventDisconnected:
		g.mu.Lock()
		gate := g.gate
		g.away = gate != nil
		g.mu.Unlock()
		if gate != nil {
			<-gate
		}
	}
}

// Resumes is how many connections of the Session caught up.
func (g *AwayGate) Resumes() int { return int(g.resumes.Load()) }

// Hold makes the next disconnection wait until Release, which t's cleanup
// calls if the test does not.
func (g *AwayGate) Hold(t testing.TB) {
	g.mu.Lock()
	g.gate, g.away = make(chan struct{}), false
	g.mu.Unlock()
	t.Cleanup(g.Release)
}

// Away reports whether a disconnection waits at the gate.
func (g *AwayGate) Away() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.away
}

// Release lets the waiting disconnection, if any, go on to reconnect.
func (g *AwayGate) Release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gate != nil {
		close(g.gate)
		g.gate, g.away = nil, false
	}
}
