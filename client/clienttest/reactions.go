package clienttest

import (
	"fmt"
	"slices"
	"time"

	"github.com/cloudwego/gopkg/protocol/thrift"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// react serves REACT as the server does for what a client sees: a REACTION
// event stored and pushed to the other connections of the members, the
// message's reactions (as SYNC returns them) updated, and a reaction the
// user has (or, removed, lacks) answered duplicate with no event. Of the
// server's limits it keeps none but who may react and to what.
func (s *Server) react(c *conn, req *protocol.ReactReq) (codec.Body, error) {
	cv := s.convs[req.ConvId]
	if cv == nil || !cv.has(c.userID) {
		return nil, fail(common.ErrorCode_FORBIDDEN, "not a member")
	}
	key := fmt.Sprintf("%d/%s", c.userID, req.ClientMsgId)
	if ack := cv.acks[key]; ack != nil {
		dup := *ack
		dup.Duplicate = true
		return &dup, nil
	}
	if req.Seq <= 0 || req.Seq > int64(len(cv.msgs)) {
		return nil, fail(common.ErrorCode_NOT_FOUND, "message")
	}
	target := cv.msgs[req.Seq-1]
	switch {
	case req.Emoji == "":
		return nil, fail(common.ErrorCode_BAD_REQUEST, "empty emoji")
	case target.ContentType != common.ContentType_TEXT &&
		target.ContentType != common.ContentType_BINARY:
		return nil, fail(common.ErrorCode_BAD_REQUEST, "only a text or binary message may change")
	case target.Recalled:
		return nil, fail(common.ErrorCode_FORBIDDEN, "the message was recalled")
	}
	reactions, changed := withReaction(target.Reactions, req.Emoji, c.userID, req.Remove)
	if !changed {
		return &protocol.SendResp{ConvId: cv.id, SendTimeMs: time.Now().UnixMilli(),
			Duplicate: true}, nil
	}
	// A copy in place of the target: a reply being encoded may hold it.
	updated := *target
	updated.Reactions = reactions
	cv.msgs[req.Seq-1] = &updated

	ev := &common.ReactionEvent{Seq: req.Seq, MsgId: target.MsgId, Emoji: req.Emoji,
		Removed: req.Remove}
	return s.storeEvent(c, cv, req.ClientMsgId, common.ContentType_REACTION, ev), nil
}

// storeEvent stores an event message of c's user in cv, keeps its ack for
// a retry of clientMsgID, and pushes it to the members' other connections.
func (s *Server) storeEvent(c *conn, cv *conv, clientMsgID string, ct common.ContentType,
	ev interface {
		BLength() int
		FastWriteNocopy([]byte, thrift.NocopyWriter) int
	}) *protocol.SendResp {
	content := make([]byte, ev.BLength())
	ev.FastWriteNocopy(content, nil)
	s.nextMsgID++
	m := &common.Message{
		MsgId: s.nextMsgID, ConvId: cv.id, Seq: int64(len(cv.msgs) + 1), SenderId: c.userID,
		ClientMsgId: clientMsgID, ContentType: ct,
		Content: content, SendTimeMs: time.Now().UnixMilli(), SenderDevice: c.device,
	}
	cv.msgs = append(cv.msgs, m)
	ack := &protocol.SendResp{MsgId: m.MsgId, ConvId: cv.id, Seq: m.Seq, SendTimeMs: m.SendTimeMs}
	cv.acks[fmt.Sprintf("%d/%s", c.userID, clientMsgID)] = ack
	s.touch(cv)
	frame := codec.EncodeFrame(protocol.Op_PUSH, 0, 0, &protocol.PushMsg{Message: m})
	for other := range s.conns {
		if other != c && cv.has(other.userID) {
			other.enqueue(frame)
		}
	}
	return ack
}

// withReaction returns a new list of reactions: rs with user's emoji added
// or removed, and whether that changed anything.
func withReaction(rs []*common.Reaction, emoji string, user int64,
	remove bool) ([]*common.Reaction, bool) {
	out := make([]*common.Reaction, 0, len(rs)+1)
	changed := false
	found := false
	for _, r := range rs {
		if r.Emoji != emoji {
			out = append(out, r)
			continue
		}
		found = true
		has := slices.Contains(r.UserIds, user)
		switch {
		case remove && has:
			changed = true
			if r.Count > 1 {
				out = append(out, &common.Reaction{Emoji: emoji, Count: r.Count - 1,
					UserIds: slices.DeleteFunc(slices.Clone(r.UserIds),
						func(id int64) bool { return id == user })})
			}
		case !remove && !has:
			changed = true
			out = append(out, &common.Reaction{Emoji: emoji, Count: r.Count + 1,
				UserIds: append(slices.Clone(r.UserIds), user)})
		default:
			out = append(out, r)
		}
	}
	if !found && !remove {
		changed = true
		out = append(out, &common.Reaction{Emoji: emoji, Count: 1, UserIds: []int64{user}})
	}
	if len(out) == 0 {
		out = nil
	}
	return out, changed
}
