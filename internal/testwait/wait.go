// Package testwait waits in tests for what happens in the background.
package testwait

import (
	"testing"
	"time"
)

// For polls cond every few milliseconds until it holds, and fails t
// after timeout, naming what it waited for.
func For(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
