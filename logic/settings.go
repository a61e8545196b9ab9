package logic

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"

	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Do-not-disturb bounds: minutes of a day, and UTC offsets of real zones.
const (
	minutesPerDay = 24 * 60
	maxUTCOffset  = 14 * 60
)

// muteRow says a user muted a conversation: no offline notifications for
// it on any of the user's devices. Unmuting deletes the row.
type muteRow struct {
	UserID  int64  `gorm:"primaryKey;autoIncrement:false"`
	ConvID  string `gorm:"primaryKey;size:64"`
	MutedMs int64  `gorm:"not null"` // Unix milliseconds
}

// TableName names the table through the namer so that TablePrefix applies.
func (muteRow) TableName(n schema.Namer) string { return n.TableName("conv_mute") }

// settingsRow holds a user's do-not-disturb window: minutes after midnight
// in the user's zone, UTCOffset minutes east of UTC. Start == End is off;
// Start > End spans midnight.
type settingsRow struct {
	UserID    int64 `gorm:"primaryKey;autoIncrement:false"`
	DNDStart  int32 `gorm:"column:dnd_start;not null;default:0"`
	DNDEnd    int32 `gorm:"column:dnd_end;not null;default:0"`
	UTCOffset int32 `gorm:"column:utc_offset;not null;default:0"`
}

// TableName names the table through the namer so that TablePrefix applies.
func (settingsRow) TableName(n schema.Namer) string { return n.TableName("user_settings") }

func (r settingsRow) toThrift() *protocol.UserSettings {
	return &protocol.UserSettings{DndEnabled: r.DNDStart != r.DNDEnd,
		DndStartMinute: r.DNDStart, DndEndMinute: r.DNDEnd, UtcOffsetMinutes: r.UTCOffset}
}

// quietAt reports whether t falls in the do-not-disturb window.
func (r settingsRow) quietAt(t time.Time) bool {
	if r.DNDStart == r.DNDEnd {
		return false
	}
	u := t.UTC()
	m := int32((u.Hour()*60 + u.Minute() + int(r.UTCOffset)) % minutesPerDay)
	if m < 0 {
		m += minutesPerDay
	}
	if r.DNDStart < r.DNDEnd {
		return m >= r.DNDStart && m < r.DNDEnd
	}
	return m >= r.DNDStart || m < r.DNDEnd
}

// MuteConv mutes or unmutes a conversation for the session's user on all
// devices. The user must be a member. Other devices learn it from
// ConvSummary.muted at their next SyncConvs, which reports the
// conversation again (see setMuted).
func (s *Service) MuteConv(ctx context.Context, session *logicrpc.Session,
	req *protocol.MuteConvReq) (*protocol.MuteConvResp, error) {
	if err := s.authorizeWrite(ctx, "mute_conv", session); err != nil {
		return nil, err
	}
	if req == nil {
		req = &protocol.MuteConvReq{} // a missing body reads as empty
	}
	logIDs := func(e *zerolog.Event) *zerolog.Event {
		return e.Int64("user", session.UserId).Str("conv", req.GetConvId())
	}
	if err := s.setMuted(ctx, session.UserId, req.GetConvId(), req.GetMuted()); err != nil {
		return nil, s.fail("mute_conv", err, logIDs)
	}
	return &protocol.MuteConvResp{}, nil
}

// setMuted records whether user muted conv, and moves the member's change
// time so that SyncConvs reports the conversation to the user's other
// devices at once.
func (s *Service) setMuted(ctx context.Context, user int64, conv string, muted bool) error {
	if conv == "" || len(conv) > maxConvID {
		return fmt.Errorf("%w: conv_id must be 1-%d bytes", ErrBadRequest, maxConvID)
	}
	if err := validText("conv_id", conv); err != nil {
		return err
	}
	member, err := s.memberLastSeqs(ctx, user, []string{conv})
	if err != nil {
		return err
	}
	if _, ok := member[conv]; !ok {
		return fmt.Errorf("%w: not a member of the conversation", ErrForbidden)
	}
	if !muted {
		err = s.dbc(ctx).Where("user_id = ? AND conv_id = ?", user, conv).
			Delete(&muteRow{}).Error
	} else {
		row := muteRow{UserID: user, ConvID: conv, MutedMs: s.now().UnixMilli()}
		err = s.dbc(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error
	}
	if err != nil {
		return fmt.Errorf("set muted user=%d conv=%s muted=%t: %w", user, conv, muted, err)
	}
	err = s.dbc(ctx).Model(&memberRow{}).Where("conv_id = ? AND user_id = ?", conv, user).
		Update("changed_ms", s.now().UnixMilli()).Error
	if err != nil {
		return fmt.Errorf("report mute user=%d conv=%s: %w", user, conv, err)
	}
	return nil
}

// SetDND sets the session user's do-not-disturb window (start == end
// switches it off) and returns the settings as stored.
func (s *Service) SetDND(ctx context.Context, session *logicrpc.Session,
	req *protocol.SetDNDReq) (*protocol.UserSettings, error) {
	if err := s.authorizeWrite(ctx, "set_dnd", session); err != nil {
		return nil, err
	}
	if req == nil {
		req = &protocol.SetDNDReq{} // a missing body reads as off
	}
	row := settingsRow{UserID: session.UserId, DNDStart: req.StartMinute,
		DNDEnd: req.EndMinute, UTCOffset: req.UtcOffsetMinutes}
	if err := s.saveSettings(ctx, row); err != nil {
		return nil, s.fail("set_dnd", err, sessionIDs(session))
	}
	return row.toThrift(), nil
}

// saveSettings validates and upserts row.
func (s *Service) saveSettings(ctx context.Context, row settingsRow) error {
	inDay := func(m int32) bool { return m >= 0 && m < minutesPerDay }
	if !inDay(row.DNDStart) || !inDay(row.DNDEnd) {
		return fmt.Errorf("%w: start and end minutes must be in [0, %d)",
			ErrBadRequest, minutesPerDay)
	}
	if row.UTCOffset < -maxUTCOffset || row.UTCOffset > maxUTCOffset {
		return fmt.Errorf("%w: utc_offset_minutes must be within ±%d", ErrBadRequest, maxUTCOffset)
	}
	err := s.dbc(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "user_id"}},
		DoUpdates: clause.AssignmentColumns([]string{"dnd_start", "dnd_end", "utc_offset"}),
	}).Create(&row).Error
	if err != nil {
		return fmt.Errorf("save settings user=%d: %w", row.UserID, err)
	}
	return nil
}

// GetSettings returns the session user's settings; clients read them after
// login, since another device may have changed them.
func (s *Service) GetSettings(ctx context.Context, session *logicrpc.Session,
	_ *protocol.GetSettingsReq) (*protocol.UserSettings, error) {
	if err := s.authorizeRead(ctx, "get_settings", session); err != nil {
		return nil, err
	}
	rows, err := s.settingsOf(ctx, []int64{session.UserId})
	if err != nil {
		return nil, s.fail("get_settings", err, sessionIDs(session))
	}
	return rows[session.UserId].toThrift(), nil
}

// settingsOf returns the stored settings of users; a user without a row is
// missing from the map, and its zero value means defaults (no DND).
func (s *Service) settingsOf(ctx context.Context, users []int64) (map[int64]settingsRow, error) {
	var rows []settingsRow
	if err := s.dbc(ctx).Where("user_id IN ?", users).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("settings (%d users): %w", len(users), err)
	}
	out := make(map[int64]settingsRow, len(rows))
	for _, r := range rows {
		out[r.UserID] = r
	}
	return out, nil
}

// dndUsers returns the users among users whose do-not-disturb window holds
// at.
func (s *Service) dndUsers(ctx context.Context, users []int64,
	at time.Time) (map[int64]bool, error) {
	rows, err := s.settingsOf(ctx, users)
	if err != nil {
		return nil, err
	}
	out := make(map[int64]bool, len(rows))
	for u, r := range rows {
		if r.quietAt(at) {
			out[u] = true
		}
	}
	return out, nil
}

// mutedUsers returns the users among users who muted conv.
func (s *Service) mutedUsers(ctx context.Context, conv string,
	users []int64) (map[int64]bool, error) {
	var rows []muteRow
	err := s.dbc(ctx).Where("conv_id = ? AND user_id IN ?", conv, users).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("muted users conv=%s: %w", conv, err)
	}
	out := make(map[int64]bool, len(rows))
	for _, r := range rows {
		out[r.UserID] = true
	}
	return out, nil
}

// mutedConvs returns the conversations among convIDs that user muted, one
// query for a SyncConvs page.
func (s *Service) mutedConvs(ctx context.Context, user int64,
	convIDs []string) (map[string]bool, error) {
	var rows []muteRow
	err := s.dbc(ctx).Where("user_id = ? AND conv_id IN ?", user, convIDs).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("muted convs user=%d: %w", user, err)
	}
	out := make(map[string]bool, len(rows))
	for _, r := range rows {
		out[r.ConvID] = true
	}
	return out, nil
}
