package logic

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"gorm.io/gorm"
)

// TestOpenDB_PrefixesShareOneFile checks that two prefixes migrate side by
// side in one SQLite file, that migrating again is a no-op, and that each
// table set enforces both unique indexes of messages.
func TestOpenDB_PrefixesShareOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	ctx := context.Background()
	for _, prefix := range []string{"a_", "b_", "a_"} {
		db, err := OpenDB(ctx, Config{DBDSN: path, TablePrefix: prefix, TokenSecret: "x"})
		if err != nil {
			t.Fatalf("prefix %s: %v", prefix, err)
		}
		t.Cleanup(func() { closeDB(db) })
		wantUniqueMessages(t, db)
	}
}

func wantUniqueMessages(t *testing.T, db *gorm.DB) {
	t.Helper()
	ctx := context.Background()
	base := messageRow{ConvID: "p2p:1:2", Seq: 1, SenderID: 1, ClientMsgID: "c", ContentType: 1,
		Content: []byte("x"), CreatedAt: time.Now()}
	if err := db.WithContext(ctx).Where("1 = 1").Delete(&messageRow{}).Error; err != nil {
		t.Fatal(err)
	}
	first := base
	if err := db.WithContext(ctx).Create(&first).Error; err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		mutate func(m *messageRow)
	}{
		{name: "same conv and seq", mutate: func(m *messageRow) { m.ClientMsgID = "other" }},
		{name: "same sender and client id", mutate: func(m *messageRow) { m.Seq = 2 }},
	}
	for _, tc := range cases {
		m := base
		tc.mutate(&m)
		err := db.WithContext(ctx).Create(&m).Error
		if !errors.Is(err, gorm.ErrDuplicatedKey) {
			t.Fatalf("%s: err = %v, want ErrDuplicatedKey", tc.name, err)
		}
	}
}
