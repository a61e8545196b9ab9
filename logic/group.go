package logic

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// maxGroupTargets bounds the users one group request names.
const maxGroupTargets = 100

// Who may do what in a group; logic enforces it under the group's row lock
// (manageApply), and docs/protocol.md publishes the same table.
//
//	action                     owner  admin  member
//	ADD members                yes    yes    no
//	REMOVE a member            yes    yes    no
//	REMOVE an admin            yes    no     no
//	REMOVE the owner           no     no     no
//	LEAVE                      no(1)  yes    yes
//	RENAME                     yes    yes    no
//	SET_ROLE admin or member   yes    no     no
//	SET_ROLE owner (transfer)  yes    no     no
//	DISMISS                    yes    no     no
//
// (1) The owner hands ownership over (SET_ROLE OWNER) or dismisses first.
//
// A dismissed group takes LEAVE from every member, the owner included, and
// no other action from anyone.
func mayManage(actor common.GroupRole, action common.GroupAction) bool {
	switch action {
	case common.GroupAction_ADD, common.GroupAction_REMOVE, common.GroupAction_RENAME:
		return actor >= common.GroupRole_ADMIN
	case common.GroupAction_SET_ROLE, common.GroupAction_DISMISS:
		return actor == common.GroupRole_OWNER
	case common.GroupAction_LEAVE:
		return actor != common.GroupRole_OWNER
	}
	return false
}

// CreateGroup creates a group owned by the session's user with the listed
// members, and stores its CREATE event as seq 1. client_msg_id makes it
// idempotent: a retry returns the first group with duplicate set.
func (s *Service) CreateGroup(ctx context.Context, session *logicrpc.Session,
	req *protocol.CreateGroupReq) (*protocol.GroupChangeResp, error) {
	if err := s.authorizeWrite(ctx, "create_group", session); err != nil {
		return nil, err
	}
	if req == nil {
		req = &protocol.CreateGroupReq{} // a missing body reads as empty
	}
	logIDs := func(e *zerolog.Event) *zerolog.Event {
		return e.Int64("user", session.UserId).Str("client_msg", req.GetClientMsgId())
	}
	resp, err := s.createGroup(ctx, session, req)
	if err != nil {
		return nil, s.fail("create_group", err, logIDs)
	}
	return resp, nil
}

func (s *Service) createGroup(ctx context.Context, session *logicrpc.Session,
	req *protocol.CreateGroupReq) (*protocol.GroupChangeResp, error) {
	if req == nil {
		return nil, fmt.Errorf("%w: empty request", ErrBadRequest)
	}
	if err := checkClientMsgID(req.ClientMsgId); err != nil {
		return nil, err
	}
	if err := checkGroupName(req.Name); err != nil {
		return nil, err
	}
	// The list as sent, before uniqueIDs sorts it: a caller of the RPC, which
	// the frame limit does not bound, must not make the server sort any
	// length it likes. The owner named in it still fits.
	if len(req.MemberIds) > s.cfg.MaxGroupMembers {
		return nil, fmt.Errorf("%w: a group holds at most %d members", ErrTooLarge,
			s.cfg.MaxGroupMembers)
	}
	owner := session.UserId
	members := uniqueIDs(req.MemberIds, owner)
	if len(members)+1 > s.cfg.MaxGroupMembers {
		return nil, fmt.Errorf("%w: a group holds at most %d members", ErrTooLarge,
			s.cfg.MaxGroupMembers)
	}
	if m, err := s.findByClientID(ctx, owner, req.ClientMsgId); m != nil || err != nil {
		return groupChangeResp(m, true), err
	}
	// The owner too: a connection its account's deletion has not closed
	// yet must not create a group that deleted user would own.
	if err := s.usersExist(ctx, append([]int64{owner}, members...)); err != nil {
		return nil, err
	}
	if err := refuseBlockers(s.rdc(ctx), owner, members); err != nil {
		return nil, err
	}
	convID := newGroupID()
	ev := &common.GroupEvent{Action: common.GroupAction_CREATE, Targets: members, Name: req.Name}
	m := s.newEventMessage(session, convID, req.ClientMsgId, common.ContentType_GROUP_EVENT, ev)
	create := func(tx *gorm.DB) error {
		ms := m.CreatedAt.UnixMilli()
		row := convRow{ID: convID, Type: int16(common.ConvType_GROUP), Name: req.Name,
			OwnerID: owner, MemberCount: int32(len(members) + 1), MemberVer: 1,
			UpdatedMs: ms, UpdatedAt: m.CreatedAt}
		if err := tx.Create(&row).Error; err != nil {
			return err
		}
		rows := make([]memberRow, 0, len(members)+1)
		rows = append(rows, memberRow{ConvID: convID, UserID: owner, JoinedMs: ms,
			Role: int16(common.GroupRole_OWNER), JoinSeq: 1, ChangedMs: ms})
		for _, id := range members {
			rows = append(rows, memberRow{ConvID: convID, UserID: id, JoinedMs: ms,
				Role: int16(common.GroupRole_MEMBER), JoinSeq: 1, ChangedMs: ms})
		}
		return tx.Create(&rows).Error
	}
	apply := func(tx *gorm.DB, _ *convRow, _ *messageRow) ([]int64, error) {
		users := append([]int64{owner}, members...)
		if err := s.usersLive(tx, users); err != nil {
			return nil, err
		}
		return users, nil
	}
	return s.storeGroupChange(ctx, seqWrite{m: m, origin: session, create: create, apply: apply,
		alone: true})
}

// ManageGroup applies one change to a group (see mayManage for who may) and
// stores it as a GROUP_EVENT in the group's history, sent to the members and
// to whoever the change removed.
func (s *Service) ManageGroup(ctx context.Context, session *logicrpc.Session,
	req *protocol.ManageGroupReq) (*protocol.GroupChangeResp, error) {
	if err := s.authorizeWrite(ctx, "manage_group", session); err != nil {
		return nil, err
	}
	if req == nil {
		req = &protocol.ManageGroupReq{} // a missing body reads as empty
	}
	logIDs := func(e *zerolog.Event) *zerolog.Event {
		return e.Int64("user", session.UserId).Str("conv", req.GetConvId()).
			Stringer("action", req.GetAction()).Str("client_msg", req.GetClientMsgId())
	}
	resp, err := s.manageGroup(ctx, session, req)
	if err != nil {
		return nil, s.fail("manage_group", err, logIDs)
	}
	return resp, nil
}

func (s *Service) manageGroup(ctx context.Context, session *logicrpc.Session,
	req *protocol.ManageGroupReq) (*protocol.GroupChangeResp, error) {
	ev, err := s.checkManage(session.UserId, req)
	if err != nil {
		return nil, err
	}
	if m, err := s.findByClientID(ctx, session.UserId, req.ClientMsgId); m != nil || err != nil {
		return groupChangeResp(m, true), err
	}
	if req.Action == common.GroupAction_ADD {
		if err := s.usersExist(ctx, ev.Targets); err != nil {
			return nil, err
		}
	}
	m := s.newEventMessage(session, req.ConvId, req.ClientMsgId, common.ContentType_GROUP_EVENT, ev)
	apply := func(tx *gorm.DB, c *convRow, m *messageRow) ([]int64, error) {
		return s.manageApply(tx, c, m, ev)
	}
	return s.storeGroupChange(ctx, seqWrite{m: m, origin: session, apply: apply, alone: true})
}

// checkManage validates req without the database and returns the event it
// would record.
func (s *Service) checkManage(actor int64, req *protocol.ManageGroupReq) (*common.GroupEvent, error) {
	if req == nil {
		return nil, fmt.Errorf("%w: empty request", ErrBadRequest)
	}
	if err := checkClientMsgID(req.ClientMsgId); err != nil {
		return nil, err
	}
	if !isGroupID(req.ConvId) {
		return nil, fmt.Errorf("%w: not a group", ErrBadRequest)
	}
	// Before uniqueIDs sorts the list, as in createGroup.
	if len(req.UserIds) > maxGroupTargets {
		return nil, fmt.Errorf("%w: at most %d users per request", ErrTooLarge, maxGroupTargets)
	}
	ev := &common.GroupEvent{Action: req.Action}
	switch req.Action {
	case common.GroupAction_ADD, common.GroupAction_REMOVE:
		ev.Targets = uniqueIDs(req.UserIds, actor)
		if len(ev.Targets) == 0 {
			return nil, fmt.Errorf("%w: user_ids names no one but you", ErrBadRequest)
		}
	case common.GroupAction_SET_ROLE:
		ev.Targets, ev.Role = uniqueIDs(req.UserIds, actor), req.Role
		switch {
		case len(ev.Targets) == 0:
			return nil, fmt.Errorf("%w: user_ids names no one but you", ErrBadRequest)
		case req.Role == common.GroupRole_OWNER && len(ev.Targets) != 1:
			return nil, fmt.Errorf("%w: ownership goes to exactly one user", ErrBadRequest)
		case req.Role < common.GroupRole_MEMBER || req.Role > common.GroupRole_OWNER:
			return nil, fmt.Errorf("%w: unknown role", ErrBadRequest)
		}
	case common.GroupAction_RENAME:
		if err := checkGroupName(req.Name); err != nil {
			return nil, err
		}
		ev.Name = req.Name
	case common.GroupAction_LEAVE, common.GroupAction_DISMISS:
	default:
		return nil, fmt.Errorf("%w: unknown group action", ErrBadRequest)
	}
	return ev, nil
}

// manageApply runs under the group's row lock: it checks the actor's role
// and the targets against the committed membership, writes the change, and
// returns the event's recipients: the members after the change and anyone
// it removed.
func (s *Service) manageApply(tx *gorm.DB, c *convRow, m *messageRow,
	ev *common.GroupEvent) ([]int64, error) {
	if c.Type != int16(common.ConvType_GROUP) {
		return nil, fmt.Errorf("%w: not a group", ErrBadRequest)
	}
	if c.Dismissed && ev.Action != common.GroupAction_LEAVE {
		return nil, fmt.Errorf("%w: the group was dismissed", ErrForbidden)
	}
	rows, err := loadMembers(tx, c.ID)
	if err != nil {
		return nil, err
	}
	roles := make(map[int64]common.GroupRole, len(rows))
	for _, r := range rows {
		roles[r.UserID] = common.GroupRole(r.Role)
	}
	actor := m.SenderID
	actorRole, ok := roles[actor]
	if !ok {
		return nil, fmt.Errorf("%w: not a member of the conversation", ErrForbidden)
	}
	// A dismissed group gets here only with a LEAVE, which every member may
	// do, the owner too: there is no group left to hand over, and leaving is
	// how a client drops it from the user's list.
	if !c.Dismissed && !mayManage(actorRole, ev.Action) {
		if ev.Action == common.GroupAction_LEAVE {
			return nil, fmt.Errorf("%w: the owner hands ownership over or dismisses the group",
				ErrForbidden)
		}
		return nil, fmt.Errorf("%w: a %s may not %s", ErrForbidden, lower(actorRole), lower(ev.Action))
	}
	if ev.Action == common.GroupAction_ADD {
		if err := s.usersLive(tx, ev.Targets); err != nil {
			return nil, err
		}
	}
	ch := groupChange{tx: tx, c: c, m: m, roles: roles, conv: map[string]any{}}
	if err := ch.apply(ev, s.cfg.MaxGroupMembers); err != nil {
		return nil, err
	}
	if err := ch.save(); err != nil {
		return nil, err
	}
	if m.Content, err = encodeStruct(ev); err != nil {
		return nil, err
	}
	recipients := make([]int64, 0, len(roles)+len(ch.gone))
	for id := range roles {
		recipients = append(recipients, id)
	}
	recipients = append(recipients, ch.gone...)
	slices.Sort(recipients)
	return recipients, nil
}

// groupChange is one group change being applied under the row lock.
type groupChange struct {
	tx    *gorm.DB
	c     *convRow
	m     *messageRow
	roles map[int64]common.GroupRole // active members; updated as applied
	gone  []int64                    // members the change removed
	conv  map[string]any             // columns of the group row to update
}

func (ch *groupChange) apply(ev *common.GroupEvent, maxMembers int) error {
	actor, seq := ch.m.SenderID, ch.m.Seq
	switch ev.Action {
	case common.GroupAction_ADD:
		// Members already in are passed over, not refused: two admins
		// adding the same people at once both succeed, and the event
		// names only those it added.
		ev.Targets = slices.DeleteFunc(ev.Targets, func(id int64) bool {
			_, member := ch.roles[id]
			return member
		})
		if len(ev.Targets) == 0 {
			return fmt.Errorf("%w: already members", ErrBadRequest)
		}
		if err := refuseBlockers(ch.tx, actor, ev.Targets); err != nil {
			return err
		}
		if len(ch.roles)+len(ev.Targets) > maxMembers {
			return fmt.Errorf("%w: a group holds at most %d members", ErrTooLarge, maxMembers)
		}
		for _, id := range ev.Targets {
			ch.roles[id] = common.GroupRole_MEMBER
		}
		return ch.join(ev.Targets, seq)
	case common.GroupAction_REMOVE:
		for _, id := range ev.Targets {
			role, ok := ch.roles[id]
			switch {
			case !ok:
				return fmt.Errorf("%w: user %d is not a member", ErrBadRequest, id)
			case role >= ch.roles[actor]:
				return fmt.Errorf("%w: a %s may not remove a %s", ErrForbidden, lower(ch.roles[actor]),
					lower(role))
			}
		}
		return ch.leave(ev.Targets, seq)
	case common.GroupAction_LEAVE:
		return ch.leave([]int64{actor}, seq)
	case common.GroupAction_RENAME:
		ch.conv["name"] = ev.Name
	case common.GroupAction_SET_ROLE:
		return ch.setRole(ev)
	case common.GroupAction_DISMISS:
		ch.conv["dismissed"], ch.conv["dismissed_seq"] = true, seq
	}
	return nil
}

func (ch *groupChange) setRole(ev *common.GroupEvent) error {
	for _, id := range ev.Targets {
		if _, ok := ch.roles[id]; !ok {
			return fmt.Errorf("%w: user %d is not a member", ErrBadRequest, id)
		}
	}
	if ev.Role == common.GroupRole_OWNER {
		// The one target becomes owner and the old owner an admin.
		actor, target := ch.m.SenderID, ev.Targets[0]
		ch.roles[actor], ch.roles[target] = common.GroupRole_ADMIN, common.GroupRole_OWNER
		ch.conv["owner_id"] = target
		if err := ch.updateRoles([]int64{actor}, common.GroupRole_ADMIN); err != nil {
			return err
		}
		return ch.updateRoles([]int64{target}, common.GroupRole_OWNER)
	}
	for _, id := range ev.Targets {
		ch.roles[id] = ev.Role
	}
	return ch.updateRoles(ev.Targets, ev.Role)
}

func (ch *groupChange) updateRoles(ids []int64, role common.GroupRole) error {
	return ch.tx.Model(&memberRow{}).Where("conv_id = ? AND user_id IN ?", ch.c.ID, ids).
		Update("role", int16(role)).Error
}

// join adds users as members from seq on; a user who was a member before
// gets the same row back, readable from the new seq only.
func (ch *groupChange) join(ids []int64, seq int64) error {
	ms := ch.m.CreatedAt.UnixMilli()
	rows := make([]memberRow, len(ids))
	for i, id := range ids {
		rows[i] = memberRow{ConvID: ch.c.ID, UserID: id, JoinedMs: ms,
			Role: int16(common.GroupRole_MEMBER), JoinSeq: seq, ReadSeq: seq - 1, ChangedMs: ms}
	}
	ch.conv["member_ver"] = gorm.Expr("member_ver + 1")
	return ch.tx.Clauses(clause.OnConflict{
		Columns: []clause.Column{{Name: "conv_id"}, {Name: "user_id"}},
		DoUpdates: clause.AssignmentColumns([]string{"joined_ms", "role", "join_seq",
			"read_seq", "changed_ms", "left_seq"}),
	}).Create(&rows).Error
}

// leave ends the membership of ids at seq, the event that ends it.
func (ch *groupChange) leave(ids []int64, seq int64) error {
	for _, id := range ids {
		delete(ch.roles, id)
	}
	ch.gone = append(ch.gone, ids...)
	ch.conv["member_ver"] = gorm.Expr("member_ver + 1")
	return ch.tx.Model(&memberRow{}).Where("conv_id = ? AND user_id IN ?", ch.c.ID, ids).
		Updates(map[string]any{"left_seq": seq, "changed_ms": ch.m.CreatedAt.UnixMilli()}).Error
}

// save writes the group row's changed columns and its member count.
func (ch *groupChange) save() error {
	ch.conv["member_count"] = len(ch.roles)
	return ch.tx.Model(&convRow{}).Where("id = ?", ch.c.ID).Updates(ch.conv).Error
}

// storeGroupChange stores a group event and answers with its ack; a
// concurrent retry that stored it first is answered with that one.
func (s *Service) storeGroupChange(ctx context.Context, w seqWrite) (*protocol.GroupChangeResp, error) {
	_, err := s.storeMessage(ctx, w)
	if errors.Is(err, errDuplicate) {
		m, ferr := s.findByClientID(ctx, w.m.SenderID, w.m.ClientMsgID)
		if ferr == nil && m == nil {
			ferr = fmt.Errorf("message sender=%d client=%q: duplicate but not found",
				w.m.SenderID, w.m.ClientMsgID)
		}
		return groupChangeResp(m, true), ferr
	}
	if err != nil {
		return nil, err
	}
	return groupChangeResp(w.m, false), nil
}

func groupChangeResp(m *messageRow, duplicate bool) *protocol.GroupChangeResp {
	if m == nil {
		return nil
	}
	return &protocol.GroupChangeResp{ConvId: m.ConvID, MsgId: m.ID, Seq: m.Seq,
		SendTimeMs: m.CreatedAt.UnixMilli(), Duplicate: duplicate}
}

// GetGroup returns a group's name, owner and active members to an active
// member.
func (s *Service) GetGroup(ctx context.Context, session *logicrpc.Session,
	req *protocol.GetGroupReq) (*protocol.GroupInfo, error) {
	if err := s.authorizeRead(ctx, "get_group", session); err != nil {
		return nil, err
	}
	if req == nil {
		req = &protocol.GetGroupReq{} // a missing body reads as empty
	}
	logIDs := func(e *zerolog.Event) *zerolog.Event {
		return e.Int64("user", session.UserId).Str("conv", req.GetConvId())
	}
	info, err := s.getGroup(ctx, session.UserId, req.GetConvId())
	if err != nil {
		return nil, s.fail("get_group", err, logIDs)
	}
	return info, nil
}

func (s *Service) getGroup(ctx context.Context, user int64, convID string) (*protocol.GroupInfo, error) {
	if !isGroupID(convID) {
		return nil, fmt.Errorf("%w: not a group", ErrBadRequest)
	}
	var c convRow
	res := s.rdc(ctx).Where("id = ?", convID).Limit(1).Find(&c)
	if res.Error != nil {
		return nil, fmt.Errorf("group %s: %w", convID, res.Error)
	}
	rows, err := loadMembers(s.rdc(ctx), convID)
	if err != nil {
		return nil, err
	}
	info := &protocol.GroupInfo{ConvId: c.ID, Name: c.Name, OwnerId: c.OwnerID,
		Dismissed: c.Dismissed, LastSeq: c.LastSeq, MaxMembers: int32(s.cfg.MaxGroupMembers),
		Members: make([]*protocol.GroupMember, len(rows))}
	member := false
	for i, r := range rows {
		member = member || r.UserID == user
		info.Members[i] = &protocol.GroupMember{UserId: r.UserID,
			Role: common.GroupRole(r.Role), JoinedMs: r.JoinedMs}
	}
	if res.RowsAffected == 0 || !member {
		return nil, fmt.Errorf("%w: not a member of the conversation", ErrForbidden)
	}
	return info, nil
}

// newEventMessage returns the message recording an event by session's user;
// the seq transaction sets its seq and time, and apply may replace content.
func (s *Service) newEventMessage(session *logicrpc.Session, convID, clientMsgID string,
	ct common.ContentType, body interface {
		BLength() int
		FastWrite([]byte) int
	}) *messageRow {
	content, _ := encodeStruct(body)
	return &messageRow{ConvID: convID, SenderID: session.UserId,
		SenderDevice: session.DeviceId, ClientMsgID: clientMsgID, ContentType: int16(ct),
		Content: content, CreatedAt: s.now().UTC().Truncate(time.Millisecond)}
}

// encodeStruct returns the Thrift binary encoding of v.
func encodeStruct(v interface {
	BLength() int
	FastWrite([]byte) int
}) ([]byte, error) {
	buf := make([]byte, v.BLength())
	if n := v.FastWrite(buf); n != len(buf) {
		return nil, fmt.Errorf("encode %T: wrote %d of %d bytes", v, n, len(buf))
	}
	return buf, nil
}

// usersExist fails with NOT_FOUND unless every id is a user whose account
// was not deleted.
func (s *Service) usersExist(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	var n int64
	if err := s.rdc(ctx).Model(&userRow{}).Where("id IN ? AND deleted_ms = 0", ids).Count(&n).Error; err != nil {
		return fmt.Errorf("users exist (%d ids): %w", len(ids), err)
	}
	if n != int64(len(ids)) {
		return fmt.Errorf("%w: user", ErrNotFound)
	}
	return nil
}

// usersLive is usersExist again inside a group change's transaction, just
// before it stores the members: usersExist reads before it, so an account
// deletion could commit in between, and commit its second pass over the
// user's groups before this group's rows exist, leaving a deleted user a
// member. On MySQL the users' rows are read under a shared lock, in id
// order, which reads the newest commit and holds off a deletion until this
// transaction ends (its second pass then finds the membership); the
// deletion's transaction locks no conversation or member row, so the two
// cannot deadlock. On SQLite the transaction already holds the write lock
// (the seq's UPDATE or the group's INSERT came first), so the read is of
// the newest commit and no deletion commits before this one.
func (s *Service) usersLive(tx *gorm.DB, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	query := "SELECT id FROM " + tx.Statement.Quote(s.tables.user) +
		" WHERE id IN ? AND deleted_ms = 0 ORDER BY id"
	if tx.Dialector.Name() == DriverMySQL {
		query += " LOCK IN SHARE MODE" // MariaDB has no FOR SHARE; MySQL takes both
	}
	var live []int64
	if err := tx.Raw(query, ids).Scan(&live).Error; err != nil {
		return fmt.Errorf("users live (%d ids): %w", len(ids), err)
	}
	if len(live) != len(ids) {
		return fmt.Errorf("%w: user", ErrNotFound)
	}
	return nil
}

// uniqueIDs returns ids without duplicates, zeros, negatives and self, in
// ascending order.
func uniqueIDs(ids []int64, self int64) []int64 {
	out := slices.DeleteFunc(slices.Clone(ids), func(id int64) bool { return id <= 0 || id == self })
	slices.Sort(out)
	return slices.Compact(out)
}

func checkClientMsgID(id string) error {
	if id == "" || len(id) > maxClientMsgID || !utf8.ValidString(id) {
		return fmt.Errorf("%w: client_msg_id must be 1-%d bytes of UTF-8", ErrBadRequest, maxClientMsgID)
	}
	return nil
}

func checkGroupName(name string) error {
	n := utf8.RuneCountInString(name)
	if !utf8.ValidString(name) || n == 0 || n > maxGroupName || len(name) > 4*maxGroupName {
		return fmt.Errorf("%w: group name must be 1-%d characters", ErrBadRequest, maxGroupName)
	}
	// Shown in every member's list and in logs, as a nickname is.
	return validText("name", name)
}

func lower(v fmt.Stringer) string { return strings.ToLower(v.String()) }
