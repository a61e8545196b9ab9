package scenario

import "sync"

// tracker checks delivery: every acked message reaches its recipient exactly
// once, and each receiver sees the seqs of each conversation strictly
// increasing. One tracker serves all receivers; its lock is taken once per
// push, which is cheap next to the push's network path.
type tracker struct {
	mu sync.Mutex
	// expected maps an acked msg id to its recipient's index.
	expected map[int64]int
	// received counts deliveries per receiver and msg id.
	received []map[int64]int
	// lastSeq is the last seq seen per receiver and conversation.
	lastSeq   []map[string]int64
	reordered int
	// missing counts acked messages not yet at their recipient, so that
	// polling for completion is O(1). A push may beat its ack to us.
	missing int
	// closed holds the receivers whose connection the server closed, with
	// the reason: what was acked to them and not delivered is undeliverable,
	// not lost, and nobody waits for it.
	closed map[int]string
}

func newTracker(receivers int) *tracker {
	t := &tracker{
		expected: make(map[int64]int),
		received: make([]map[int64]int, receivers),
		lastSeq:  make([]map[string]int64, receivers),
		closed:   make(map[int]string),
	}
	for i := range receivers {
		t.received[i] = make(map[int64]int)
		t.lastSeq[i] = make(map[string]int64)
	}
	return t
}

// acked records that msgID was acked and is due at receiver to.
func (t *tracker) acked(msgID int64, to int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expected[msgID] = to
	if _, closed := t.closed[to]; !closed && t.received[to][msgID] == 0 {
		t.missing++
	}
}

// serverClosed records that the server closed the connection of receiver
// for reason; no push reaches it after.
func (t *tracker) serverClosed(receiver int, reason string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.closed[receiver]; ok {
		return
	}
	t.closed[receiver] = reason
	for id, to := range t.expected {
		if to == receiver && t.received[to][id] == 0 {
			t.missing--
		}
	}
}

// delivered records a push of msgID (conv, seq) at receiver.
func (t *tracker) delivered(receiver int, msgID int64, conv string, seq int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.received[receiver][msgID]++
	// A duplicate is counted once, as a duplicate, not also as a reorder.
	if t.received[receiver][msgID] > 1 {
		return
	}
	if to, ok := t.expected[msgID]; ok && to == receiver {
		t.missing--
	}
	if seq <= t.lastSeq[receiver][conv] {
		t.reordered++
	}
	t.lastSeq[receiver][conv] = max(seq, t.lastSeq[receiver][conv])
}

// tally counts the outcome: delivered and lost among acked messages, the
// extra copies of acked messages, and the reorders. An acked message not
// delivered to a receiver the server closed is not lost (see
// undeliverable).
// TODO: one acked well before the close counts so too, though a live
// receiver should have had it; telling them apart needs the push's timing.
func (t *tracker) tally() (delivered, lost, duplicated, reordered int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, to := range t.expected {
		_, closed := t.closed[to]
		switch n := t.received[to][id]; {
		case n == 0 && closed:
		case n == 0:
			lost++
		default:
			delivered++
			duplicated += n - 1
		}
	}
	return delivered, lost, duplicated, t.reordered
}

// undeliverable counts, per close reason, the acked messages not delivered
// to a receiver the server closed.
func (t *tracker) undeliverable() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]int)
	for id, to := range t.expected {
		if reason, closed := t.closed[to]; closed && t.received[to][id] == 0 {
			out[reason]++
		}
	}
	return out
}

// complete reports whether every acked message has arrived.
func (t *tracker) complete() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.missing == 0
}
