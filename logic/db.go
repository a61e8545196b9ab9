package logic

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/libtnb/sqlite"
	"gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"
)

// sqliteBusyTimeoutMs is how long a SQLite statement waits for a lock held by
// another process (a backup, the sqlite3 shell) before failing.
const sqliteBusyTimeoutMs = 5000

// OpenDB opens the database cfg names, tunes its pool and migrates the
// tables. It logs nothing per query; the caller closes the returned handle
// (db.DB() then Close) after Stop.
func OpenDB(ctx context.Context, cfg Config) (*gorm.DB, error) {
	cfg = cfg.withDefaults()
	dialector, err := dialectorFor(cfg)
	if err != nil {
		return nil, err
	}
	db, err := openGorm(dialector, cfg)
	if err != nil {
		return nil, fmt.Errorf("logic: open %s: %w", cfg.DBDriver, err)
	}
	if err := tunePool(db, cfg.DBDriver); err != nil {
		return nil, err
	}
	if err := migrateOnce(ctx, db, cfg); err != nil {
		closeDB(db)
		return nil, fmt.Errorf("logic: migrate: %w", err)
	}
	return db, nil
}

// migrateLockWait bounds the wait for another instance's migration.
const migrateLockWait = 60 * time.Second

// migrateOnce migrates; on MySQL under a named lock, so that logic instances
// started together on an empty schema take turns: CREATE TABLE and CREATE
// INDEX race otherwise, and the loser fails to start with error 1050 or
// 1061. The lock belongs to one connection, held until the migration ends.
func migrateOnce(ctx context.Context, db *gorm.DB, cfg Config) error {
	if cfg.DBDriver != DriverMySQL {
		return migrate(db.WithContext(ctx))
	}
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connection for the migration lock: %w", err)
	}
	defer conn.Close()
	name := migrateLockName(cfg.TablePrefix)
	var granted sql.NullInt64
	err = conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, ?)", name,
		int(migrateLockWait.Seconds())).Scan(&granted)
	if err != nil {
		return fmt.Errorf("lock %s: %w", name, err)
	}
	if granted.Int64 != 1 {
		return fmt.Errorf("lock %s: %w after %s", name, ErrMigrationLocked, migrateLockWait)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "DO RELEASE_LOCK(?)", name)
	// Tables hold any text whatever the database's default character set
	// (a bare install's is latin1, which refuses an emoji), and compare it
	// byte for byte, as SQLite does: under a case-insensitive collation (the
	// default utf8mb4_general_ci) client ids such as "Ab3x" and "ab3x", or
	// two that differ in an emoji, are one key, and the second message was
	// answered as a duplicate of the first and never stored.
	err = migrate(db.WithContext(ctx).Set("gorm:table_options", tableOptions))
	if err != nil {
		return err
	}
	return checkCollations(ctx, db, cfg.TablePrefix)
}

// tableOptions are the options of every table logic creates on MySQL.
const tableOptions = "DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"

// checkCollations fails when a text column of logic's tables compares text
// other than byte for byte: tables created before tableOptions named the
// collation. Converting them rebuilds each table, which an operator runs
// when it suits (docs/operations.md); until then a client id that differs
// from another only in case could lose its message.
func checkCollations(ctx context.Context, db *gorm.DB, prefix string) error {
	var tables []string
	err := db.WithContext(ctx).Raw("SELECT DISTINCT table_name FROM information_schema.columns "+
		"WHERE table_schema = DATABASE() AND table_name LIKE ? AND collation_name IS NOT NULL "+
		"AND collation_name NOT LIKE '%\\_bin'", likePrefix(prefix)+"%").Scan(&tables).Error
	if err != nil {
		return fmt.Errorf("read column collations: %w", err)
	}
	ours, err := tableNamesOf(db)
	if err != nil {
		return err
	}
	tables = slices.DeleteFunc(tables, func(t string) bool { return !slices.Contains(ours, t) })
	if len(tables) > 0 {
		slices.Sort(tables)
		return fmt.Errorf("%w: tables %s compare text without regard to case; run ALTER TABLE "+
			"<table> CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin on each "+
			"(docs/operations.md)", ErrLooseCollation, strings.Join(tables, ", "))
	}
	return nil
}

// likePrefix escapes prefix for a LIKE pattern.
func likePrefix(prefix string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(prefix)
}

// migrateLockName names the lock of one table prefix's migration. MySQL
// caps lock names at 64 characters, so a long prefix is hashed.
func migrateLockName(prefix string) string {
	name := "resonance_migrate_" + prefix
	if len(name) > 64 {
		sum := sha256.Sum256([]byte(prefix))
		name = "resonance_migrate_" + hex.EncodeToString(sum[:16])
	}
	return name
}

// openGorm opens a GORM handle whose statements are prepared once per pool
// (stmtPool): the statements of a send are few and the same every time.
func openGorm(dialector gorm.Dialector, cfg Config) (*gorm.DB, error) {
	db, err := gorm.Open(dialector, gormConfig(cfg))
	if err != nil {
		return nil, err
	}
	if err := usePreparedPool(db, preparedStmts); err != nil {
		closeDB(db)
		return nil, err
	}
	return db, nil
}

// gormConfig is the GORM configuration of every pool.
func gormConfig(cfg Config) *gorm.Config {
	return &gorm.Config{
		NamingStrategy: schema.NamingStrategy{TablePrefix: cfg.TablePrefix},
		Logger:         quietLogger{},
		// Unique violations become gorm.ErrDuplicatedKey on both drivers, which
		// Register and Send rely on to resolve races.
		TranslateError: true,
		// Every write we make is one statement or an explicit transaction.
		SkipDefaultTransaction: true,
		NowFunc:                func() time.Time { return time.Now().UTC() },
		// Statements are prepared by stmtPool (openGorm), not GORM.
	}
}

// migrate creates or updates the tables and their secondary indexes.
func migrate(db *gorm.DB) error {
	addsReacted := db.Migrator().HasTable(&convRow{}) &&
		!db.Migrator().HasColumn(&convRow{}, "reacted")
	err := db.AutoMigrate(tableModels()...)
	if err != nil {
		return err
	}
	for _, ix := range slices.Concat(tableIndexes, pushTokenIndexes, reactionIndexes,
		fileIndexes, pinIndexes) {
		if err := createIndex(db, ix); err != nil {
			return err
		}
	}
	if addsReacted {
		return markReacted(db)
	}
	return nil
}

// markReacted sets convRow.Reacted, just added to an older table, for the
// conversations with reactions stored before it, once: SYNC reads the
// reactions only where it is set. It runs before logic serves, so no
// reaction is being stored meanwhile.
func markReacted(db *gorm.DB) error {
	// A new session: on MySQL db carries the table options set on it
	// (migrateOnce), and the chains below would otherwise share its one
	// statement, the subquery's model taking over the update's.
	db = db.Session(&gorm.Session{})
	err := db.Model(&convRow{}).
		Where("id IN (?)", db.Model(&reactionRow{}).Distinct("conv_id")).
		UpdateColumn("reacted", true).Error
	if err != nil {
		return fmt.Errorf("mark the conversations with reactions: %w", err)
	}
	return nil
}

// tableModels returns a row of each of logic's tables.
func tableModels() []any {
	return []any{&userRow{}, &convRow{}, &memberRow{}, &messageRow{},
		&deliveredRow{}, &outboxRow{}, &deviceRow{}, &blockRow{},
		&pushTokenRow{}, &muteRow{}, &settingsRow{}, &reactionRow{},
		&fileRow{}, &fileRefRow{}, &fileChunkRow{}, &pinRow{}, &metaRow{}}
}

// tableNamesOf returns the names of logic's tables in db.
func tableNamesOf(db *gorm.DB) ([]string, error) {
	var names []string
	for _, model := range tableModels() {
		stmt := &gorm.Statement{DB: db}
		if err := stmt.Parse(model); err != nil {
			return nil, fmt.Errorf("table name of %T: %w", model, err)
		}
		names = append(names, stmt.Schema.Table)
	}
	return names, nil
}

// createIndex creates ix unless it exists.
func createIndex(db *gorm.DB, ix tableIndex) error {
	stmt := &gorm.Statement{DB: db}
	if err := stmt.Parse(ix.model); err != nil {
		return err
	}
	table := stmt.Schema.Table
	name := table + ix.suffix
	if db.Migrator().HasIndex(ix.model, name) {
		return nil
	}
	cols := make([]clause.Column, len(ix.columns))
	for i, c := range ix.columns {
		cols[i] = clause.Column{Name: c}
	}
	kind := "INDEX"
	if ix.unique {
		kind = "UNIQUE INDEX"
	}
	err := db.Exec("CREATE "+kind+" ? ON ? ?", clause.Column{Name: name},
		clause.Table{Name: table}, cols).Error
	if err != nil {
		return fmt.Errorf("create index %s: %w", name, err)
	}
	return nil
}

func dialectorFor(cfg Config) (gorm.Dialector, error) {
	switch cfg.DBDriver {
	case DriverSQLite:
		dir := filepath.Dir(cfg.DBDSN)
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("logic: create sqlite dir %s: %w", dir, err)
		}
		return sqlite.Open(sqliteDSN(cfg.DBDSN)), nil
	case DriverMySQL:
		return mysql.Open(mysqlDSN(cfg.DBDSN)), nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownDriver, cfg.DBDriver)
}

// sqliteDSN adds the pragmas every connection needs. WAL lets readers run
// beside the writer; synchronous stays at its FULL default so that an acked
// message survives a power cut. The group commit's savepoints journal each
// statement; temp_store(MEMORY) keeps those journals off the disk.
func sqliteDSN(path string) string {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return fmt.Sprintf("%s%s_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)"+
		"&_pragma=temp_store(MEMORY)", path, sep, sqliteBusyTimeoutMs)
}

// preparedStmts bounds the prepared statements a pool keeps (the least
// recently used are closed): a statement with an IN list prepares once per
// list length.
const preparedStmts = 256

// sqliteReaders is the size of the SQLite read pool.
const sqliteReaders = 4

// openSQLiteReader opens read-only connections to the SQLite file of cfg,
// for reads that need not wait for the writer (Service.rdb).
func openSQLiteReader(cfg Config) (*gorm.DB, error) {
	db, err := openGorm(sqlite.Open(sqliteDSN(cfg.DBDSN)+"&_pragma=query_only(1)"), cfg)
	if err != nil {
		return nil, fmt.Errorf("logic: open sqlite readers: %w", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("logic: sql handle: %w", err)
	}
	sqlDB.SetMaxOpenConns(sqliteReaders)
	sqlDB.SetMaxIdleConns(sqliteReaders)
	return db, nil
}

func mysqlDSN(dsn string) string {
	if strings.Contains(dsn, "parseTime=") {
		return dsn
	}
	if strings.Contains(dsn, "?") {
		return dsn + "&parseTime=true"
	}
	return dsn + "?parseTime=true"
}

func tunePool(db *gorm.DB, driver string) error {
	sqlDB, err := db.DB()
	if err != nil {
		return fmt.Errorf("logic: sql handle: %w", err)
	}
	if driver == DriverSQLite {
		// One connection serializes every write, so the seq transaction never
		// meets SQLITE_BUSY; it also means nothing may query db while holding
		// a transaction.
		// Reads that may run beside it use a separate read-only pool
		// (openSQLiteReader).
		sqlDB.SetMaxOpenConns(1)
		sqlDB.SetMaxIdleConns(1)
		sqlDB.SetConnMaxLifetime(0)
		return nil
	}
	sqlDB.SetMaxOpenConns(32)
	sqlDB.SetMaxIdleConns(16)
	sqlDB.SetConnMaxLifetime(30 * time.Minute)
	return nil
}

func closeDB(db *gorm.DB) {
	if sqlDB, err := db.DB(); err == nil {
		_ = sqlDB.Close()
	}
}
