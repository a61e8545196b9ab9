package logic

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Two commit workers lock the conversations of their batches in one order,
// the id index's, on both the plain and the savepoint path, whatever the
// collation of the id column. The savepoint path used to lock one by one in
// the batch's bytewise order, and under a collation that sorts ':' before
// digits (MySQL 8's default; MariaDB's utf8mb4_unicode_ci here) a plain and
// a savepoint batch over the same two conversations could deadlock.
//
// The test holds the conversation that comes second in the index and lets a
// batch of both run: in index order the batch takes the first and waits for
// the second, so the first is then found locked.
func TestGroupCommit_LocksConversationsInIndexOrder(t *testing.T) {
	for _, path := range []string{"plain", "savepoint"} {
		t.Run(path, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, e *env) {
				if e.cfg.DBDriver != DriverMySQL {
					t.Skip("SQLite has one writer: its batches never wait for each other")
				}
				testLockOrder(t, e, path == "plain")
			})
		})
	}
}

// MySQL's and MariaDB's errors for a lock not taken: after the wait, and at
// once under NOWAIT (MySQL 8; MariaDB reports NOWAIT as a wait timeout).
const (
	errLockWaitTimeout = 1205
	errLockNowait      = 3572
)

func testLockOrder(t *testing.T, e *env, plain bool) {
	conv := e.svc.tables.conv
	if err := e.db.Exec("ALTER TABLE " + conv +
		" CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci").Error; err != nil {
		t.Fatal(err)
	}
	e.svc.consecutiveIDs = plain // off: the savepoint path
	users := make([]int64, 12)
	for i := range users {
		users[i] = e.register(t, "user"+string(rune('a'+i)))
	}
	// "p2p:1:2" and "p2p:11:12": bytewise the second sorts first (':' is
	// after the digits), in the index the first.
	x, y := p2pConvID(users[0], users[1]), p2pConvID(users[10], users[11])
	for _, pair := range [][2]int64{{users[0], users[1]}, {users[10], users[11]}} {
		_, err := e.svc.Send(ctxBG, session(pair[0], 1), &protocol.SendReq{ClientMsgId: "open",
			ToUserId: pair[1], ContentType: common.ContentType_TEXT, Content: []byte("hi")})
		if err != nil {
			t.Fatal(err)
		}
	}
	var first string
	if err := e.db.Raw("SELECT id FROM "+conv+" WHERE id IN (?, ?) ORDER BY id", x, y).
		Row().Scan(&first); err != nil {
		t.Fatal(err)
	}
	if first != x || strings.Compare(y, x) >= 0 {
		t.Fatalf("index puts %q first of %q and %q: the collation did not change", first, x, y)
	}

	sqlDB, err := e.db.DB()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	holder, err := sqlDB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback() // a no-op once the test let go of y
	if _, err := holder.Exec("SELECT id FROM "+conv+" WHERE id = ? FOR UPDATE", y); err != nil {
		t.Fatal(err)
	}

	items := []*batchItem{
		textItem(x, users[0], "to-x", e.svc.sendApply),
		textItem(y, users[10], "to-y", e.svc.sendApply),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.svc.commitBatch(items)
	}()
	// Once the batch waits for y, x is locked if the batch took it first.
	// A probe that gets x lets go of it at once.
	locked := lockedWithin(t, sqlDB, conv, x, 2*time.Second)
	if err := holder.Rollback(); err != nil {
		t.Fatal(err)
	}
	<-done
	if !locked {
		t.Errorf("%s stayed free while the batch waited for %s: it locks in bytewise order, "+
			"not the index's", x, y)
	}
	for _, it := range items {
		if r := <-it.done; r.err != nil {
			t.Errorf("send to %s: %v", it.w.m.ConvID, r.err)
		}
	}
}

// lockedWithin reports whether someone else holds the lock of id's
// conversation row, probing until timeout. A probe that gets the lock lets go
// of it at once.
func lockedWithin(t *testing.T, db *sql.DB, conv, id string, timeout time.Duration) bool {
	t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); {
		probe, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = probe.Exec("SELECT id FROM "+conv+" WHERE id = ? FOR UPDATE NOWAIT", id)
		_ = probe.Rollback()
		var me *gomysql.MySQLError
		switch {
		case errors.As(err, &me) && (me.Number == errLockWaitTimeout || me.Number == errLockNowait):
			return true
		case err != nil:
			t.Fatalf("probe %s: %v", id, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}
