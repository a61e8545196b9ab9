package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"gorm.io/gorm"

	logicsvc "github.com/resonance-im/resonance/logic"
)

// restoreMark is the file a backup leaves beside its copy of the store: the
// server that starts on it is a restore, and moves every conversation's
// seqs past those of the messages lost with it (logic.MoveSeqsPastRestore)
// before it serves, then removes the file. A backup copied again restores
// again: each start on a fresh copy moves the seqs once more.
const restoreMark = "restore.pending"

const restoreMarkText = "This directory is a backup made by `resonance backup`.\n" +
	"The first server started on it moves every conversation's seqs past the\n" +
	"messages sent after the backup, which devices may hold, then removes this file.\n"

// writeRestoreMark marks dir, a backup's target, as a store to restore.
func writeRestoreMark(dir string) error {
	err := os.WriteFile(filepath.Join(dir, restoreMark), []byte(restoreMarkText), 0o600)
	if err != nil {
		return fmt.Errorf("mark the backup as one to restore: %w", err)
	}
	return nil
}

// moveSeqsIfRestored opens the restore's gap in the store on db when the
// configuration says this start follows a restore (--after-restore) or the
// SQLite store is a backup's copy (restoreMark beside it), and then removes
// the mark. A mark that cannot be removed is logged: the next start moves
// the seqs again, which costs nothing but bigger seqs.
func (s *System) moveSeqsIfRestored(ctx context.Context, db *gorm.DB, sqlitePath string) error {
	mark := ""
	if sqlitePath != "" {
		mark = filepath.Join(filepath.Dir(sqlitePath), restoreMark)
		switch _, err := os.Stat(mark); {
		case errors.Is(err, fs.ErrNotExist):
			mark = ""
		case err != nil:
			return fmt.Errorf("app: restore mark: %w", err)
		}
	}
	if mark == "" && !s.cfg.AfterRestore {
		return nil
	}
	moved, err := logicsvc.MoveSeqsPastRestore(ctx, db)
	if err != nil {
		return fmt.Errorf("app: restored store: %w", err)
	}
	s.log.Warn().Int64("convs", moved).Int64("gap", logicsvc.RestoreSeqGap).
		Msg("restored store: every conversation's seqs moved past the messages lost with it")
	if mark != "" {
		if err := os.Remove(mark); err != nil {
			s.log.Error().Err(err).Str("file", mark).
				Msg("restored store: remove the restore mark, or the next start moves the " +
					"seqs again")
		}
	}
	return nil
}
