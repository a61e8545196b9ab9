package client

import "github.com/resonance-im/resonance/kitex_gen/common"

// sequencer puts the messages of each conversation in seq order, once: a
// message with the next seq is accepted, one already accepted is dropped,
// and one after a gap is held until the gap is filled. It is not safe for
// concurrent use; Session guards it.
type sequencer struct {
	convs map[string]*convState
	// origin returns the position of a conversation seen for the first
	// time, whose first offered message has seq first.
	origin func(convID string, first int64) int64
}

type convState struct {
	// next is the highest seq accepted: every seq up to it was.
	next int64
	// held are messages above next+1, waiting for the gap below them.
	held map[int64]*common.Message
}

func newSequencer(origin func(convID string, first int64) int64) *sequencer {
	return &sequencer{convs: make(map[string]*convState), origin: origin}
}

// state returns the conversation's state, creating it at origin.
func (q *sequencer) state(convID string, first int64) *convState {
	st := q.convs[convID]
	if st == nil {
		st = &convState{next: q.origin(convID, first), held: make(map[int64]*common.Message)}
		q.convs[convID] = st
	}
	return st
}

// offer takes one message and returns the messages it makes ready, in seq
// order (none when m is a duplicate or arrives after a gap). gap reports
// that messages are held behind a missing seq.
func (q *sequencer) offer(m *common.Message) (ready []*common.Message, gap bool) {
	st := q.state(m.ConvId, m.Seq)
	switch {
	case m.Seq <= st.next || st.held[m.Seq] != nil:
		return nil, len(st.held) > 0
	case m.Seq > st.next+1:
		st.held[m.Seq] = m
		return nil, true
	}
	st.next = m.Seq
	ready = append(ready, m)
	for {
		h := st.held[st.next+1]
		if h == nil {
			break
		}
		delete(st.held, h.Seq)
		st.next = h.Seq
		ready = append(ready, h)
	}
	return ready, len(st.held) > 0
}

// position returns the highest seq accepted in convID; for a conversation
// not seen yet, its origin, without tracking it (so that track still can).
func (q *sequencer) position(convID string) int64 {
	if st := q.convs[convID]; st != nil {
		return st.next
	}
	return q.origin(convID, 0)
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

// gaps lists the conversations holding messages behind a gap.
func (q *sequencer) gaps() []string {
	var convs []string
	for id, st := range q.convs {
		if len(st.held) > 0 {
			convs = append(convs, id)
		}
	}
	return convs
}
