package logic

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Push token limits: APNs device tokens are 64 hex characters and FCM
// registration tokens about 160; relays may use longer opaque ones.
const (
	maxPushToken = 512
	maxPushAppID = 128
	// maxOfflineRecipients bounds one OfflineTargets request; a message
	// event never names more recipients than a conversation has members.
	maxOfflineRecipients = 10000
)

// pushTokenRow is the offline-push token of one device of a user. A device
// has at most one; registering again replaces it, and logout or sign-out
// deletes it (see removePushTokens).
type pushTokenRow struct {
	UserID    int64  `gorm:"primaryKey;autoIncrement:false"`
	DeviceID  string `gorm:"primaryKey;size:64"`
	Platform  int16  `gorm:"not null"`
	Token     string `gorm:"size:512;not null"`
	AppID     string `gorm:"size:128;not null;default:''"`
	UpdatedMs int64  `gorm:"not null"` // Unix milliseconds
}

// TableName names the table through the namer so that TablePrefix applies.
func (pushTokenRow) TableName(n schema.Namer) string { return n.TableName("push_token") }

// SetPushToken sets the offline-push token of the session's device,
// replacing the one it had; an empty token removes it.
func (s *Service) SetPushToken(ctx context.Context, session *logicrpc.Session,
	req *protocol.SetPushTokenReq) (*protocol.SetPushTokenResp, error) {
	if err := s.authorizeWrite(ctx, "set_push_token", session); err != nil {
		return nil, err
	}
	if req == nil {
		req = &protocol.SetPushTokenReq{} // a missing body reads as empty: remove
	}
	var err error
	if req.Token == "" {
		err = s.removePushTokens(ctx, session.UserId, session.DeviceId)
	} else if err = validPushToken(req); err == nil {
		err = s.savePushToken(ctx, session, req)
	}
	if err != nil {
		return nil, s.fail("set_push_token", err, sessionIDs(session))
	}
	return &protocol.SetPushTokenResp{}, nil
}

// validPushToken checks a token being registered.
func validPushToken(req *protocol.SetPushTokenReq) error {
	switch {
	case req.Platform != protocol.PushPlatform_APNS && req.Platform != protocol.PushPlatform_FCM &&
		req.Platform != protocol.PushPlatform_OTHER:
		return fmt.Errorf("%w: unknown push platform %d", ErrBadRequest, req.Platform)
	case len(req.Token) > maxPushToken:
		return fmt.Errorf("%w: push token over %d bytes", ErrTooLarge, maxPushToken)
	case len(req.AppId) > maxPushAppID:
		return fmt.Errorf("%w: app_id over %d bytes", ErrTooLarge, maxPushAppID)
	}
	if err := validText("token", req.Token); err != nil {
		return err
	}
	return validText("app_id", req.AppId)
}

// pushTokenIndexes are created by migrate with the others (tableIndexes):
// registering a token looks it up under other devices.
var pushTokenIndexes = []tableIndex{
	{model: &pushTokenRow{}, suffix: "_token", columns: []string{"token"}},
}

// savePushToken upserts the token of the session's device. The same token
// registered by another user or device is deleted first: a phone that
// switched accounts without logging out must stop getting the old
// account's notifications.
func (s *Service) savePushToken(ctx context.Context, session *logicrpc.Session,
	req *protocol.SetPushTokenReq) error {
	row := pushTokenRow{UserID: session.UserId, DeviceID: session.DeviceId,
		Platform: int16(req.Platform), Token: req.Token, AppID: req.AppId,
		UpdatedMs: s.now().UnixMilli()}
	err := s.dbc(ctx).Transaction(func(tx *gorm.DB) error {
		err := tx.Where("token = ? AND platform = ? AND app_id = ?",
			row.Token, row.Platform, row.AppID).
			Where("NOT (user_id = ? AND device_id = ?)", row.UserID, row.DeviceID).
			Delete(&pushTokenRow{}).Error
		if err != nil {
			return err
		}
		return tx.Clauses(clause.OnConflict{
			Columns: []clause.Column{{Name: "user_id"}, {Name: "device_id"}},
			DoUpdates: clause.AssignmentColumns(
				[]string{"platform", "token", "app_id", "updated_ms"}),
		}).Create(&row).Error
	})
	if err != nil {
		return fmt.Errorf("save push token user=%d device=%q: %w",
			session.UserId, session.DeviceId, err)
	}
	return nil
}

// removePushTokens deletes the push token of the user's device, or of all
// its devices when device is empty. It runs wherever tokens are revoked
// (logout, sign-out, password change), so a signed-out phone is not woken
// for messages it can no longer read.
func (s *Service) removePushTokens(ctx context.Context, user int64, device string) error {
	q := s.dbc(ctx).Where("user_id = ?", user)
	if device != "" {
		q = q.Where("device_id = ?", device)
	}
	if err := q.Delete(&pushTokenRow{}).Error; err != nil {
		return fmt.Errorf("remove push tokens user=%d device=%q: %w", user, device, err)
	}
	return nil
}

// OfflineTargets answers task: the devices of req's recipients, the sender
// left out, that have a push token and are not among req.Online, each with
// the user's badge, whether the conversation is muted or the user in
// do-not-disturb at req.AtMs, and whether req.Mentioned names the user.
// Four queries whatever the recipient count.
func (s *Service) OfflineTargets(ctx context.Context,
	req *logicrpc.OfflineTargetsReq) (*logicrpc.OfflineTargetsResp, error) {
	logIDs := func(e *zerolog.Event) *zerolog.Event {
		return e.Str("conv", req.GetConvId()).Int64("sender", req.GetSenderId())
	}
	if req == nil || len(req.Recipients) > maxOfflineRecipients ||
		len(req.Mentioned) > maxOfflineRecipients {
		err := fmt.Errorf("%w: missing request or over %d recipients",
			ErrBadRequest, maxOfflineRecipients)
		return nil, s.fail("offline_targets", err, logIDs)
	}
	users := make([]int64, 0, len(req.Recipients))
	for _, u := range req.Recipients {
		if u != req.SenderId {
			users = append(users, u)
		}
	}
	targets, err := s.offlineTargets(ctx, req, users)
	var name string
	if err == nil && len(targets) > 0 {
		name, err = s.displayName(ctx, req.SenderId)
	}
	if err != nil {
		return nil, s.fail("offline_targets", err, logIDs)
	}
	return &logicrpc.OfflineTargetsResp{Targets: targets, SenderName: name}, nil
}

// displayName is what a notification calls a user: the nickname, or the
// username without one; empty for an unknown user.
func (s *Service) displayName(ctx context.Context, user int64) (string, error) {
	u, err := s.findUser(ctx, "", user)
	if err != nil || u == nil {
		return "", err
	}
	if u.Nickname != "" {
		return u.Nickname, nil
	}
	return u.Username, nil
}

// offlineTargets is OfflineTargets after validation, for users.
func (s *Service) offlineTargets(ctx context.Context, req *logicrpc.OfflineTargetsReq,
	users []int64) ([]*logicrpc.OfflineTarget, error) {
	if len(users) == 0 {
		return nil, nil
	}
	tokens, err := s.pushTokens(ctx, users, req.Online)
	if err != nil || len(tokens) == 0 {
		return nil, err
	}
	withToken := make([]int64, 0, len(tokens))
	seen := make(map[int64]bool, len(tokens))
	for _, t := range tokens {
		if !seen[t.UserID] {
			seen[t.UserID] = true
			withToken = append(withToken, t.UserID)
		}
	}
	badges, err := s.unreadTotals(ctx, withToken)
	if err != nil {
		return nil, err
	}
	muted, err := s.mutedUsers(ctx, req.ConvId, withToken)
	if err != nil {
		return nil, err
	}
	dnd, err := s.dndUsers(ctx, withToken, time.UnixMilli(req.AtMs))
	if err != nil {
		return nil, err
	}
	mentioned := make(map[int64]bool, len(req.Mentioned))
	for _, u := range req.Mentioned {
		mentioned[u] = true
	}
	out := make([]*logicrpc.OfflineTarget, len(tokens))
	for i, t := range tokens {
		out[i] = &logicrpc.OfflineTarget{UserId: t.UserID, DeviceId: t.DeviceID,
			Platform: protocol.PushPlatform(t.Platform), Token: t.Token, AppId: t.AppID,
			Badge: int32(min(badges[t.UserID], 1<<31-1)), Muted: muted[t.UserID],
			Dnd: dnd[t.UserID], Mentioned: mentioned[t.UserID]}
	}
	return out, nil
}

// pushTokens returns the push tokens of users' devices that are not online.
func (s *Service) pushTokens(ctx context.Context, users []int64,
	online []*logicrpc.DeviceRef) ([]pushTokenRow, error) {
	var rows []pushTokenRow
	err := s.dbc(ctx).Where("user_id IN ?", users).Order("user_id, device_id").
		Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("push tokens (%d users): %w", len(users), err)
	}
	type device struct {
		user int64
		id   string
	}
	live := make(map[device]bool, len(online))
	for _, d := range online {
		if d != nil {
			live[device{d.UserId, d.DeviceId}] = true
		}
	}
	out := rows[:0]
	for _, r := range rows {
		if !live[device{r.UserID, r.DeviceID}] {
			out = append(out, r)
		}
	}
	return out, nil
}

// unreadTotals returns each user's unread messages over all conversations,
// the badge of a notification: the sum of what SyncConvs reports as unread,
// the messages stored after the later of the read and cleared positions up
// to the last seq (or the leaving, for a former member), REACTION events
// left out. One query for all users.
//
// TODO: this sums every membership of each user per message, so a message
// to a big group with many offline devices costs a scan per member; an
// unread counter per user, kept by send and mark-read, would make it one
// read.
func (s *Service) unreadTotals(ctx context.Context, users []int64) (map[int64]int64, error) {
	var rows []struct {
		UserID int64
		Unread int64
	}
	ranges := s.dbc(ctx).Table(s.tables.member+" AS m").
		Select("m.user_id, m.conv_id, "+unreadFromExpr+" AS from_seq, "+
			unreadToExpr+" AS to_seq").
		Joins("JOIN "+s.tables.conv+" AS c ON c.id = m.conv_id").
		Where("m.user_id IN ?", users)
	perConv := s.dbc(ctx).Table("(?) AS u", ranges).
		Select("u.user_id, CASE WHEN u.to_seq > u.from_seq THEN "+
			"(SELECT COUNT(*) FROM "+s.tables.message+" AS r WHERE r.conv_id = u.conv_id "+
			"AND r.content_type <> ? AND r.seq > u.from_seq AND r.seq <= u.to_seq) "+
			"ELSE 0 END AS unread", int16(common.ContentType_REACTION))
	err := s.dbc(ctx).Table("(?) AS p", perConv).
		Select("p.user_id, SUM(p.unread) AS unread").Group("p.user_id").Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("unread totals (%d users): %w", len(users), err)
	}
	out := make(map[int64]int64, len(rows))
	for _, r := range rows {
		out[r.UserID] = r.Unread
	}
	return out, nil
}

// unreadFromExpr and unreadToExpr bound a member's unread range as
// SyncConvs does (summaries and capLeft): after the later of the read and
// cleared positions, up to the leaving of a former member or else the last
// seq.
const (
	unreadFromExpr = "(CASE WHEN m.cleared_seq > m.read_seq THEN m.cleared_seq " +
		"ELSE m.read_seq END)"
	unreadToExpr = "(CASE WHEN m.left_seq > 0 AND m.left_seq < c.last_seq THEN m.left_seq " +
		"ELSE c.last_seq END)"
)

// removeOtherPushTokens deletes, on db, the push tokens of all the user's
// devices but keep, as a password change signs them out.
func removeOtherPushTokens(db *gorm.DB, user int64, keep string) error {
	err := db.Where("user_id = ? AND device_id <> ?", user, keep).
		Delete(&pushTokenRow{}).Error
	if err != nil {
		return fmt.Errorf("remove push tokens user=%d except %q: %w", user, keep, err)
	}
	return nil
}
