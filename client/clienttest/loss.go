package clienttest

import (
	"fmt"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// loss is what becomes of a request whose connection a test drops.
type loss int

const (
	lossNone    loss = iota
	lossRequest      // dropped unhandled
	lossReply        // handled, the reply never sent
)

// LoseRequests makes the next n requests of op end their connection, with
// no CLOSE, once read and before they are handled: the server does not act
// on them.
func (s *Server) LoseRequests(op protocol.Op, n int) { s.setLoss(s.lostRequests, op, n) }

// LoseReplies makes the next n requests of op be handled, and then end
// their connection, with no CLOSE, instead of being answered: the server
// acts on them and the client never learns it. A client cannot tell these
// from LoseRequests.
func (s *Server) LoseReplies(op protocol.Op, n int) { s.setLoss(s.lostReplies, op, n) }

func (s *Server) setLoss(counts map[protocol.Op]int, op protocol.Op, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	counts[op] = n
}

// takeLoss returns what becomes of a request of op just read, and counts
// it.
func (s *Server) takeLoss(op protocol.Op) loss {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.lostRequests[op] > 0:
		s.lostRequests[op]--
		return lossRequest
	case s.lostReplies[op] > 0:
		s.lostReplies[op]--
		return lossReply
	}
	return lossNone
}

// lose drops c after its request h, handled first when l is lossReply.
func (s *Server) lose(l loss, c *conn, h codec.Header, body []byte) {
	if l == lossReply {
		_, _ = s.handle(c, h.Op, body)
	}
	c.close()
}

// refusal is the code the next n requests of an op are refused with.
type refusal struct {
	code common.ErrorCode
	n    int
}

// Refuse makes the next n requests of op that are answered fail with code,
// unhandled, as a loaded server refuses them (BUSY, UNAVAILABLE) or a spent
// budget (RATE_LIMITED). Requests lost (LoseRequests, LoseReplies) do not
// count: a retry of a lost one is what a test means to refuse.
func (s *Server) Refuse(op protocol.Op, code common.ErrorCode, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refusals[op] = refusal{code: code, n: n}
}

// refusal returns the error to refuse a request of op with, nil when it is
// to be handled, and counts it.
func (s *Server) refusal(op protocol.Op) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.refusals[op]
	if r.n <= 0 {
		return nil
	}
	r.n--
	s.refusals[op] = r
	return fail(r.code, fmt.Sprintf("op %s refused by test", op))
}
