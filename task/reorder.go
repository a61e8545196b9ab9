package task

import (
	"cmp"
	"slices"
	"time"
)

// Logic instances publish a message event after their own commit, each
// asynchronously, so two messages of one conversation stored by different
// instances (seq 5, then 6) may reach the stream the other way round. The
// partition keeps stream order, not seq order. A reorderer, one per worker
// (a conversation's events all reach the same worker), repairs the usual
// case: it remembers the last seq pushed per conversation and holds an
// event that is ahead of it until the missing seqs come or Config.
// ReorderWindow passes, whichever is first. A seq that never comes as an
// event (a write that rolled back took none) or comes later than the
// window costs that wait once; clients sync such gaps.
//
// Held events stay in their partition's inflight count and unacked until
// pushed, so a partition is not handed over with held events: its release
// waits at most one window for them. The window is far below AckWait
// (validate), and keepAlive restarts the ack timer of an event that waited.

// Bounds of the per-conversation state of one instance, shared by its
// workers.
const (
	// reorderIdle is how long a conversation's last seq is kept after its
	// last event; the next event after that is taken as first seen.
	reorderIdle = time.Minute
	// reorderMaxConvs caps the conversations remembered by one instance.
	// Forgetting one early only means its next event is not checked.
	reorderMaxConvs = 100_000
)

// convOrder is what a reorderer knows of one conversation.
type convOrder struct {
	// run is the partition run whose events set last: an entry of an
	// earlier run of the partition (released, maybe pushed by another
	// instance since, then taken back) is stale and starts over.
	run  *partRun
	last int64     // the highest seq pushed
	used time.Time // the last event seen
	// held are events ahead of last+1, by seq; deadline is when the first
	// of them must go out.
	held     []job
	deadline time.Time
}

// reorderer puts the events of a worker's conversations back in seq order
// (see above). It belongs to its worker's goroutine.
type reorderer struct {
	window   time.Duration // <= 0: off, events pass as they come
	maxConvs int
	metrics  *metrics

	convs     map[string]*convOrder
	waiting   map[string]*convOrder // the conversations with held events
	next      time.Time             // the earliest deadline; zero when none
	timer     *time.Timer           // armed for next while waiting is not empty
	lastSweep time.Time
}

func newReorderer(window time.Duration, workers int, m *metrics) *reorderer {
	tm := time.NewTimer(time.Hour)
	tm.Stop()
	return &reorderer{
		window: window, maxConvs: max(1, reorderMaxConvs/workers), metrics: m,
		convs: make(map[string]*convOrder), waiting: make(map[string]*convOrder),
		timer: tm, lastSweep: time.Now(),
	}
}

// due returns a channel that fires when held events may have to go out, or
// nil when none are held.
func (r *reorderer) due() <-chan time.Time {
	if len(r.waiting) == 0 {
		return nil
	}
	return r.timer.C
}

// admit takes the next event of the worker's queue and appends to ready
// what may be pushed now, in order: the event itself and the held events it
// made consecutive, or nothing when the event is held.
func (r *reorderer) admit(j job, ready []job, now time.Time) []job {
	if r.window <= 0 || j.ev == nil {
		return append(ready, j)
	}
	seq := j.ev.Message.Seq
	c := r.convs[j.convID()]
	if c == nil || c.run != j.part {
		if c != nil {
			ready = r.flush(j.convID(), c, ready) // none in practice: see the type's doc
		}
		c = r.track(j.convID(), j.part, now)
		c.last = seq // first seen: nothing to compare with
		return append(ready, j)
	}
	c.used = now
	switch {
	case seq <= c.last:
		// A redelivery or a second publish: pushed as before, clients drop
		// what they have; last stays.
		return append(ready, j)
	case seq == c.last+1:
		ready = append(ready, j)
		c.last = seq
		return r.release(j.convID(), c, ready)
	}
	r.hold(j.convID(), c, j, now)
	return ready
}

// track starts remembering conv, first making room when the map is full.
func (r *reorderer) track(conv string, run *partRun, now time.Time) *convOrder {
	if len(r.convs) >= r.maxConvs {
		r.evict(r.maxConvs * 7 / 8)
	}
	c := &convOrder{run: run, used: now}
	r.convs[conv] = c
	return c
}

// hold keeps j aside until its predecessors come or the window passes.
func (r *reorderer) hold(conv string, c *convOrder, j job, now time.Time) {
	seq := j.ev.Message.Seq
	i, _ := slices.BinarySearchFunc(c.held, seq, func(h job, s int64) int {
		return cmp.Compare(h.ev.Message.Seq, s)
	})
	c.held = slices.Insert(c.held, i, j)
	r.metrics.reorderHeld.Inc()
	if len(c.held) > 1 {
		return // the window runs since the first one held
	}
	c.deadline = now.Add(r.window)
	r.waiting[conv] = c
	if r.next.IsZero() || c.deadline.Before(r.next) {
		r.arm(c.deadline, now)
	}
}

// arm sets the earliest deadline and the timer for it; zero stops it. The
// timer is always armed for next, which may be earlier than any deadline
// left (a conversation released before its window ended): expire then finds
// nothing due and arms it again.
func (r *reorderer) arm(next, now time.Time) {
	r.next = next
	if next.IsZero() {
		r.timer.Stop()
		return
	}
	r.timer.Reset(next.Sub(now))
}

// unwait drops conv from the waiting set once it holds nothing.
func (r *reorderer) unwait(conv string, c *convOrder) {
	c.held = nil
	delete(r.waiting, conv)
	if len(r.waiting) == 0 {
		r.arm(time.Time{}, time.Time{})
	}
}

// release appends the held events of c that follow last without a gap.
func (r *reorderer) release(conv string, c *convOrder, ready []job) []job {
	n := 0
	for n < len(c.held) && c.held[n].ev.Message.Seq <= c.last+1 {
		c.last = max(c.last, c.held[n].ev.Message.Seq)
		n++
	}
	if n == 0 {
		return ready
	}
	ready = append(ready, c.held[:n]...)
	c.held = slices.Delete(c.held, 0, n)
	if len(c.held) == 0 {
		r.unwait(conv, c)
	}
	return ready
}

// flush appends every held event of c, in seq order, gaps or not, and
// moves last past them.
func (r *reorderer) flush(conv string, c *convOrder, ready []job) []job {
	if len(c.held) == 0 {
		return ready
	}
	ready = append(ready, c.held...)
	c.last = max(c.last, c.held[len(c.held)-1].ev.Message.Seq)
	r.unwait(conv, c)
	return ready
}

// expire appends the held events whose window has passed by now, and
// forgets idle conversations once in a while. It is cheap when nothing is
// due: the worker calls it between runs.
func (r *reorderer) expire(ready []job, now time.Time) []job {
	if now.Sub(r.lastSweep) >= reorderIdle/2 {
		r.sweep(now)
	}
	if r.next.IsZero() || now.Before(r.next) {
		return ready
	}
	var next time.Time
	for conv, c := range r.waiting {
		if now.Before(c.deadline) {
			if next.IsZero() || c.deadline.Before(next) {
				next = c.deadline
			}
			continue
		}
		r.metrics.reorderExpired.Inc()
		ready = r.flush(conv, c, ready)
	}
	r.arm(next, now)
	return ready
}

// flushAll appends every held event, for a worker whose queue closed.
func (r *reorderer) flushAll(ready []job) []job {
	for conv, c := range r.waiting {
		ready = r.flush(conv, c, ready)
	}
	return ready
}

// sweep forgets the conversations idle for reorderIdle.
func (r *reorderer) sweep(now time.Time) {
	r.lastSweep = now
	for conv, c := range r.convs {
		if len(c.held) == 0 && now.Sub(c.used) >= reorderIdle {
			delete(r.convs, conv)
		}
	}
}

// evict forgets conversations without held events, in map order, until at
// most keep remain or only those with held events do.
func (r *reorderer) evict(keep int) {
	for conv, c := range r.convs {
		if len(r.convs) <= keep {
			return
		}
		if len(c.held) == 0 {
			delete(r.convs, conv)
		}
	}
}
