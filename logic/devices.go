package logic

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"

	"github.com/resonance-im/resonance/internal/route"
	"github.com/resonance-im/resonance/kitex_gen/event"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// maxListedDevices caps ListDevices; older devices are left out.
const maxListedDevices = 100

// signedOutMessage is the text a revoked connection's CLOSE frame carries.
const signedOutMessage = "signed out"

// deviceRow is a device a user has logged in from with a password, and the
// state of its tokens. TokenGen is carried in every access token issued to
// the device; bumping it revokes them all. RefreshHash is the SHA-256 of the
// device's one valid refresh token; PrevRefreshHash that of the one it
// replaced by rotation, kept to recognise reuse of a stolen token.
type deviceRow struct {
	UserID           int64  `gorm:"primaryKey;autoIncrement:false"`
	DeviceID         string `gorm:"primaryKey;size:64"`
	Platform         string `gorm:"size:64;not null;default:''"`
	LastLoginMs      int64  `gorm:"not null;default:0"`
	TokenGen         int64  `gorm:"not null;default:1"`
	RefreshHash      string `gorm:"size:64;not null;default:''"`
	PrevRefreshHash  string `gorm:"size:64;not null;default:''"`
	RefreshExpiresMs int64  `gorm:"not null;default:0"`
	// RotatedMs is when PrevRefreshHash was rotated away, while its one
	// retry (see refreshRetryGrace) is still allowed; 0 otherwise.
	RotatedMs int64 `gorm:"not null;default:0"`
	// ContestedRefreshHash is the hash of the refresh token a grace retry
	// displaced (see retryRotation), kept through later rotations until a
	// password login or a revocation: its coming back means two parties
	// hold the device. AutoMigrate adds it to older tables, empty.
	ContestedRefreshHash string `gorm:"size:64;not null;default:''"`
}

// TableName names the table through the namer so that TablePrefix applies.
func (deviceRow) TableName(n schema.Namer) string { return n.TableName("device") }

// touchDevice records a login of the user's device (creating its row with
// generation 1 on first use) and returns the row as stored. Rows of
// devices that lapsed are deleted by the pruner (prune.go).
func (s *Service) touchDevice(ctx context.Context, user int64, device,
	platform string) (*deviceRow, error) {
	return s.touchDeviceIn(s.dbc(ctx), user, device, platform)
}

// touchDeviceIn is touchDevice on db, a transaction's handle, and reads the
// row back through it.
func (s *Service) touchDeviceIn(db *gorm.DB, user int64, device,
	platform string) (*deviceRow, error) {
	row := deviceRow{UserID: user, DeviceID: device, Platform: platform,
		LastLoginMs: s.now().UnixMilli(), TokenGen: 1}
	update := []string{"last_login_ms"}
	if platform != "" {
		update = append(update, "platform") // a login that does not say keeps it
	}
	err := db.Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "user_id"}, {Name: "device_id"}},
		DoUpdates: clause.AssignmentColumns(update),
	}).Create(&row).Error
	if err != nil {
		return nil, fmt.Errorf("touch device user=%d device=%q: %w", user, device, err)
	}
	return findDeviceIn(db, user, device)
}

// findDevice returns the user's device row, or nil when there is none.
func (s *Service) findDevice(ctx context.Context, user int64, device string) (*deviceRow, error) {
	return findDeviceIn(s.rdc(ctx), user, device)
}

// findDeviceIn is findDevice on db: a transaction's handle reads what the
// transaction wrote.
func findDeviceIn(db *gorm.DB, user int64, device string) (*deviceRow, error) {
	var row deviceRow
	res := db.Where("user_id = ? AND device_id = ?", user, device).Limit(1).Find(&row)
	if res.Error != nil {
		return nil, fmt.Errorf("find device user=%d device=%q: %w", user, device, res.Error)
	}
	if res.RowsAffected == 0 {
		return nil, nil
	}
	return &row, nil
}

// findLoginDevice reads what a token login checks, in one query without
// GORM: the device's row (its token generation and last login) and its user.
// It returns nils when the device is unknown or its user is gone. The user
// row holds its id, name and suspension time only.
func (s *Service) findLoginDevice(ctx context.Context, user int64,
	device string) (*deviceRow, *userRow, error) {
	rows, err := s.rdb.Statement.ConnPool.QueryContext(ctx, s.queries.loginDevice, user, device)
	if err != nil {
		return nil, nil, fmt.Errorf("find device user=%d device=%q: %w", user, device, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, nil, fmt.Errorf("find device user=%d device=%q: %w", user, device, err)
		}
		return nil, nil, nil
	}
	dev := &deviceRow{UserID: user, DeviceID: device}
	u := &userRow{ID: user}
	err = rows.Scan(&dev.Platform, &dev.LastLoginMs, &dev.TokenGen, &u.Username, &u.SuspendedMs)
	if err != nil {
		return nil, nil, fmt.Errorf("find device user=%d device=%q: %w", user, device, err)
	}
	return dev, u, nil
}

// deviceGeneration returns the token generation of the user's device, in
// one read by primary key; ok is false when the device has no row.
func (s *Service) deviceGeneration(ctx context.Context, user int64,
	device string) (gen int64, ok bool, err error) {
	err = s.rdb.Statement.ConnPool.QueryRowContext(ctx, s.queries.deviceGen, user, device).
		Scan(&gen)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("device generation user=%d device=%q: %w", user, device, err)
	}
	return gen, true, nil
}

// revokeDevices bumps the token generation of the user's device, or of all
// its devices when device is empty, and forgets their refresh tokens: every
// token issued before stops working. It returns how many devices it revoked.
func (s *Service) revokeDevices(ctx context.Context, user int64, device string) (int64, error) {
	return revokeDevicesIn(s.dbc(ctx), user, device)
}

// revokeDevicesIn is revokeDevices on db, a transaction's handle.
func revokeDevicesIn(db *gorm.DB, user int64, device string) (int64, error) {
	q := db.Model(&deviceRow{}).Where("user_id = ?", user)
	if device != "" {
		q = q.Where("device_id = ?", device)
	}
	res := q.Updates(map[string]any{
		"token_gen":              gorm.Expr("token_gen + 1"),
		"refresh_hash":           "",
		"prev_refresh_hash":      "",
		"contested_refresh_hash": "",
	})
	if res.Error != nil {
		return 0, fmt.Errorf("revoke tokens user=%d device=%q: %w", user, device, res.Error)
	}
	return res.RowsAffected, nil
}

// listDevices returns the user's signed-in devices, most recent login
// first. A signed-out device keeps its row, whose generation keeps its old
// tokens refused, but holds no refresh token (revokeDevicesIn clears it, and
// every login by password puts one back): it is left out, as it cannot
// connect again without a password and the user cannot tell it from a
// live one. A device whose access token merely expired still has its
// refresh token and is listed.
func (s *Service) listDevices(ctx context.Context, user int64) ([]deviceRow, error) {
	var rows []deviceRow
	err := s.dbc(ctx).Where("user_id = ? AND refresh_hash <> ''", user).
		Order("last_login_ms DESC").
		Limit(maxListedDevices).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("list devices user=%d: %w", user, err)
	}
	return rows, nil
}

// connRef names one connection, to spare it from a sign-out.
type connRef struct {
	gateway string
	connID  int64
}

// signOutConns closes the live connections of the user's device (all devices
// when device is empty) except keep: it removes their routes, so they get no
// more pushes, and asks task to close them with SIGNED_OUT. Like kick it is
// best effort: the tokens are already revoked, so a connection that stays
// open cannot log in again.
func (s *Service) signOutConns(ctx context.Context, user int64, device string, keep connRef) {
	s.closeConns(ctx, connsToClose{user: user, device: device, keep: keep,
		reason: protocol.CloseReason_SIGNED_OUT, message: signedOutMessage})
}

// connsToClose names the connections closeConns closes: the user's, on
// device only unless it is empty, except keep, with reason and message.
type connsToClose struct {
	user    int64
	device  string
	keep    connRef
	reason  protocol.CloseReason
	message string
}

// closeConns is signOutConns with any reason. The routes it removes are gone
// before their connections' Disconnect, which then finds none and publishes
// nothing: closeConns tells the user's watchers itself.
func (s *Service) closeConns(ctx context.Context, cc connsToClose) {
	// Every revocation ends here: the send path reads the bumped generation
	// from now on, here at once and on the other instances when the event
	// reaches them.
	s.gens.forget(cc.user, cc.device)
	s.publishRevoked(cc.user, cc.device)
	rs, err := s.deps.Routes.Lookup(ctx, []int64{cc.user})
	if err != nil {
		s.failLog.Warn().Err(err).Int64("user", cc.user).Str("device", cc.device).
			Stringer("reason", cc.reason).Msg("route lookup for sign-out failed; connections stay open")
		return
	}
	removed := false
	for _, r := range rs {
		if cc.device != "" && r.DeviceID != cc.device ||
			r.Gateway == cc.keep.gateway && r.ConnID == cc.keep.connID {
			continue
		}
		if err := s.deps.Routes.Delete(ctx, r); err != nil {
			s.log.Debug().Err(err).Int64("user", cc.user).Int64("conn", r.ConnID).
				Msg("route of a signed-out connection already gone")
		} else {
			removed = true
		}
		s.publishKick(ctx, r, cc.reason, cc.message,
			"signout-"+r.Gateway+"-"+strconv.FormatInt(r.ConnID, 10)+"-"+
				strconv.FormatInt(time.Now().UnixNano(), 10))
	}
	if removed {
		s.publishPresence(cc.user)
	}
}

// publishKick asks task to close the connection of r with reason; msgID
// deduplicates retries of one decision in the stream.
func (s *Service) publishKick(ctx context.Context, r route.Route, reason protocol.CloseReason,
	message, msgID string) error {
	ev := &event.KickEvent{UserId: r.UserID, Gateway: r.Gateway, ConnId: r.ConnID,
		Reason: reason, Message: message}
	buf := make([]byte, ev.BLength())
	buf = buf[:ev.FastWrite(buf)]
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	_, err := s.deps.JS.Publish(ctx, s.deps.MQ.KickSubject(), buf, jetstream.WithMsgID(msgID))
	if err != nil {
		s.failLog.Warn().Err(err).Int64("user", r.UserID).Str("gateway", r.Gateway).
			Int64("conn", r.ConnID).Stringer("reason", reason).
			Msg("kick publish failed; connection stays open")
	}
	return err
}
