package gateway

import "time"

// wheel is a hashed timing wheel of one event loop. It holds every open
// connection of the loop; only that loop's goroutine touches it.
//
// Touching a connection only stores a timestamp (conn.lastActive): the wheel
// never moves a connection on traffic. When a slot comes due, each of its
// connections is checked against its real deadline and either expired or put
// back in the slot of that deadline. This keeps the per-frame cost at one
// store, and the per-connection cost at two pointers and a slot index instead
// of a runtime timer.
type wheel struct {
	slots  []*conn // heads of intrusive doubly linked lists
	tickMs int64
	cursor int64 // the last tick swept; new entries go strictly after it
}

const (
	minTick   = 5 * time.Millisecond
	maxTick   = time.Second
	maxSlots  = 4096
	notQueued = -1
)

// tickFor picks the sweep period: a quarter of the shortest deadline, so a
// connection is closed at most a quarter late.
func tickFor(cfg Config) time.Duration {
	tick := min(cfg.LoginTimeout, cfg.HeartbeatTimeout) / 4
	return min(max(tick, minTick), maxTick)
}

func newWheel(cfg Config, nowMs int64) *wheel {
	tick := tickFor(cfg)
	span := max(cfg.LoginTimeout, cfg.HeartbeatTimeout)
	n := min(int(span/tick)+2, maxSlots)
	tickMs := tick.Milliseconds()
	return &wheel{slots: make([]*conn, n), tickMs: tickMs, cursor: nowMs / tickMs}
}

// add files c under its deadline, in Unix-independent gateway milliseconds.
func (w *wheel) add(c *conn, deadlineMs int64) {
	t := max(deadlineMs/w.tickMs, w.cursor+1)
	slot := int32(t % int64(len(w.slots)))
	c.wheelSlot = slot
	c.wheelPrev = nil
	c.wheelNext = w.slots[slot]
	if c.wheelNext != nil {
		c.wheelNext.wheelPrev = c
	}
	w.slots[slot] = c
}

// remove takes c out of the wheel; it is a no-op if c is not in it.
func (w *wheel) remove(c *conn) {
	if c.wheelSlot == notQueued {
		return
	}
	if c.wheelPrev != nil {
		c.wheelPrev.wheelNext = c.wheelNext
	} else {
		w.slots[c.wheelSlot] = c.wheelNext
	}
	if c.wheelNext != nil {
		c.wheelNext.wheelPrev = c.wheelPrev
	}
	c.wheelPrev, c.wheelNext, c.wheelSlot = nil, nil, notQueued
}

// sweep visits every slot due by nowMs. For each connection in them, due
// returns its deadline; a connection whose deadline has passed is handed to
// expire (which must remove it or close it), the others are filed again.
func (w *wheel) sweep(nowMs int64, due func(*conn) int64, expire func(*conn)) {
	nowTick := nowMs / w.tickMs
	// After a stall longer than a revolution, one pass over every slot is
	// enough: entries are re-filed by their real deadlines.
	first := max(w.cursor+1, nowTick-int64(len(w.slots))+1)
	for t := first; t <= nowTick; t++ {
		w.cursor = t
		slot := t % int64(len(w.slots))
		head := w.slots[slot]
		w.slots[slot] = nil
		for c := head; c != nil; {
			next := c.wheelNext
			c.wheelPrev, c.wheelNext, c.wheelSlot = nil, nil, notQueued
			if dl := due(c); dl <= nowMs {
				expire(c)
			} else {
				w.add(c, dl)
			}
			c = next
		}
	}
	w.cursor = max(w.cursor, nowTick)
}

// each calls fn for every connection in the wheel. fn must not change the
// wheel; collect first if it closes connections.
func (w *wheel) each(fn func(*conn)) {
	for _, head := range w.slots {
		for c := head; c != nil; c = c.wheelNext {
			fn(c)
		}
	}
}
