package client

import "github.com/resonance-im/resonance/kitex_gen/common"

// sequencer puts the messages of each conversation in seq order, once: a
// message with the next seq is accepted, one already accepted is dropped,
// and one after a gap is held until the gap is filled. A conversation whose
// start is not known yet (unplaced) holds every message until place sets
// it. It is not safe for concurrent use; Session guards it.
type sequencer struct {
	convs map[string]*convState
	// origin returns the position of a conversation seen for the first
	// time in message first (nil when no message is at hand), or placed
	// false when the start must be looked up first.
	origin func(convID string, first *common.Message) (seq int64, placed bool)
}

type convState struct {
	// next is the highest seq accepted: every seq up to it was.
	next int64
	// held are messages above next+1, waiting for the gap below them, and
	// every message of an unplaced conversation.
	held     map[int64]*common.Message
	unplaced bool
	// floor is the highest seq skipped while unplaced (a clear before the
	// start was known): place starts no lower.
	floor int64
}

func newSequencer(origin func(string, *common.Message) (int64, bool)) *sequencer {
	return &sequencer{convs: make(map[string]*convState), origin: origin}
}

// state returns the conversation's state, creating it at the origin of m.
func (q *sequencer) state(m *common.Message) *convState {
	st := q.convs[m.ConvId]
	if st == nil {
		next, placed := q.origin(m.ConvId, m)
		st = &convState{next: next, held: make(map[int64]*common.Message), unplaced: !placed}
		q.convs[m.ConvId] = st
	}
	return st
}

// offer takes one message and returns the messages it makes ready, in seq
// order (none when m is a duplicate or arrives after a gap). gap reports
// that messages are held behind a missing seq.
func (q *sequencer) offer(m *common.Message) (ready []*common.Message, gap bool) {
	st := q.state(m)
	if st.unplaced {
		st.held[m.Seq] = m
		return nil, true
	}
	switch {
	case m.Seq <= st.next || st.held[m.Seq] != nil:
		return nil, len(st.held) > 0
	case m.Seq > st.next+1:
		st.held[m.Seq] = m
		return nil, true
	}
	st.next = m.Seq
	return st.release(append(ready, m)), len(st.held) > 0
}

// release appends to ready the held messages that follow next, in order.
func (st *convState) release(ready []*common.Message) []*common.Message {
	for {
		h := st.held[st.next+1]
		if h == nil {
			return ready
		}
		delete(st.held, h.Seq)
		st.next = h.Seq
		ready = append(ready, h)
	}
}

// position returns the highest seq accepted in convID; for a conversation
// not seen yet, its origin, without tracking it (so that track still can).
func (q *sequencer) position(convID string) int64 {
	if st := q.convs[convID]; st != nil {
		return st.next
	}
	seq, _ := q.origin(convID, nil)
	return seq
}

// track sets the position of a conversation not seen yet; it returns false
// and changes nothing when the conversation is already tracked.
func (q *sequencer) track(convID string, seq int64) bool {
	if q.convs[convID] != nil {
		return false
	}
	q.convs[convID] = &convState{next: seq, held: make(map[int64]*common.Message)}
	return true
}

// hold tracks a conversation not seen yet as unplaced: its messages are
// held until place. It returns false and changes nothing when the
// conversation is already tracked.
func (q *sequencer) hold(convID string) bool {
	if q.convs[convID] != nil {
		return false
	}
	q.convs[convID] = &convState{held: make(map[int64]*common.Message), unplaced: true}
	return true
}

// unplaced reports whether convID waits for place.
func (q *sequencer) unplaced(convID string) bool {
	st := q.convs[convID]
	return st != nil && st.unplaced
}

// place sets where an unplaced conversation starts, drops what it held up
// to there and returns the held messages that follow in order. A
// conversation not tracked yet is tracked at start; a placed one is left.
func (q *sequencer) place(convID string, start int64) []*common.Message {
	st := q.convs[convID]
	if st == nil {
		q.track(convID, start)
		return nil
	}
	if !st.unplaced {
		return nil
	}
	st.unplaced = false
	return st.moveTo(max(start, st.floor))
}

// skip moves a placed conversation past seqs up to to, which are not to be
// handed over, drops what it held up to there and returns the held messages
// that follow in order. A conversation not tracked yet is tracked at to.
// An unplaced one drops what it held up to to and remembers to as the
// lowest start place may set, so the skipped seqs stay skipped whichever
// start the listing finds.
func (q *sequencer) skip(convID string, to int64) []*common.Message {
	st := q.convs[convID]
	if st == nil {
		q.track(convID, to)
		return nil
	}
	if st.unplaced {
		st.floor = max(st.floor, to)
		st.dropHeld(to)
		return nil
	}
	if st.next >= to {
		return nil
	}
	return st.moveTo(to)
}

// advance moves convID to at least seq, placing it there when unplaced, and
// returns the held messages that follow in order. A conversation not
// tracked yet is tracked at seq.
func (q *sequencer) advance(convID string, seq int64) []*common.Message {
	if q.unplaced(convID) {
		return q.place(convID, seq)
	}
	return q.skip(convID, seq)
}

// moveTo sets the position to seq, drops the held messages up to it and
// returns those that follow in order.
func (st *convState) moveTo(seq int64) []*common.Message {
	st.next = seq
	st.dropHeld(seq)
	return st.release(nil)
}

// dropHeld forgets the held messages up to seq.
func (st *convState) dropHeld(seq int64) {
	for s := range st.held {
		if s <= seq {
			delete(st.held, s)
		}
	}
}

// gaps lists the conversations holding messages behind a gap or waiting to
// be placed.
func (q *sequencer) gaps() []string {
	var convs []string
	for id, st := range q.convs {
		if len(st.held) > 0 || st.unplaced {
			convs = append(convs, id)
		}
	}
	return convs
}
