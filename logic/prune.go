package logic

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// pruneInterval is how often a logic instance deletes lapsed device rows.
const pruneInterval = time.Hour

// runPruner deletes lapsed device rows every pruneInterval until ctx is
// done. Several instances may run it; the delete is idempotent.
func (s *Service) runPruner(ctx context.Context) {
	tick := time.NewTicker(pruneInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if n, err := s.pruneDevices(ctx); err != nil {
				s.failLog.Warn().Err(err).Msg("device prune failed")
			} else if n > 0 {
				s.log.Info().Int64("devices", n).Msg("lapsed devices pruned")
			}
		}
	}
}

// pruneDevices deletes the rows of devices that can no longer log in
// without a password: not logged in for longer than RefreshTTL, their
// refresh token expired, and no offline-push token (a phone that was not
// opened for a month still wants its notifications). A password login may
// name any new device, so without this a user's rows would grow at the
// login rate limit for ever. A pruned device that logs in with its
// password again simply starts a new row.
func (s *Service) pruneDevices(ctx context.Context) (int64, error) {
	now := s.now()
	cutoff := now.Add(-s.cfg.RefreshTTL).UnixMilli()
	lapsed := func(db *gorm.DB) *gorm.DB {
		return db.Where("last_login_ms < ? AND refresh_expires_ms < ?", cutoff, now.UnixMilli())
	}
	var total int64
	for ctx.Err() == nil {
		var rows []deviceRow
		err := lapsed(s.dbc(ctx).Model(&deviceRow{})).Select("user_id", "device_id").
			Order("user_id, device_id").Limit(pruneBatch).Find(&rows).Error
		if err != nil {
			return total, fmt.Errorf("find lapsed devices before %d: %w", cutoff, err)
		}
		var deleted int64
		for _, d := range rows {
			// Re-checked in the delete, so a login meanwhile keeps the row.
			res := lapsed(s.dbc(ctx).Where("user_id = ? AND device_id = ?", d.UserID, d.DeviceID)).
				Where("NOT EXISTS (?)", s.dbc(ctx).Model(&pushTokenRow{}).Select("1").
					Where("user_id = ? AND device_id = ?", d.UserID, d.DeviceID)).
				Delete(&deviceRow{})
			if res.Error != nil {
				return total, fmt.Errorf("prune device user=%d device=%q: %w",
					d.UserID, d.DeviceID, res.Error)
			}
			deleted += res.RowsAffected
		}
		total += deleted
		if len(rows) < pruneBatch || deleted == 0 {
			return total, nil
		}
	}
	return total, ctx.Err()
}

// pruneBatch bounds the device rows one prune pass reads at a time.
const pruneBatch = 500
