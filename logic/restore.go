package logic

import (
	"context"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"
)

// RestoreSeqGap is how far MoveSeqsPastRestore moves every conversation's
// last seq. A store restored from a backup has lost what was stored after
// the backup, and devices may hold those messages by their seqs: a new
// message under one of those seqs would be taken for a copy and dropped.
// How many there were is lost with them, so the gap is wider than any one
// conversation reaches between a backup and its restore; a round number,
// so that an operator reading seq 1000000042 sees the 42nd after a
// restore. Clients already pass over seqs no message has (history from
// before a group join): the gap costs them one SYNC. The same gap moves
// the ids that leave the server (restoredIDTables).
const RestoreSeqGap int64 = 1_000_000_000

// metaRow is one value of the whole store, by name.
type metaRow struct {
	Name string `gorm:"primaryKey;size:64"`
	// IntValue is the value; not "value", which some SQL dialects reserve.
	IntValue int64 `gorm:"not null"`
}

// TableName names the table through the namer so that TablePrefix applies.
func (metaRow) TableName(n schema.Namer) string { return n.TableName("meta") }

// metaSeqFloor names the seq after which a conversation created from now
// on starts (createConv): a 1:1 conversation's id is its two users', so
// one begun after a backup and lost with it is begun again under the same
// id, and its devices hold its seqs from 1. Every restore moves it by
// RestoreSeqGap, past what a conversation begun since the last one reached.
const metaSeqFloor = "seq_floor"

// restoredIDTables are the models whose ids clients and tokens hold: a
// user id issued again would let a lost account's access token (signed by
// the key the backup keeps) sign in as the new account, and be one of a
// lost 1:1 conversation's ids; a msg_id issued again names another message
// in the RECALL, EDIT and PIN events devices hold.
var restoredIDTables = []any{&userRow{}, &messageRow{}}

// MoveSeqsPastRestore opens a gap of RestoreSeqGap seqs after every
// conversation's last message in the store on db, and as much before the
// seqs of conversations created from now on and the next user and message
// ids, so that what is stored next takes seqs and ids no device can hold.
// Run it once, on a store just restored from a backup, before logic serves
// it; it returns how many conversations moved. Unread counts count stored
// messages, so the gap is not unread; a conversation the user hid stays
// hidden, its mark moved with it, until a message arrives.
func MoveSeqsPastRestore(ctx context.Context, db *gorm.DB) (int64, error) {
	db = db.WithContext(ctx)
	// First, and outside the transaction: MySQL's ALTER TABLE commits. A
	// failure after it leaves bigger ids, which cost nothing.
	for _, model := range restoredIDTables {
		if err := moveIDsPastRestore(db, model); err != nil {
			return 0, err
		}
	}
	var moved int64
	err := db.Transaction(func(tx *gorm.DB) error {
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
		err = tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "name"}},
			DoUpdates: clause.Assignments(map[string]any{
				"int_value": gorm.Expr("int_value + ?", RestoreSeqGap)})}).
			Create(&metaRow{Name: metaSeqFloor, IntValue: RestoreSeqGap}).Error
		if err != nil {
			return fmt.Errorf("move new conversations' seqs past the restore: %w", err)
		}
		return nil
	})
	return moved, err
}

// moveIDsPastRestore makes the next id of model's table come RestoreSeqGap
// after the last one issued. On MySQL 5.7 a restart resets the counter to
// the highest id stored plus one; MySQL 8 keeps it.
func moveIDsPastRestore(db *gorm.DB, model any) error {
	stmt := &gorm.Statement{DB: db}
	if err := stmt.Parse(model); err != nil {
		return fmt.Errorf("table of %T: %w", model, err)
	}
	table := stmt.Schema.Table
	var top int64
	if err := db.Model(model).Select("COALESCE(MAX(id), 0)").Scan(&top).Error; err != nil {
		return fmt.Errorf("last id of %s: %w", table, err)
	}
	if db.Dialector.Name() == DriverMySQL {
		err := db.Exec(fmt.Sprintf("ALTER TABLE %s AUTO_INCREMENT = %d",
			stmt.Quote(table), top+1+RestoreSeqGap)).Error
		if err != nil {
			return fmt.Errorf("move the ids of %s past the restore: %w", table, err)
		}
		return nil
	}
	// SQLite's AUTOINCREMENT takes the next id past sqlite_sequence's,
	// which holds the highest ever issued (it may pass the highest stored).
	res := db.Exec("UPDATE sqlite_sequence SET seq = MAX(seq, ?) + ? WHERE name = ?",
		top, RestoreSeqGap, table)
	if res.Error == nil && res.RowsAffected == 0 {
		res = db.Exec("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)",
			table, top+RestoreSeqGap)
	}
	if res.Error != nil {
		return fmt.Errorf("move the ids of %s past the restore: %w", table, res.Error)
	}
	return nil
}

// seqFloor reads the seq after which a new conversation starts
// (metaSeqFloor): 0 on a store never restored.
func seqFloor(ctx context.Context, db *gorm.DB) (int64, error) {
	var floors []int64
	err := db.WithContext(ctx).Model(&metaRow{}).Where("name = ?", metaSeqFloor).
		Pluck("int_value", &floors).Error
	if err != nil {
		return 0, fmt.Errorf("read the seq floor: %w", err)
	}
	if len(floors) == 0 {
		return 0, nil
	}
	return floors[0], nil
}
