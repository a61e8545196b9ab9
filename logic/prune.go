package logic

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// pruneInterval is how often a logic instance deletes lapsed device rows
// and stale files.
const pruneInterval = time.Hour

// runPruner deletes lapsed device rows and stale files every pruneInterval
// until ctx is done. Several instances may run it; the deletes are
// idempotent.
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
			if n, err := s.pruneFiles(ctx); err != nil {
				s.failLog.Warn().Err(err).Msg("file prune failed")
			} else if n > 0 {
				s.log.Info().Int("files", n).Msg("stale files pruned")
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

// pruneFiles deletes the files idle for longer than FileRetention that no
// one can reach any more: uploads never completed, and complete files that
// no message names (never sent, or every message naming them recalled).
// Each row is deleted first, re-checked in its transaction, and its bytes
// after, so that a file is never a row without bytes.
//
// A FILE send touches the row in its transaction (sendFileApply), so the
// DELETE, which reads the row as last committed, finds it in use, or the
// send finds it gone and fails.
func (s *Service) pruneFiles(ctx context.Context) (int, error) {
	cutoff := s.now().Add(-s.cfg.FileRetention).UnixMilli()
	total := 0
	for ctx.Err() == nil {
		var ids []string
		err := s.dbc(ctx).Model(&fileRow{}).Where("updated_ms < ?", cutoff).Order("updated_ms").
			Limit(pruneBatch).Pluck("id", &ids).Error
		if err != nil {
			return total, fmt.Errorf("find files idle since %d: %w", cutoff, err)
		}
		deleted := 0
		for _, id := range ids {
			gone, err := s.pruneFile(ctx, id, cutoff)
			if err != nil {
				return total, err
			}
			if gone {
				deleted++
			}
		}
		total += deleted
		if len(ids) < pruneBatch || deleted == 0 {
			return total, nil
		}
	}
	return total, ctx.Err()
}

// pruneFile deletes file id if it is still idle since before cutoff and
// either unfinished or named by no message, and reports whether it did.
func (s *Service) pruneFile(ctx context.Context, id string, cutoff int64) (bool, error) {
	gone := false
	err := s.dbc(ctx).Transaction(func(tx *gorm.DB) error {
		var refs int64
		err := tx.Model(&fileRefRow{}).Where("file_id = ?", id).Count(&refs).Error
		if err != nil {
			return err
		}
		q := tx.Where("id = ? AND updated_ms < ?", id, cutoff)
		if refs > 0 {
			q = q.Where("state = ?", fileUploading)
		}
		res := q.Delete(&fileRow{})
		gone = res.RowsAffected == 1
		return res.Error
	})
	if err != nil {
		return false, fmt.Errorf("prune file %s: %w", id, err)
	}
	if !gone {
		return false, nil
	}
	if err := s.blobs.remove(ctx, id); err != nil {
		return true, fmt.Errorf("remove bytes of pruned file %s: %w", id, err)
	}
	return true, nil
}
