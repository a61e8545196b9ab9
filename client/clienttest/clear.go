package clienttest

import (
	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// clearState is one user's CLEAR_CONV state of a conversation: SYNC returns
// nothing at or below cleared; hidden, when not 0, is the cleared seq of a
// hide, which holds until a later message.
type clearState struct {
	cleared, hidden int64
}

// clearConv clears cv's history up to the request's seq (0: the last one)
// for the user, as the real server does: only forward, capped at what the
// user may read, the read position moved with it.
func (s *Server) clearConv(c *conn, req *protocol.ClearConvReq) (codec.Body, error) {
	last, ok := s.readable(c.userID, req.ConvId)
	if !ok {
		return nil, fail(common.ErrorCode_FORBIDDEN, "not a member")
	}
	if req.UpToSeq < 0 {
		return nil, fail(common.ErrorCode_BAD_REQUEST, "negative up_to_seq")
	}
	cv := s.convs[req.ConvId]
	if cv == nil {
		return &protocol.ClearConvResp{}, nil
	}
	target := last
	if req.UpToSeq > 0 {
		target = min(req.UpToSeq, last)
	}
	if cv.clears == nil {
		cv.clears = make(map[int64]clearState)
	}
	st := cv.clears[c.userID]
	st.cleared = max(st.cleared, target)
	st.hidden = 0
	if req.Hide {
		st.hidden = st.cleared
	}
	cv.clears[c.userID] = st
	cv.readSeq[c.userID] = max(cv.readSeq[c.userID], st.cleared)
	s.touch(cv)
	s.notifyClearedLocked(c, cv)
	return &protocol.ClearConvResp{ClearedSeq: st.cleared}, nil
}

// notifyClearedLocked tells the user's other connections of the clear at
// once, as the real server's NOTIFY cleared does.
func (s *Server) notifyClearedLocked(from *conn, cv *conv) {
	n := &protocol.Notify{Cleared: &protocol.ConvCleared{ConvId: cv.id,
		ClearedSeq: cv.clears[from.userID].cleared, Hidden: s.hiddenFor(from.userID, cv)}}
	frame := codec.EncodeFrame(protocol.Op_NOTIFY, 0, 0, n)
	for c := range s.conns {
		if c != from && c.userID == from.userID {
			c.enqueue(frame)
		}
	}
}

// hiddenFor reports whether user hid cv and nothing newer came since.
func (s *Server) hiddenFor(user int64, cv *conv) bool {
	st := cv.clears[user]
	if st.hidden == 0 {
		return false
	}
	last, _ := s.readable(user, cv.id)
	return last <= st.hidden
}
