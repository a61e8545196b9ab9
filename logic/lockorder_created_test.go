package logic

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"gorm.io/gorm"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// A savepoint batch locks its conversations first, in the index's order
// (lockBatchConvs). A 1:1 conversation without a row then has no lock, and
// when another writer creates its row while the batch runs (racing first
// senders, or the retry of a first send after createConv), the batch's
// write to it must not lock it then: that lock comes after the batch's
// later conversations, out of the order every other batch locks in, and a
// batch holding the new row that waits for one of those deadlocks with it.
//
// The test plays that other batch with its statement (readConvs'): once
// the batch has locked x and z (y has no row yet), y is created and the
// other transaction locks y, then waits for z. The batch's write to y then
// waited for y, and InnoDB broke the cycle by failing the other one with a
// deadlock; it now fails that write as a conversation without a row
// (errNoConv, which the sender's retry handles), and the other transaction
// takes z once the batch commits.
func TestGroupCommit_ConversationCreatedMidBatchIsNotLockedOutOfOrder(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		if e.cfg.DBDriver != DriverMySQL {
			t.Skip("SQLite has one writer: its batches never wait for each other")
		}
		e.svc.consecutiveIDs = false // the savepoint path
		users := make([]int64, 4)
		for i := range users {
			users[i] = e.register(t, "cuser"+string(rune('a'+i)))
		}
		// Ids of one length that sort alike bytewise and in any collation.
		x, y, z := p2pConvID(users[0], users[1]), p2pConvID(users[0], users[2]),
			p2pConvID(users[0], users[3])
		if !(x < y && y < z) {
			t.Fatalf("ids %q %q %q not in order", x, y, z)
		}
		for _, to := range []int64{users[1], users[3]} {
			_, err := e.svc.Send(ctxBG, session(users[0], 1), &protocol.SendReq{ClientMsgId: "open",
				ToUserId: to, ContentType: common.ContentType_TEXT, Content: []byte("hi")})
			if err != nil {
				t.Fatal(err)
			}
		}
		sqlDB, err := e.db.DB()
		if err != nil {
			t.Fatal(err)
		}
		conv := e.svc.tables.conv
		ctx := context.Background()
		other := make(chan error, 1)
		var otherTx *sql.Tx
		defer func() {
			if otherTx != nil {
				_ = otherTx.Rollback()
			}
		}()
		first := textItem(x, users[0], "to-x", func(tx *gorm.DB, c *convRow, m *messageRow) ([]int64, error) {
			r, err := e.svc.sendApply(tx, c, m)
			if err != nil {
				return nil, err
			}
			// The batch holds x and z. y's row is created now, and another
			// batch locks y, then z.
			if err := e.svc.createConv(ctx, y, time.Now()); err != nil {
				t.Errorf("create %s: %v", y, err)
				return r, nil
			}
			otherTx, err = sqlDB.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
			if err != nil {
				t.Errorf("begin: %v", err)
				return r, nil
			}
			go func() {
				_, err := otherTx.Exec("SELECT id FROM "+conv+" WHERE id IN (?, ?) ORDER BY id FOR UPDATE", y, z)
				other <- err
			}()
			waitLocked(t, sqlDB, conv, y)
			return r, nil
		})
		items := []*batchItem{
			first,
			textItem(y, users[0], "to-y", e.svc.sendApply),
			textItem(z, users[0], "to-z", e.svc.sendApply),
		}
		items[1].w.peerCheck = true
		e.svc.commitBatch(items)
		var me *gomysql.MySQLError
		select {
		case err := <-other:
			if errors.As(err, &me) && me.Number == mysqlDeadlock {
				t.Fatalf("the other batch deadlocked with the batch: its write to %s locked "+
					"the new row after %s: %v", y, z, err)
			}
			if err != nil {
				t.Fatalf("the other batch's lock: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the other batch still waits after the batch committed")
		}
		_ = otherTx.Rollback()
		for i, it := range items {
			r := <-it.done
			switch {
			case i == 1 && !errors.Is(r.err, errNoConv) && r.err != nil:
				t.Errorf("write to %s: %v, want it stored or %v", it.w.m.ConvID, r.err, errNoConv)
			case i != 1 && r.err != nil:
				t.Errorf("write to %s: %v", it.w.m.ConvID, r.err)
			}
		}
	})
}

// waitLocked waits until id's conversation row is locked by someone else.
func waitLocked(t *testing.T, db *sql.DB, conv, id string) {
	t.Helper()
	if !lockedWithin(t, db, conv, id, 5*time.Second) {
		t.Fatalf("%s never locked", id)
	}
}
