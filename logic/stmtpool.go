package logic

import (
	"container/list"
	"context"
	"database/sql"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"
)

// stmtPool is the connection pool GORM runs on. It prepares each statement
// text once for the pool, and a transaction runs it through Tx.StmtContext,
// which reuses what the transaction's connection has already prepared.
//
// GORM's own PrepareStmt prepares a statement first met inside a transaction
// on that transaction, and database/sql closes such a statement at commit:
// the group commit, whose statements all run in transactions, parsed and
// planned each of them again on every batch (a tenth of the server's CPU in
// 1:1 chat on SQLite; on MySQL a prepare and a close round trip around every
// statement).
type stmtPool struct {
	db  *sql.DB
	max int

	mu    sync.Mutex
	stmts map[string]*list.Element // of *pooledStmt, most recent first
	lru   list.List
}

// pooledStmt is one prepared statement of a stmtPool. users counts the calls
// running it; an evicted statement is closed when the last one ends.
type pooledStmt struct {
	query   string
	ready   chan struct{} // closed once stmt or err is set
	stmt    *sql.Stmt
	err     error
	users   int
	evicted bool
}

// newStmtPool wraps db, keeping at most max prepared statements (the least
// recently used are closed: a statement with an IN list prepares once per
// list length).
func newStmtPool(db *sql.DB, max int) *stmtPool {
	return &stmtPool{db: db, max: max, stmts: make(map[string]*list.Element)}
}

// maxPooledParams is the most placeholders of a statement the pool keeps.
// Longer ones are IN lists whose length varies (the outbox deletes up to
// 511 ids): kept, each length would push the steady statements out.
const maxPooledParams = 32

// pooled says whether query goes through the pool's statements. Statements
// without parameters (SAVEPOINT w3, ROLLBACK TO, DDL) are cheap to parse,
// differ by name, and MySQL 8 refuses to prepare savepoints: they run as
// they are.
func pooled(query string) bool {
	if strings.HasPrefix(query, batchStmt) {
		return true
	}
	n := strings.Count(query, "?")
	return n > 0 && n <= maxPooledParams
}

// usePreparedPool makes db run its statements through a stmtPool.
func usePreparedPool(db *gorm.DB, max int) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	pool := newStmtPool(sqlDB, max)
	db.ConnPool = pool
	db.Statement.ConnPool = pool
	return nil
}

// acquire returns the prepared statement of query, preparing it on first
// use; release must follow once the caller is done with it. A query the
// pool does not keep (pooled) gets nil, to run as it is.
//
// The preparation belongs to the pool, not to the call that started it: it
// runs beside the calls, bounded by prepareTimeout rather than their
// contexts, so that one call's cancellation does not fail the others
// waiting for the same statement; each waits until its own context ends.
func (p *stmtPool) acquire(ctx context.Context, query string) (*pooledStmt, error) {
	if !pooled(query) {
		return nil, nil
	}
	p.mu.Lock()
	ps, found := p.lookupLocked(query)
	p.mu.Unlock()
	if !found {
		go p.prepare(ps)
	}
	select {
	case <-ps.ready:
	case <-ctx.Done():
		p.release(ps)
		return nil, ctx.Err()
	}
	if ps.err != nil {
		p.release(ps)
		return nil, ps.err
	}
	return ps, nil
}

// prepareTimeout bounds the preparation of one statement.
const prepareTimeout = 10 * time.Second

// acquireInTx is acquire for a transaction: it never waits for a
// connection, since the transaction may hold the only one (SQLite's writer).
// Until the statement is prepared for the pool it returns nil, and the
// caller runs the query on the transaction as it is; a first use starts
// that preparation in the background, where it waits for a free connection.
func (p *stmtPool) acquireInTx(query string) *pooledStmt {
	if !pooled(query) {
		return nil
	}
	p.mu.Lock()
	ps, found := p.lookupLocked(query)
	p.mu.Unlock()
	if !found {
		go p.prepare(ps)
		p.release(ps)
		return nil
	}
	select {
	case <-ps.ready:
		if ps.err == nil {
			return ps
		}
	default:
	}
	p.release(ps)
	return nil
}

// lookupLocked finds the statement of query, or adds a new one to prepare
// (found false); either way it counts the caller as a user.
func (p *stmtPool) lookupLocked(query string) (ps *pooledStmt, found bool) {
	if el, ok := p.stmts[query]; ok {
		ps = el.Value.(*pooledStmt)
		ps.users++
		p.lru.MoveToFront(el)
		return ps, true
	}
	ps = &pooledStmt{query: query, ready: make(chan struct{}), users: 1}
	p.stmts[query] = p.lru.PushFront(ps)
	for p.lru.Len() > p.max {
		old := p.lru.Back().Value.(*pooledStmt)
		if s := p.dropLocked(old); s != nil {
			// Closing waits for the statement's open rows; not under
			// the lock.
			go s.Close()
		}
	}
	return ps, false
}

// prepare prepares ps for the pool, outside the lock: on MySQL it is a
// round trip. A failure drops ps so that a later use tries again.
func (p *stmtPool) prepare(ps *pooledStmt) {
	ctx, cancel := context.WithTimeout(context.Background(), prepareTimeout)
	defer cancel()
	stmt, err := p.db.PrepareContext(ctx, ps.query)
	p.mu.Lock()
	ps.stmt, ps.err = stmt, err
	if err != nil && !ps.evicted {
		p.dropLocked(ps)
	}
	orphan := err == nil && ps.evicted && ps.users == 0
	p.mu.Unlock()
	close(ps.ready)
	if orphan {
		_ = stmt.Close()
	}
}

// dropLocked removes ps from the pool and returns its statement if nobody
// is running it, for the caller to close outside the lock.
func (p *stmtPool) dropLocked(ps *pooledStmt) *sql.Stmt {
	el := p.stmts[ps.query]
	delete(p.stmts, ps.query)
	p.lru.Remove(el)
	ps.evicted = true
	if ps.users == 0 {
		return ps.stmt
	}
	return nil
}

func (p *stmtPool) release(ps *pooledStmt) {
	p.mu.Lock()
	ps.users--
	closeNow := ps.evicted && ps.users == 0 && ps.stmt != nil
	p.mu.Unlock()
	if closeNow {
		_ = ps.stmt.Close()
	}
}

// GetDBConn lets gorm.DB.DB find the *sql.DB underneath.
func (p *stmtPool) GetDBConn() (*sql.DB, error) { return p.db, nil }

func (p *stmtPool) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return p.db.PrepareContext(ctx, query)
}

func (p *stmtPool) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ps, err := p.acquire(ctx, query)
	switch {
	case err != nil:
		return nil, err
	case ps == nil:
		return p.db.ExecContext(ctx, query, args...)
	}
	defer p.release(ps)
	return ps.stmt.ExecContext(ctx, args...)
}

// QueryContext runs query; the rows keep the statement open until closed
// (database/sql defers an eviction's close until then).
func (p *stmtPool) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	ps, err := p.acquire(ctx, query)
	switch {
	case err != nil:
		return nil, err
	case ps == nil:
		return p.db.QueryContext(ctx, query, args...)
	}
	defer p.release(ps)
	return ps.stmt.QueryContext(ctx, args...)
}

func (p *stmtPool) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	ps, err := p.acquire(ctx, query)
	if ps == nil || err != nil {
		// Unpooled, or failed: sql.Row has no public constructor carrying
		// an error, and the plain query reports the same failure on Scan.
		return p.db.QueryRowContext(ctx, query, args...)
	}
	defer p.release(ps)
	return ps.stmt.QueryRowContext(ctx, args...)
}

// BeginTx starts a transaction whose statements reuse the pool's.
func (p *stmtPool) BeginTx(ctx context.Context, opts *sql.TxOptions) (gorm.ConnPool, error) {
	tx, err := p.db.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &stmtTx{Tx: tx, pool: p}, nil
}

// stmtTx is a transaction of a stmtPool.
type stmtTx struct {
	*sql.Tx
	pool *stmtPool
}

func (t *stmtTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ps := t.pool.acquireInTx(query)
	if ps == nil {
		return t.Tx.ExecContext(ctx, query, args...)
	}
	defer t.pool.release(ps)
	return t.Tx.StmtContext(ctx, ps.stmt).ExecContext(ctx, args...)
}

func (t *stmtTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	ps := t.pool.acquireInTx(query)
	if ps == nil {
		return t.Tx.QueryContext(ctx, query, args...)
	}
	defer t.pool.release(ps)
	return t.Tx.StmtContext(ctx, ps.stmt).QueryContext(ctx, args...)
}

func (t *stmtTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	ps := t.pool.acquireInTx(query)
	if ps == nil {
		return t.Tx.QueryRowContext(ctx, query, args...)
	}
	defer t.pool.release(ps)
	return t.Tx.StmtContext(ctx, ps.stmt).QueryRowContext(ctx, args...)
}
