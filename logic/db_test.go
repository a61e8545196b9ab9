package logic

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"gorm.io/gorm"

	"github.com/resonance-im/resonance/kitex_gen/protocol"
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

// TestOpenDB_ConcurrentMigrationsOnMySQL starts logic instances together on
// an empty schema, as a deployment rolling out several replicas does: each
// must open, where racing CREATE TABLE and CREATE INDEX made one fail.
func TestOpenDB_ConcurrentMigrationsOnMySQL(t *testing.T) {
	dsn := os.Getenv("RESONANCE_TEST_MYSQL_DSN")
	if dsn == "" {
		t.Skip("RESONANCE_TEST_MYSQL_DSN not set")
	}
	for range 3 {
		cfg := Config{DBDriver: DriverMySQL, DBDSN: dsn, TablePrefix: "m" + randHex(t, 4) + "_"}
		const instances = 3
		dbs := make([]*gorm.DB, instances)
		errs := make([]error, instances)
		var wg sync.WaitGroup
		for i := range instances {
			wg.Go(func() { dbs[i], errs[i] = OpenDB(context.Background(), cfg) })
		}
		wg.Wait()
		dropped := false
		for _, db := range dbs {
			if db == nil {
				continue
			}
			if !dropped {
				dropTables(t, db, cfg)
				dropped = true
			}
			closeDB(db)
		}
		for i, err := range errs {
			if err != nil {
				t.Fatalf("instance %d of %d on prefix %s: %v", i, instances, cfg.TablePrefix, err)
			}
		}
	}
}

func TestMigrateLockName_FitsMySQL(t *testing.T) {
	short := migrateLockName("chat_")
	long := migrateLockName(strings.Repeat("p", 100))
	if short != "resonance_migrate_chat_" || len(long) > 64 || long == migrateLockName("q") {
		t.Fatalf("lock names %q, %q", short, long)
	}
}

// TestOpenDB_TablesHoldAnyTextOnALatin1Database: a database whose default
// character set is latin1 (a bare MariaDB install's) refused an emoji in a
// nickname or a message; the tables logic creates are utf8mb4 whatever the
// database's default.
func TestOpenDB_TablesHoldAnyTextOnALatin1Database(t *testing.T) {
	dsn := os.Getenv("RESONANCE_TEST_MYSQL_DSN")
	if dsn == "" {
		t.Skip("RESONANCE_TEST_MYSQL_DSN not set")
	}
	admin, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	name := "resonance_latin1_" + randHex(t, 4)
	if _, err := admin.Exec("CREATE DATABASE " + name + " DEFAULT CHARACTER SET latin1"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec("DROP DATABASE " + name) })
	parsed, err := gomysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	parsed.DBName = name
	db, err := OpenDB(context.Background(), Config{DBDriver: DriverMySQL, DBDSN: parsed.FormatDSN()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeDB(db) })
	u := userRow{Username: "dj", PasswordHash: "x", Nickname: "🎧 ünïcödé"}
	if err := db.Create(&u).Error; err != nil {
		t.Fatalf("insert a nickname with an emoji: %v", err)
	}
	var got userRow
	if err := db.First(&got, u.ID).Error; err != nil || got.Nickname != u.Nickname {
		t.Fatalf("read back %q (%v), want %q", got.Nickname, err, u.Nickname)
	}
}

// TestOpenDB_AddsTheContestedColumnToAnOlderDeviceTable checks that a
// device table from before contested_refresh_hash gets the column, empty,
// when logic starts on it, and that the refresh tokens stored in it keep
// working.
func TestOpenDB_AddsTheContestedColumnToAnOlderDeviceTable(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		e.register(t, "alice")
		phone := e.loginDevice(t, "alice", "phone", 1)
		const column = "contested_refresh_hash"
		err := e.db.Migrator().DropColumn(&deviceRow{}, column)
		if err != nil || e.db.Migrator().HasColumn(&deviceRow{}, column) {
			t.Fatalf("drop %s to make an older table: %v", column, err)
		}

		db, err := OpenDB(context.Background(), e.cfg)
		if err != nil {
			t.Fatalf("start on the older table: %v", err)
		}
		closeDB(db)
		if !e.db.Migrator().HasColumn(&deviceRow{}, column) {
			t.Fatalf("no %s after the start", column)
		}
		_, err = e.svc.Refresh(context.Background(), phone.sess,
			&protocol.RefreshReq{RefreshToken: phone.refresh})
		if err != nil {
			t.Fatalf("refresh with a token stored before the column: %v", err)
		}
	})
}

// TestOpenDB_RefusesCaseInsensitiveTables checks that logic does not start
// on a table that compares text without regard to case (one created before
// logic named the collation), and says which and what to run; converted, it
// starts.
func TestOpenDB_RefusesCaseInsensitiveTables(t *testing.T) {
	dsn := os.Getenv("RESONANCE_TEST_MYSQL_DSN")
	if dsn == "" {
		t.Skip("RESONANCE_TEST_MYSQL_DSN not set")
	}
	cfg := Config{DBDriver: DriverMySQL, DBDSN: dsn, TablePrefix: "c" + randHex(t, 4) + "_"}
	db, err := OpenDB(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dropTables(t, db, cfg)
		closeDB(db)
	})
	table := cfg.TablePrefix + "messages"
	convert := func(collation string) {
		t.Helper()
		err := db.Exec("ALTER TABLE " + table + " CONVERT TO CHARACTER SET utf8mb4 COLLATE " +
			collation).Error
		if err != nil {
			t.Fatal(err)
		}
	}
	convert("utf8mb4_general_ci")
	again, err := OpenDB(context.Background(), cfg)
	if !errors.Is(err, ErrLooseCollation) || !strings.Contains(err.Error(), table) {
		if again != nil {
			closeDB(again)
		}
		t.Fatalf("OpenDB on a general_ci %s: %v, want ErrLooseCollation naming it", table, err)
	}
	convert("utf8mb4_bin")
	again, err = OpenDB(context.Background(), cfg)
	if err != nil {
		t.Fatalf("OpenDB after the conversion: %v", err)
	}
	closeDB(again)
}

// TestOpenDB_MarksReactedConversationsOfAnOlderTable checks that a
// conversation table from before the reacted column gets it set for the
// conversations that already have reactions: SYNC would not show theirs.
func TestOpenDB_MarksReactedConversationsOfAnOlderTable(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		reacted := e.sendN(t, alice, bob, 1, "hi").ConvId
		e.mustReact(t, bob, reacted, 1, "👍", false)
		carol := e.register(t, "carol")
		quiet := e.sendN(t, alice, carol, 1, "hey").ConvId
		const column = "reacted"
		err := e.db.Migrator().DropColumn(&convRow{}, column)
		if err != nil || e.db.Migrator().HasColumn(&convRow{}, column) {
			t.Fatalf("drop %s to make an older table: %v", column, err)
		}

		db, err := OpenDB(context.Background(), e.cfg)
		if err != nil {
			t.Fatalf("start on the older table: %v", err)
		}
		closeDB(db)
		if got := e.syncAll(t, alice, reacted)[0].Reactions; len(got) != 1 {
			t.Fatalf("reactions stored before the column: %v, want 👍", got)
		}
		if n := e.countRows(t, &convRow{}, "id = ? AND reacted = ?", quiet, true); n != 0 {
			t.Fatalf("a conversation without reactions marked reacted")
		}
	})
}
