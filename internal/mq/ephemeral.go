package mq

import "strings"

// Ephemeral events (typing, live read receipts, presence) travel on core
// NATS, not JetStream: losing one is harmless, nobody retries them, and they
// must not fill the stream. Their subjects therefore sit outside the stream's
// Subject + ".>": a prefix "resonance" gives "resonance.evt.>" for the
// stream and "resonance.eph.*" here.

// ephemeralRoot is the subject prefix of ephemeral events.
func (n Names) ephemeralRoot() string {
	if root, ok := strings.CutSuffix(n.Subject, ".evt"); ok {
		return root + ".eph"
	}
	// Names not built by NewNames: a sibling token still stays outside
	// Subject + ".>".
	return n.Subject + "-eph"
}

// NotifySubject is the core NATS subject of event.NotifyEvent.
func (n Names) NotifySubject() string { return n.ephemeralRoot() + ".notify" }

// PresenceSubject is the core NATS subject of event.PresenceEvent.
func (n Names) PresenceSubject() string { return n.ephemeralRoot() + ".presence" }

// RevokedSubject is the core NATS subject of event.RevokedEvent, which every
// logic instance subscribes to (no queue group: each needs every event).
func (n Names) RevokedSubject() string { return n.ephemeralRoot() + ".revoked" }

// EphemeralQueue is the queue group task instances subscribe to ephemeral
// subjects with, so that each event is handled by one of them.
func (n Names) EphemeralQueue() string { return n.Consumer + "_eph" }
