package clienttest

import (
	"fmt"
	"slices"
	"time"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// group is the state of a group conversation: its name, the roles of its
// active members and the members who left. Of docs/protocol.md's rules the
// fake keeps those a client sees: only members act, only the owner hands
// the group over, the owner cannot leave until the group is dismissed, a
// dismissed group takes nothing but LEAVE, and one who left keeps reading
// the history up to their leaving.
type group struct {
	name  string
	owner int64
	// dismissedSeq is the seq of the DISMISS event; 0 while not dismissed.
	dismissedSeq int64
	roles        map[int64]common.GroupRole
	// left is the seq of each former member's LEAVE event.
	left map[int64]int64
}

// handleGroupOps serves CREATE_GROUP, MANAGE_GROUP and GET_GROUP.
func (s *Server) handleGroupOps(c *conn, op protocol.Op, body []byte) (codec.Body, error) {
	switch op {
	case protocol.Op_CREATE_GROUP:
		req := protocol.NewCreateGroupReq()
		return readThen(body, req, func() (codec.Body, error) {
			return s.once(c, req.ClientMsgId, func() (codec.Body, error) {
				return s.createGroup(c, req)
			})
		})
	case protocol.Op_MANAGE_GROUP:
		req := protocol.NewManageGroupReq()
		return readThen(body, req, func() (codec.Body, error) {
			return s.once(c, req.ClientMsgId, func() (codec.Body, error) {
				return s.manageGroup(c, req)
			})
		})
	case protocol.Op_GET_GROUP:
		req := protocol.NewGetGroupReq()
		return readThen(body, req, func() (codec.Body, error) { return s.getGroup(c, req) })
	}
	return s.handleAccountOps(c, op, body)
}

// once runs a group change of c's user unless one with clientMsgID ran
// before, whose ack it returns instead, as the server: a retry whose
// answer was lost gets the change made, not a second one.
func (s *Server) once(c *conn, clientMsgID string,
	change func() (codec.Body, error)) (codec.Body, error) {
	key := deviceKey(c.userID, clientMsgID)
	if ack := s.groupAcks[key]; ack != nil {
		return ack, nil
	}
	resp, err := change()
	if ack, ok := resp.(*protocol.GroupChangeResp); ok && err == nil && clientMsgID != "" {
		s.groupAcks[key] = ack
	}
	return resp, err
}

func (s *Server) createGroup(c *conn, req *protocol.CreateGroupReq) (codec.Body, error) {
	if req.Name == "" {
		return nil, fail(common.ErrorCode_BAD_REQUEST, "name required")
	}
	for _, id := range req.MemberIds {
		if s.usersByID[id] == nil {
			return nil, fail(common.ErrorCode_NOT_FOUND, fmt.Sprintf("no user %d", id))
		}
	}
	s.nextGroup++
	cv := &conv{
		id: fmt.Sprintf("g:%d", s.nextGroup),
		group: &group{name: req.Name, owner: c.userID,
			roles: make(map[int64]common.GroupRole), left: make(map[int64]int64)},
		acks:      make(map[string]*protocol.SendResp),
		readSeq:   make(map[int64]int64),
		delivered: make(map[string]int64),
	}
	cv.group.roles[c.userID] = common.GroupRole_OWNER
	for _, id := range req.MemberIds {
		cv.group.roles[id] = common.GroupRole_MEMBER
	}
	s.convs[cv.id] = cv
	ev := &common.GroupEvent{Action: common.GroupAction_CREATE, Targets: req.MemberIds,
		Name: req.Name}
	return s.storeGroupEvent(c, cv, ev), nil
}

func (s *Server) manageGroup(c *conn, req *protocol.ManageGroupReq) (codec.Body, error) {
	cv := s.convs[req.ConvId]
	if cv == nil || cv.group == nil || !cv.has(c.userID) {
		return nil, fail(common.ErrorCode_FORBIDDEN, "not a member")
	}
	g := cv.group
	if g.dismissedSeq > 0 && req.Action != common.GroupAction_LEAVE {
		return nil, fail(common.ErrorCode_FORBIDDEN, "the group was dismissed")
	}
	ev := &common.GroupEvent{Action: req.Action, Targets: req.UserIds, Name: req.Name,
		Role: req.Role}
	switch {
	case req.Action == common.GroupAction_SET_ROLE && req.Role == common.GroupRole_OWNER:
		if g.owner != c.userID {
			return nil, fail(common.ErrorCode_FORBIDDEN, "only the owner hands the group over")
		}
		if len(req.UserIds) != 1 || req.UserIds[0] == c.userID || !cv.has(req.UserIds[0]) {
			return nil, fail(common.ErrorCode_BAD_REQUEST, "one other member required")
		}
		g.owner = req.UserIds[0]
		g.roles[g.owner], g.roles[c.userID] = common.GroupRole_OWNER, common.GroupRole_ADMIN
	case req.Action == common.GroupAction_LEAVE:
		// As logic: a dismissed group has nothing to hand over, so its
		// owner may leave it too, to drop it from their list.
		if g.owner == c.userID && g.dismissedSeq == 0 {
			return nil, fail(common.ErrorCode_FORBIDDEN, "the owner cannot leave")
		}
		// Stored while still a member, so that the leaver's other
		// devices get the event too, the last one they may read.
		resp := s.storeGroupEvent(c, cv, ev)
		delete(g.roles, c.userID)
		g.left[c.userID] = resp.Seq
		return resp, nil
	case req.Action == common.GroupAction_REMOVE:
		return s.removeMembers(c, cv, ev)
	case req.Action == common.GroupAction_DISMISS:
		// The members stay, as the server keeps them.
		if g.owner != c.userID {
			return nil, fail(common.ErrorCode_FORBIDDEN, "only the owner dismisses")
		}
		g.dismissedSeq = int64(len(cv.msgs) + 1) // the event stored next
	default:
		return nil, fail(common.ErrorCode_UNSUPPORTED, fmt.Sprintf("fake: %s", req.Action))
	}
	return s.storeGroupEvent(c, cv, ev), nil
}

// removeMembers removes ev's targets from cv as logic does: only a member
// of a higher role removes one, and everyone named must be a member. The
// event is stored while they still are, so that they get it too, the last
// one they may read.
func (s *Server) removeMembers(c *conn, cv *conv, ev *common.GroupEvent) (codec.Body, error) {
	g := cv.group
	for _, id := range ev.Targets {
		role, ok := g.roles[id]
		switch {
		case !ok:
			return nil, fail(common.ErrorCode_BAD_REQUEST, fmt.Sprintf("user %d is not a member", id))
		case role >= g.roles[c.userID]:
			return nil, fail(common.ErrorCode_FORBIDDEN, "may not remove a peer or a superior")
		}
	}
	resp := s.storeGroupEvent(c, cv, ev)
	for _, id := range ev.Targets {
		delete(g.roles, id)
		g.left[id] = resp.Seq
	}
	return resp, nil
}

// storeGroupEvent stores ev as the next message of cv, sent by c's user,
// and pushes it to every other connection of its members.
func (s *Server) storeGroupEvent(c *conn, cv *conv, ev *common.GroupEvent) *protocol.GroupChangeResp {
	content := make([]byte, ev.BLength())
	ev.FastWriteNocopy(content, nil)
	s.nextMsgID++
	m := &common.Message{
		MsgId: s.nextMsgID, ConvId: cv.id, Seq: int64(len(cv.msgs) + 1), SenderId: c.userID,
		ContentType: common.ContentType_GROUP_EVENT, Content: content,
		SendTimeMs: time.Now().UnixMilli(), SenderDevice: c.device,
	}
	cv.msgs = append(cv.msgs, m)
	s.touch(cv)
	frame := codec.EncodeFrame(protocol.Op_PUSH, 0, 0, &protocol.PushMsg{Message: m})
	for other := range s.conns {
		if other != c && cv.has(other.userID) {
			other.enqueue(frame)
		}
	}
	return &protocol.GroupChangeResp{ConvId: cv.id, MsgId: m.MsgId, Seq: m.Seq,
		SendTimeMs: m.SendTimeMs}
}

func (s *Server) getGroup(c *conn, req *protocol.GetGroupReq) (codec.Body, error) {
	cv := s.convs[req.ConvId]
	if cv == nil || cv.group == nil || !cv.has(c.userID) {
		return nil, fail(common.ErrorCode_FORBIDDEN, "not a member")
	}
	g := cv.group
	info := &protocol.GroupInfo{ConvId: cv.id, Name: g.name, OwnerId: g.owner,
		LastSeq: int64(len(cv.msgs)), Dismissed: g.dismissedSeq > 0}
	for id, role := range g.roles {
		info.Members = append(info.Members, &protocol.GroupMember{UserId: id, Role: role})
	}
	slices.SortFunc(info.Members, func(a, b *protocol.GroupMember) int {
		return int(a.UserId - b.UserId)
	})
	return info, nil
}

// GroupOwner is the owner of the group convID, 0 when there is none.
func (s *Server) GroupOwner(convID string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cv := s.convs[convID]; cv != nil && cv.group != nil {
		return cv.group.owner
	}
	return 0
}

// dismissedFor reports whether g was dismissed while user was a member, as
// logic fills ConvSummary.dismissed: one who left before the DISMISS is
// not told of it.
func (g *group) dismissedFor(user int64) bool {
	left := g.left[user]
	return g.dismissedSeq > 0 && (left == 0 || left > g.dismissedSeq)
}
