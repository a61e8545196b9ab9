package logic

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// RestoreSeqGap is how far MoveSeqsPastRestore moves every conversation's
// last seq. A store restored from a backup has lost what was stored after
// the backup, and devices may hold those messages by their seqs: a new
// message under one of those seqs would be taken for a copy and dropped.
// How many there were is lost with them, so the gap is wider than any one
// conversation reaches between a backup and its restore; a round number,
// so that an operator reading seq 1000000042 sees the 42nd after a
// restore. Clients already pass over seqs no message has (history from
// before a group join): the gap costs them one SYNC.
const RestoreSeqGap int64 = 1_000_000_000

// MoveSeqsPastRestore opens a gap of RestoreSeqGap seqs after every
// conversation's last message in the store on db, so that what is stored
// next takes seqs no device can hold. Run it once, on a store just restored
// from a backup, before logic serves it; it returns how many conversations
// moved. Unread counts count stored messages, so the gap is not unread;
// a conversation the user hid stays hidden, its mark moved with it, until a
// message arrives.
func MoveSeqsPastRestore(ctx context.Context, db *gorm.DB) (int64, error) {
	var moved int64
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&convRow{}).Where("1 = 1").
			UpdateColumn("last_seq", gorm.Expr("last_seq + ?", RestoreSeqGap))
		if res.Error != nil {
			return fmt.Errorf("move conversations' seqs past the restore: %w", res.Error)
		}
		moved = res.RowsAffected
		// A former member's list entry ends at the leaving (shownExpr), which
		// does not move: its hiding mark stays too.
		err := tx.Model(&memberRow{}).Where("hidden_seq > 0 AND left_seq = 0").
			UpdateColumn("hidden_seq", gorm.Expr("hidden_seq + ?", RestoreSeqGap)).Error
		if err != nil {
			return fmt.Errorf("move hidden conversations' marks past the restore: %w", err)
		}
		return nil
	})
	return moved, err
}
