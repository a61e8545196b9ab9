package logic

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"gorm.io/gorm"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// accountDeletedMessage is the text of the CLOSE frame a deleted account's
// connections get.
const accountDeletedMessage = "account deleted"

// deletedNamePrefix starts the username a deleted account's row keeps. '#'
// is no username character (validateUsername), so the name never collides
// with one registered later, and no lookup by name or search reaches it.
const deletedNamePrefix = "deleted#"

// handOverTries bounds the attempts to pass a group's ownership on: each
// fails only when the chosen successor left the group meanwhile.
const handOverTries = 3

// DeleteAccount deletes the session's account once its password is proved
// again (INVALID_CREDENTIALS otherwise, counted against the same limits as
// a password login, so a stolen access token is no way to guess it).
//
// The user leaves every group first, each as a group event through the
// group code path (an owned group is handed over, or dismissed when the
// user is alone in it); then one transaction tombstones the user's row and
// drops its devices' tokens, push tokens, settings, mutes and blocks; then
// the user's other connections are closed with ACCOUNT_DELETED (the gateway
// closes the session's own after the ack). Every step is idempotent: a
// retry after a failure, which the password still allows until the
// tombstone commits, finishes the work.
func (s *Service) DeleteAccount(ctx context.Context, session *logicrpc.Session,
	req *protocol.DeleteAccountReq) (*protocol.DeleteAccountResp, error) {
	if !authenticated(session) {
		return nil, s.fail("delete_account", ErrUnauthenticated, nil)
	}
	if req == nil {
		req = &protocol.DeleteAccountReq{} // a missing body reads as empty
	}
	if err := s.deleteAccount(ctx, session, req.GetPassword()); err != nil {
		if errors.Is(err, errAccountGone) {
			// This connection outlived the deletion (its answer was lost
			// on the way): close it too, with no answer to wait for.
			s.closeConns(ctx, connsToClose{user: session.UserId,
				reason:  protocol.CloseReason_ACCOUNT_DELETED,
				message: accountDeletedMessage})
		}
		return nil, s.fail("delete_account", err, sessionIDs(session))
	}
	s.closeConns(ctx, connsToClose{user: session.UserId, keep: ownConn(session),
		reason: protocol.CloseReason_ACCOUNT_DELETED, message: accountDeletedMessage})
	s.log.Info().Int64("user", session.UserId).Str("device", session.DeviceId).
		Msg("account deleted")
	return &protocol.DeleteAccountResp{}, nil
}

// deleteAccount is DeleteAccount up to the closing of connections.
func (s *Service) deleteAccount(ctx context.Context, session *logicrpc.Session,
	password string) error {
	user := session.UserId
	u, err := s.findUser(ctx, "", user)
	if err == nil && (u == nil || u.DeletedMs != 0 && u.PasswordHash == "") {
		// Deleted by an earlier call whose answer was lost: its tokens are
		// revoked, so this session is one the closing missed. (A deletion
		// begun but not finished keeps the password, which goes on.)
		err = fmt.Errorf("%w: user %d", errAccountGone, user)
	}
	if err == nil {
		// After the check above: a deletion revokes every device, and the
		// session it missed is told the account is gone, not signed out.
		err = s.checkGeneration(ctx, session)
	}
	if err != nil {
		return err
	}
	if err := s.limits.allowPassword(u.Username, session.RemoteAddr); err != nil {
		return err
	}
	if _, err := s.authPassword(ctx, u.Username, password); err != nil {
		return err
	}
	if err := s.beginDeletion(ctx, user); err != nil {
		return err
	}
	if err := s.leaveGroups(ctx, session); err != nil {
		return err
	}
	if err := s.dbc(ctx).Transaction(func(tx *gorm.DB) error {
		return tombstoneUser(tx, user, s.now().UnixMilli())
	}); err != nil {
		return err
	}
	// Again, for a group that added the user between the first pass and
	// the tombstone; adds that commit after it are refused (usersLive, in
	// the add's own transaction).
	if err := s.leaveGroups(ctx, session); err != nil {
		s.failLog.Warn().Err(err).Int64("user", user).
			Msg("deleted account left in a group added to during its deletion")
	}
	if err := s.eph.watches.SetWatched(ctx, user, nil); err != nil {
		// The watch set expires with the user's last route.
		s.failLog.Warn().Err(err).Int64("user", user).Msg("deleted account's watches not dropped")
	}
	return nil
}

// beginDeletion marks user deleted before its groups are left: from then
// on the others see a deleted account (GET_USER, search, sends and adds
// refused), so a member who looks the user up on its LEAVE event is not
// told the live profile; a password login is refused. The password stays
// until the tombstone, so that a retry after a failure here proves it
// again and finishes.
func (s *Service) beginDeletion(ctx context.Context, user int64) error {
	err := s.dbc(ctx).Model(&userRow{}).Where("id = ? AND deleted_ms = 0", user).
		Update("deleted_ms", s.now().UnixMilli()).Error
	if err != nil {
		return fmt.Errorf("begin deletion of user=%d: %w", user, err)
	}
	return nil
}

// tombstoneUser deletes user on tx: the row keeps its id, which messages
// name, with the profile and password cleared and the username released;
// the devices' tokens are revoked and the user's push tokens, settings,
// mutes and blocks, either way, removed. Run again, it changes nothing.
func tombstoneUser(tx *gorm.DB, user, nowMs int64) error {
	// The devices' rows before the user's, in the order a password login
	// locks them (see setPassword).
	if _, err := revokeDevicesIn(tx, user, ""); err != nil {
		return err
	}
	res := tx.Model(&userRow{}).Where("id = ? AND password_hash <> ''", user).Updates(map[string]any{
		"deleted_ms":    gorm.Expr("CASE WHEN deleted_ms = 0 THEN ? ELSE deleted_ms END", nowMs),
		"username":      deletedNamePrefix + strconv.FormatInt(user, 10),
		"password_hash": "", "nickname": "", "avatar_url": "",
	})
	if res.Error != nil {
		return fmt.Errorf("tombstone user=%d: %w", user, res.Error)
	}
	steps := []struct {
		what  string
		model any
		where string
		args  []any
	}{
		{"push tokens", &pushTokenRow{}, "user_id = ?", []any{user}},
		{"settings", &settingsRow{}, "user_id = ?", []any{user}},
		{"mutes", &muteRow{}, "user_id = ?", []any{user}},
		{"blocks", &blockRow{}, "blocker_id = ? OR blocked_id = ?", []any{user, user}},
	}
	for _, st := range steps {
		if err := tx.Where(st.where, st.args...).Delete(st.model).Error; err != nil {
			return fmt.Errorf("delete %s of user=%d: %w", st.what, user, err)
		}
	}
	return nil
}

// leaveGroups ends each of the session user's group memberships with a
// group event of the user's, as a client's MANAGE_GROUP would: a LEAVE,
// after a SET_ROLE handing an owned group to its earliest-joined admin, or
// earliest-joined member, or after a DISMISS when no one else is in it.
// Each event's client_msg_id names the group and the membership's join seq,
// so a retry answers duplicate for what is done and does the rest.
//
// TODO: one group at a time, each its own transaction: a user in hundreds
// of groups may outlast the gateway's call timeout; the client then learns
// the outcome is unknown, and a retry finishes the rest.
func (s *Service) leaveGroups(ctx context.Context, session *logicrpc.Session) error {
	var rows []memberRow
	err := s.dbc(ctx).Where("user_id = ? AND left_seq = 0", session.UserId).Find(&rows).Error
	if err != nil {
		return fmt.Errorf("groups of user=%d: %w", session.UserId, err)
	}
	for _, r := range rows {
		if !isGroupID(r.ConvID) {
			continue
		}
		if err := s.leaveGroup(ctx, session, r); err != nil {
			return fmt.Errorf("user=%d leaving conv=%s: %w", session.UserId, r.ConvID, err)
		}
	}
	return nil
}

// leaveGroup ends the membership r of the session's user.
func (s *Service) leaveGroup(ctx context.Context, session *logicrpc.Session, r memberRow) error {
	idFor := func(step string) string {
		return "account-delete:" + step + ":" + r.ConvID + ":" + strconv.FormatInt(r.JoinSeq, 10)
	}
	owner := common.GroupRole(r.Role) == common.GroupRole_OWNER
	var err error
	for range handOverTries {
		if owner {
			if err = s.handOver(ctx, session, r.ConvID, idFor); err != nil {
				return err
			}
		}
		_, err = s.manageGroup(ctx, session, &protocol.ManageGroupReq{ConvId: r.ConvID,
			Action: common.GroupAction_LEAVE, ClientMsgId: idFor("leave")})
		if !errors.Is(err, ErrForbidden) {
			return err
		}
		// Refused: the user is no member any more (removed, or left by
		// another device deleting the account at once), which is done, or
		// the owner, made so since r was read: hand over and leave again.
		now, found, serr := s.memberState(ctx, r.ConvID, session.UserId)
		if serr != nil {
			return serr
		}
		if !found || now.LeftSeq > 0 {
			return nil
		}
		owner = true
	}
	return err
}

// handOver passes the ownership of group convID on to the successor (see
// leaveGroups), or dismisses the group when the owner is alone in it.
func (s *Service) handOver(ctx context.Context, session *logicrpc.Session, convID string,
	idFor func(step string) string) error {
	var err error
	for range handOverTries {
		var c convRow
		if err = s.dbc(ctx).Where("id = ?", convID).Take(&c).Error; err != nil {
			return fmt.Errorf("group %s: %w", convID, err)
		}
		if c.Dismissed {
			return nil // a dismissed group takes the owner's LEAVE
		}
		var members []memberRow
		if members, err = loadMembers(s.dbc(ctx), convID); err != nil {
			return err
		}
		if !owns(members, session.UserId) {
			// Handed over already, by another device deleting the account
			// at once, or no member any more: the LEAVE tells which.
			return nil
		}
		next, ok := successor(members, session.UserId)
		req := &protocol.ManageGroupReq{ConvId: convID, Action: common.GroupAction_DISMISS,
			ClientMsgId: idFor("dismiss")}
		if ok {
			req = &protocol.ManageGroupReq{ConvId: convID, Action: common.GroupAction_SET_ROLE,
				UserIds: []int64{next}, Role: common.GroupRole_OWNER, ClientMsgId: idFor("owner")}
		}
		_, err = s.manageGroup(ctx, session, req)
		// A successor who left meanwhile is no member, and a hand-over by
		// another device made the user an admin, who may not SET_ROLE:
		// look again.
		if !errors.Is(err, ErrBadRequest) && !errors.Is(err, ErrForbidden) {
			return err
		}
	}
	return err
}

// owns reports whether user is the owner among members.
func owns(members []memberRow, user int64) bool {
	i := slices.IndexFunc(members, func(m memberRow) bool { return m.UserID == user })
	return i >= 0 && common.GroupRole(members[i].Role) == common.GroupRole_OWNER
}

// successor returns who inherits a group from owner among its active
// members: the earliest-joined admin, else the earliest-joined member;
// ok is false when the owner is alone.
func successor(members []memberRow, owner int64) (next int64, ok bool) {
	members = slices.DeleteFunc(slices.Clone(members), func(m memberRow) bool {
		return m.UserID == owner
	})
	if len(members) == 0 {
		return 0, false
	}
	best := slices.MinFunc(members, func(a, b memberRow) int {
		// Admins first (a higher role sorts earlier), then by join time,
		// then by join seq and id for ties within a millisecond.
		return cmp.Or(cmp.Compare(b.Role, a.Role), cmp.Compare(a.JoinedMs, b.JoinedMs),
			cmp.Compare(a.JoinSeq, b.JoinSeq), cmp.Compare(a.UserID, b.UserID))
	})
	return best.UserID, true
}
