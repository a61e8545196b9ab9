package clienttest

import (
	"fmt"
	"slices"
	"time"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// pin serves PIN as the server does for what a client sees: a PIN event
// stored and pushed to the other connections of the members, the
// conversation's pins (as SYNC_CONVS returns them) updated, and a pin
// already in the state asked answered duplicate with no event. Of the
// server's rules it keeps who may pin (in a group the owner and admins)
// and what; of its limits, none.
func (s *Server) pin(c *conn, req *protocol.PinReq) (codec.Body, error) {
	cv := s.convs[req.ConvId]
	if cv == nil || !cv.has(c.userID) {
		return nil, fail(common.ErrorCode_FORBIDDEN, "not a member")
	}
	if ack := cv.acks[fmt.Sprintf("%d/%s", c.userID, req.ClientMsgId)]; ack != nil {
		dup := *ack
		dup.Duplicate = true
		return &dup, nil
	}
	if req.Seq <= 0 || req.Seq > int64(len(cv.msgs)) {
		return nil, fail(common.ErrorCode_NOT_FOUND, "message")
	}
	target := cv.msgs[req.Seq-1]
	switch {
	case !pinnable(target.ContentType):
		return nil, fail(common.ErrorCode_BAD_REQUEST, "only a text, binary or file message may change")
	case target.Recalled:
		return nil, fail(common.ErrorCode_FORBIDDEN, "the message was recalled")
	case cv.group != nil && cv.group.roles[c.userID] == common.GroupRole_MEMBER:
		return nil, fail(common.ErrorCode_FORBIDDEN, "only the group's owner and admins may pin")
	}
	pinned := slices.Contains(cv.pins, req.Seq)
	if pinned != req.Unpin {
		return &protocol.SendResp{ConvId: cv.id, SendTimeMs: time.Now().UnixMilli(),
			Duplicate: true}, nil
	}
	if req.Unpin {
		cv.pins = slices.DeleteFunc(cv.pins, func(seq int64) bool { return seq == req.Seq })
	} else {
		cv.pins = append([]int64{req.Seq}, cv.pins...)
	}
	ev := &common.PinEvent{Seq: req.Seq, MsgId: target.MsgId, Unpinned: req.Unpin}
	return s.storeEvent(c, cv, req.ClientMsgId, common.ContentType_PIN, ev), nil
}

// pinnable reports whether a message of type ct may be pinned: what users
// send, not an event.
func pinnable(ct common.ContentType) bool {
	return ct == common.ContentType_TEXT || ct == common.ContentType_BINARY ||
		ct == common.ContentType_FILE
}
