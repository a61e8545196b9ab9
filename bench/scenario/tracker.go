package scenario

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// closeGrace is how long before its receiver's close a message may have
// been acked and still count as cut off by the close (undeliverable)
// rather than lost. The server hands an acked message to the receiver's
// gateway within its push path's bound: the outbox relay takes a row the
// publisher missed after relayAge (5s) and looks every second, and the
// task pushes within PushTimeout (3s) plus the reorder window (200ms).
// The gateway flushes what it holds ahead of its CLOSE, so a message
// acked earlier than that and missing at the close was not cut off: a
// live receiver would have had it. The rest covers the bench's own lag in
// reading the CLOSE. A push that failed and waits for JetStream's
// redelivery (30s) is beyond it: that path already failed once.
const closeGrace = 10 * time.Second

// tracker checks delivery: every acked message reaches its recipient exactly
// once, and each receiver sees the seqs of each conversation strictly
// increasing. One tracker serves all receivers; its lock is taken once per
// push, which is cheap next to the push's network path.
type tracker struct {
	mu sync.Mutex
	// expected maps an acked msg id to its recipient and ack time.
	expected map[int64]expectation
	// received counts deliveries per receiver and msg id.
	received []map[int64]int
	// lastSeq is the last seq seen per receiver and conversation.
	lastSeq   []map[string]int64
	reordered int
	// missing counts acked messages not yet at their recipient, so that
	// polling for completion is O(1). A push may beat its ack to us.
	missing int
	// closed holds the receivers whose connection the server closed: what
	// was acked to them within closeGrace of the close, or after it, and
	// not delivered is undeliverable, not lost. Nobody waits for anything
	// of theirs after the close.
	closed *closures
}

// expectation is an acked message's recipient and when the bench saw its
// ack.
type expectation struct {
	to      int
	ackedAt time.Time
}

// closure is why and when the bench saw the server close a receiver.
type closure struct {
	reason   string
	closedAt time.Time
}

// closures records the connections the server closed during a run, by
// receiver index, and decides which undelivered messages a close cut off.
// Every scenario that checks delivery (chat, smoke, group) counts a close
// through it, so that they all count it alike. Safe for concurrent use;
// it calls out to nothing, so it may be called under another lock.
type closures struct {
	mu         sync.Mutex
	byReceiver map[int]closure
}

func newClosures() *closures {
	return &closures{byReceiver: make(map[int]closure)}
}

// add records that the server closed receiver for reason, seen at at. Only
// a receiver's first close counts; add reports whether this one was it.
func (c *closures) add(receiver int, reason string, at time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byReceiver[receiver]; ok {
		return false
	}
	c.byReceiver[receiver] = closure{reason: reason, closedAt: at}
	return true
}

// has reports whether the server closed receiver.
func (c *closures) has(receiver int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.byReceiver[receiver]
	return ok
}

// cutOff returns the close reason of receiver when a message acked to it
// at ackedAt, undelivered, was cut off by that close: acked after it or
// within closeGrace before it. It is false for a message that is lost.
func (c *closures) cutOff(receiver int, ackedAt time.Time) (reason string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cl, closed := c.byReceiver[receiver]
	if !closed || cl.closedAt.Sub(ackedAt) > closeGrace {
		return "", false
	}
	return cl.reason, true
}

// byReason counts the closes per reason.
func (c *closures) byReason() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int)
	for _, cl := range c.byReceiver {
		out[cl.reason]++
	}
	return out
}

// String names the closes by reason ("2 connections (SLOW_CONSUMER: 2)"),
// or is empty when the server closed none.
func (c *closures) String() string {
	counts := c.byReason()
	if len(counts) == 0 {
		return ""
	}
	n := 0
	var reasons []string
	for _, reason := range slices.Sorted(maps.Keys(counts)) {
		n += counts[reason]
		reasons = append(reasons, fmt.Sprintf("%s: %d", reason, counts[reason]))
	}
	plural := "s"
	if n == 1 {
		plural = ""
	}
	return fmt.Sprintf("%d connection%s (%s)", n, plural, strings.Join(reasons, ", "))
}

// closeMetrics reports the connections the server closed, per reason, the
// acked messages that kept from their receivers (undeliverable, per
// reason), and the sends of closed users that got no ack; none when the
// server closed nothing.
func closeMetrics(c *closures, undeliverable map[string]int, unacked int64) []Metric {
	counts := c.byReason()
	if len(counts) == 0 {
		return nil
	}
	var out []Metric
	for _, reason := range slices.Sorted(maps.Keys(counts)) {
		out = append(out, Metric{Name: "conns closed by server (" + reason + ")",
			Value: float64(counts[reason])},
			Metric{Name: "undeliverable: receiver closed by server (" + reason + ")",
				Value: float64(undeliverable[reason])})
	}
	return append(out, Metric{Name: "not acked: sender closed by server",
		Value: float64(unacked)})
}

func newTracker(receivers int) *tracker {
	t := &tracker{
		expected: make(map[int64]expectation),
		received: make([]map[int64]int, receivers),
		lastSeq:  make([]map[string]int64, receivers),
		closed:   newClosures(),
	}
	for i := range receivers {
		t.received[i] = make(map[int64]int)
		t.lastSeq[i] = make(map[string]int64)
	}
	return t
}

// acked records that msgID was acked at at and is due at receiver to.
func (t *tracker) acked(msgID int64, to int, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expected[msgID] = expectation{to: to, ackedAt: at}
	if !t.closed.has(to) && t.received[to][msgID] == 0 {
		t.missing++
	}
}

// serverClosed records that the server closed the connection of receiver
// for reason, seen at at; no push reaches it after.
func (t *tracker) serverClosed(receiver int, reason string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed.add(receiver, reason, at) {
		return
	}
	for id, e := range t.expected {
		if e.to == receiver && t.received[e.to][id] == 0 {
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
	if e, ok := t.expected[msgID]; ok && e.to == receiver {
		t.missing--
	}
	if seq <= t.lastSeq[receiver][conv] {
		t.reordered++
	}
	t.lastSeq[receiver][conv] = max(seq, t.lastSeq[receiver][conv])
}

// cutOff returns the close reason of e's receiver when e, undelivered, was
// cut off by that close (closures.cutOff); false for a message that is
// lost.
func (t *tracker) cutOff(e expectation) (reason string, ok bool) {
	return t.closed.cutOff(e.to, e.ackedAt)
}

// tally counts the outcome: delivered and lost among acked messages, the
// extra copies of acked messages, and the reorders. An acked message that
// a receiver's close cut off is not lost (see undeliverable); one acked
// more than closeGrace before the close is.
func (t *tracker) tally() (delivered, lost, duplicated, reordered int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, e := range t.expected {
		switch n := t.received[e.to][id]; {
		case n > 0:
			delivered++
			duplicated += n - 1
		default:
			if _, cut := t.cutOff(e); !cut {
				lost++
			}
		}
	}
	return delivered, lost, duplicated, t.reordered
}

// undeliverable counts, per close reason, the acked messages not delivered
// because the server closed their receiver (see cutOff).
func (t *tracker) undeliverable() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]int)
	for id, e := range t.expected {
		if t.received[e.to][id] > 0 {
			continue
		}
		if reason, cut := t.cutOff(e); cut {
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
