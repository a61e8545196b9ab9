package logic

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libtnb/sqlite"
	"gorm.io/gorm"
	moderncsqlite "modernc.org/sqlite"
)

// countingConnector opens SQLite connections that count the statements the
// driver prepares and closes.
type countingConnector struct {
	dsn      string
	prepared atomic.Int64
	closed   atomic.Int64
	// gate, when set, holds every prepare until it is closed or the
	// prepare's context ends, as a slow database would.
	gate chan struct{}
}

func (c *countingConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := (&moderncsqlite.Driver{}).Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn, counts: c}, nil
}

func (c *countingConnector) Driver() driver.Driver { return &moderncsqlite.Driver{} }

func (c *countingConnector) open() int64 { return c.prepared.Load() - c.closed.Load() }

type countingConn struct {
	driver.Conn
	counts *countingConnector
}

func (c *countingConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *countingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if gate := c.counts.gate; gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	st, err := c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.counts.prepared.Add(1)
	return &countingStmt{Stmt: st, counts: c.counts}, nil
}

func (c *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

type countingStmt struct {
	driver.Stmt
	counts *countingConnector
	once   sync.Once
}

func (s *countingStmt) Close() error {
	s.once.Do(func() { s.counts.closed.Add(1) })
	return s.Stmt.Close()
}

type poolRow struct {
	ID int64 `gorm:"primaryKey"`
	N  int64
}

// openCountingDB opens a SQLite file through a countingConnector with
// conns connections, and a stmtPool of max statements in front.
func openCountingDB(t *testing.T, conns, max int) (*gorm.DB, *countingConnector) {
	t.Helper()
	cc := &countingConnector{dsn: sqliteDSN(filepath.Join(t.TempDir(), "pool.db"))}
	sqlDB := sql.OpenDB(cc)
	sqlDB.SetMaxOpenConns(conns)
	db, err := gorm.Open(sqlite.New(sqlite.Config{Conn: sqlDB}), gormConfig(Config{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sqlDB.Close() })
	if err := db.AutoMigrate(&poolRow{}); err != nil {
		t.Fatal(err)
	}
	if err := usePreparedPool(db, max); err != nil {
		t.Fatal(err)
	}
	return db, cc
}

func TestStmtPool_TransactionsReuseStatements(t *testing.T) {
	db, cc := openCountingDB(t, 1, 16)
	const txs = 50
	run := func(i int) {
		t.Helper()
		err := db.Transaction(func(tx *gorm.DB) error {
			if err := tx.Create(&poolRow{N: int64(i)}).Error; err != nil {
				return err
			}
			var r poolRow
			if err := tx.Where("n = ?", i).Take(&r).Error; err != nil {
				return err
			}
			return tx.Model(&poolRow{}).Where("id = ?", r.ID).Update("n", gorm.Expr("n + 1")).Error
		})
		if err != nil {
			t.Fatalf("transaction %d: %v", i, err)
		}
	}
	// The first transaction runs its statements as they are and starts
	// their preparation for the pool, which waits for the connection the
	// transaction holds. Until it has run, later transactions run them as
	// they are too; how many do is up to the scheduler, so the count
	// starts once the pool has all three.
	run(0)
	waitPooled(t, db.ConnPool.(*stmtPool), 3)
	before := cc.prepared.Load()
	for i := 1; i < txs; i++ {
		run(i)
	}
	// GORM's PrepareStmt prepared 3 statements in each transaction.
	if n := cc.prepared.Load() - before; n != 0 {
		t.Errorf("%d transactions of 3 pooled statements prepared %d statements, want none", txs-1, n)
	}
	var count int64
	if err := db.Model(&poolRow{}).Where("n > 0").Count(&count).Error; err != nil {
		t.Fatal(err)
	}
	if count != txs {
		t.Errorf("rows updated = %d, want %d", count, txs)
	}
}

// waitPooled waits until pool holds n statements, all prepared.
func waitPooled(t *testing.T, pool *stmtPool, n int) {
	t.Helper()
	ready := func() int {
		pool.mu.Lock()
		defer pool.mu.Unlock()
		k := 0
		for _, el := range pool.stmts {
			select {
			case <-el.Value.(*pooledStmt).ready:
				k++
			default:
			}
		}
		return k
	}
	deadline := time.Now().Add(10 * time.Second)
	for ready() < n {
		if time.Now().After(deadline) {
			t.Fatalf("the pool prepared %d statements in 10 s, want %d", ready(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// A statement first met inside a transaction on a one-connection pool (the
// SQLite writer) must not wait for a second connection.
func TestStmtPool_FirstUseInsideTransactionOnOneConnection(t *testing.T) {
	db, _ := openCountingDB(t, 1, 16)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 3 {
		err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			return tx.Create(&poolRow{N: int64(i)}).Error
		})
		if err != nil {
			t.Fatalf("transaction %d: %v", i, err)
		}
	}
}

// Evictions while other goroutines run the evicted statements neither fail
// a call nor leak a statement.
func TestStmtPool_EvictionUnderConcurrentUse(t *testing.T) {
	db, cc := openCountingDB(t, 4, 2)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				// Ten statement texts over a pool of two.
				col := fmt.Sprintf("n + %d", i%10)
				var err error
				if g%2 == 0 {
					var rows []poolRow
					err = db.Where(col+" > ?", -1).Find(&rows).Error
				} else {
					err = db.Transaction(func(tx *gorm.DB) error {
						var n int64
						return tx.Model(&poolRow{}).Where(col+" > ?", -1).Count(&n).Error
					})
				}
				if err != nil {
					errs <- fmt.Errorf("goroutine %d call %d: %w", g, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// What stays open is what the pool keeps, prepared on at most the
	// pool's 4 connections; an evicted statement leaked would be more.
	pool := db.ConnPool.(*stmtPool)
	limit := func() int64 {
		pool.mu.Lock()
		defer pool.mu.Unlock()
		return int64(4 * len(pool.stmts))
	}
	deadline := time.Now().Add(5 * time.Second) // evictions close asynchronously
	for cc.open() > limit() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n, max := cc.open(), limit(); n > max {
		t.Errorf("%d driver statements open, the pool keeps at most %d", n, max)
	}
}

// A call that gives up while its statement is being prepared fails alone:
// another call waiting for the same statement gets it.
func TestStmtPool_CancelledCallDoesNotFailOthers(t *testing.T) {
	db, cc := openCountingDB(t, 2, 16)
	cc.gate = make(chan struct{})
	query := "SELECT COUNT(*) FROM pool_rows WHERE n >= ?"
	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	first := make(chan error, 1)
	go func() {
		var n int64
		first <- db.WithContext(short).Raw(query, 0).Scan(&n).Error
	}()
	time.Sleep(20 * time.Millisecond) // the first call started the preparation
	done := make(chan error, 1)
	go func() {
		var n int64
		done <- db.Raw(query, 0).Scan(&n).Error
	}()
	if err := <-first; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call with a short deadline = %v, want its deadline", err)
	}
	close(cc.gate)
	if err := <-done; err != nil {
		t.Fatalf("the other call = %v, want the statement", err)
	}
}

// Savepoints (no parameters, a name each) and long IN lists (a length
// each) run as they are and never fill the pool.
func TestStmtPool_KeepsOnlySteadyStatements(t *testing.T) {
	db, _ := openCountingDB(t, 1, 16)
	for i := range 20 {
		ids := make([]int64, 40+i)
		for j := range ids {
			ids[j] = int64(j)
		}
		err := db.Transaction(func(tx *gorm.DB) error {
			if err := tx.SavePoint(fmt.Sprintf("w%d", i)).Error; err != nil {
				return err
			}
			if err := tx.Create(&poolRow{N: int64(i)}).Error; err != nil {
				return err
			}
			return tx.Where("id IN ?", ids).Delete(&poolRow{}).Error
		})
		if err != nil {
			t.Fatalf("transaction %d: %v", i, err)
		}
	}
	pool := db.ConnPool.(*stmtPool)
	pool.mu.Lock()
	var kept []string
	for q := range pool.stmts {
		kept = append(kept, q)
	}
	pool.mu.Unlock()
	if len(kept) != 1 {
		t.Errorf("pool keeps %d statements, want the insert alone: %q", len(kept), kept)
	}
}
