package task

import (
	"testing"
	"time"
)

// A lapsed gateway is probed once per lapsedProbeInterval, one probe at a
// time; it is pushed to from an answered probe until a push fails, and
// forgotten once no longer lapsed.
func TestLapsedGateways_ProbeOnceAtATimeAndPerInterval(t *testing.T) {
	const addr = "10.0.0.1:9000"
	l := newLapsedGateways()
	now := time.Unix(1000, 0)
	if !l.claimProbe(addr, now) {
		t.Fatal("first probe of a lapsed gateway not due")
	}
	if l.claimProbe(addr, now.Add(2*lapsedProbeInterval)) {
		t.Error("a second probe claimed while the first is out")
	}
	if !l.busy(addr) || l.answering(addr) || !l.undecided(addr) {
		t.Error("a gateway with its probe out: want busy, not answering, undecided")
	}

	// Unanswered: skipped, and probed again only after the interval.
	l.probed(addr, false)
	if l.busy(addr) || l.answering(addr) || l.undecided(addr) {
		t.Error("a gateway whose probe failed: want neither busy, answering nor undecided")
	}
	if l.claimProbe(addr, now.Add(lapsedProbeInterval-time.Millisecond)) {
		t.Error("probe claimed within the interval after the last one")
	}
	now = now.Add(lapsedProbeInterval)
	if !l.claimProbe(addr, now) {
		t.Fatal("probe not due an interval after the last one")
	}

	// Answered: pushed to, and not probed, until a push fails.
	l.probed(addr, true)
	if !l.answering(addr) || l.claimProbe(addr, now.Add(2*lapsedProbeInterval)) {
		t.Error("an answering gateway: want answering and no probe")
	}
	if !l.failed(addr, now) || l.answering(addr) || !l.undecided(addr) {
		t.Error("a failed push to an answering gateway: want it undecided, not answering")
	}
	if l.failed(addr, now) {
		t.Error("a second failed push reported as the first")
	}
	if l.claimProbe(addr, now.Add(lapsedProbeInterval-time.Millisecond)) {
		t.Error("probe claimed within the interval after a failed push")
	}

	// Registered again: forgotten, so a late probe changes nothing.
	l.claimProbe(addr, now.Add(lapsedProbeInterval))
	l.retain(func(string) bool { return false })
	if l.probed(addr, true) || l.answering(addr) {
		t.Error("a probe ending after its gateway was forgotten brought it back")
	}
}
