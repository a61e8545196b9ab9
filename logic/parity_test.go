package logic

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/resonance-im/resonance/internal/testwait"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// updateParity rewrites testdata/parity_*.golden from the code under test.
// The goldens were written by the GORM statements the hand-written ones of
// queries.go replaced (57b6384), so that the rows they leave stay the same.
var updateParity = flag.Bool("update-parity", false, "rewrite the parity goldens")

// parityEpoch is the service clock of TestStore_RowsAsGORMLeftThem: a time
// of that year in a dump came from the service, any other from the wall.
var parityEpoch = time.Date(2001, 2, 3, 4, 5, 6, 789_000_000, time.UTC)

// TestStore_RowsAsGORMLeftThem runs sends, a retry, a group and its
// changes, a reply with mentions and an @all, a recall, an edit, a block and
// token logins, then compares every row they left, as the driver returns
// them (types, time zones, NULLs), with what the GORM statements left (and
// the columns added since, as this code left them).
func TestStore_RowsAsGORMLeftThem(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		var tick atomic.Int64
		e.svc.now = func() time.Time {
			return parityEpoch.Add(time.Duration(tick.Add(1)) * time.Millisecond)
		}
		group := runParityScenario(t, e)
		got := dumpTables(t, e, group)
		name := filepath.Join("testdata", "parity_"+e.cfg.DBDriver+".golden")
		if *updateParity {
			if err := os.WriteFile(name, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		want, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if got != string(want) {
			t.Errorf("rows differ from GORM's (%s):\n%s", name, lineDiff(string(want), got))
		}
	})
}

// runParityScenario makes the writes TestStore_RowsAsGORMLeftThem compares,
// one at a time, and returns the group's id.
func runParityScenario(t *testing.T, e *env) string {
	t.Helper()
	alice, bob, carol := e.register(t, "alice"), e.register(t, "bob"), e.register(t, "carol")
	first := e.sendN(t, alice, bob, 2, "p")
	conv := first.ConvId
	if _, err := e.svc.Send(ctxBG, session(bob, 2), textReq("b1", alice)); err != nil {
		t.Fatal(err)
	}
	// A retry stores nothing.
	again, err := e.svc.Send(ctxBG, session(bob, 2), textReq("b1", alice))
	if err != nil || !again.Duplicate {
		t.Fatalf("retry = %+v, %v", again, err)
	}
	created, err := e.svc.CreateGroup(ctxBG, session(alice, 1), &protocol.CreateGroupReq{
		ClientMsgId: "g1", Name: "g", MemberIds: []int64{bob}})
	if err != nil {
		t.Fatal(err)
	}
	group := created.ConvId
	if _, err := e.sendTo(bob, group, "to the group"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.ManageGroup(ctxBG, session(alice, 1), &protocol.ManageGroupReq{
		ClientMsgId: "add", ConvId: group, Action: common.GroupAction_ADD,
		UserIds: []int64{carol}}); err != nil {
		t.Fatal(err)
	}
	// A reply mentioning two members, and an @all: the new columns and
	// the members' mention positions.
	if _, err := e.svc.Send(ctxBG, session(alice, 1),
		quoteReq("q1", group, 2, false, carol, bob, carol)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Send(ctxBG, session(alice, 1), quoteReq("q2", group, 0, true)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Recall(ctxBG, session(alice, 1),
		&protocol.RecallReq{ClientMsgId: "r1", ConvId: conv, Seq: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Edit(ctxBG, session(alice, 1), &protocol.EditReq{ClientMsgId: "e1",
		ConvId: conv, Seq: 2, ContentType: common.ContentType_TEXT,
		Content: []byte("edited")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.MarkRead(ctxBG, session(bob, 2),
		&protocol.MarkReadReq{ConvId: conv, Seq: 5}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Block(ctxBG, session(carol, 3),
		&protocol.BlockReq{UserId: alice, Blocked: true}); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Send(ctxBG, session(alice, 1), textReq("blocked", carol))
	wantCode(t, err, common.ErrorCode_FORBIDDEN)

	// Token logins: the first records the platform, the second is fresh.
	resp, err := e.svc.Login(ctxBG, &protocol.LoginReq{Username: "bob", Password: testPassword,
		DeviceId: "tab"}, testConn)
	if err != nil {
		t.Fatal(err)
	}
	for _, platform := range []string{"ios", ""} {
		if _, err := e.svc.Login(ctxBG, &protocol.LoginReq{Token: resp.Token, DeviceId: "tab",
			Platform: platform}, testConn); err != nil {
			t.Fatal(err)
		}
	}
	return group
}

// parityTables are the tables a dump holds, with the columns that order
// their rows. The outbox is left out: the publisher deletes its rows.
var parityTables = []struct {
	model any
	order string
}{
	{&userRow{}, "id"},
	{&convRow{}, "type, id"},
	{&memberRow{}, "conv_id, user_id"},
	{&messageRow{}, "id"},
	{&deviceRow{}, "user_id, device_id"},
	{&blockRow{}, "blocker_id, blocked_id"},
}

// dumpTables prints every row of parityTables as the writer's driver
// returns it, with the values that differ per run (hashes, group ids, wall
// clock times) masked.
func dumpTables(t *testing.T, e *env, group string) string {
	t.Helper()
	sqlDB, err := e.db.DB()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, tb := range parityTables {
		stmt := e.db.Model(tb.model).Statement
		if err := stmt.Parse(tb.model); err != nil {
			t.Fatal(err)
		}
		table := strings.TrimPrefix(stmt.Schema.Table, e.cfg.TablePrefix)
		fmt.Fprintf(&b, "== %s\n", table)
		dumpRows(t, &b, sqlDB, "SELECT * FROM `"+stmt.Schema.Table+"` ORDER BY "+tb.order)
	}
	return strings.ReplaceAll(b.String(), group, "<group>")
}

func dumpRows(t *testing.T, b *strings.Builder, db *sql.DB, query string) {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, c := range cols {
			fmt.Fprintf(b, " %s=%s", c, dumpValue(c, vals[i]))
		}
		b.WriteString("\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

func dumpValue(col string, v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case time.Time:
		if x.Year() != parityEpoch.Year() {
			return fmt.Sprintf("time(<wall> %s)", x.Location())
		}
		return fmt.Sprintf("time(%s %s)", x.Format(time.RFC3339Nano), x.Location())
	case []byte:
		if strings.HasSuffix(col, "hash") && len(x) > 0 {
			return "bytes(<hash>)"
		}
		return fmt.Sprintf("bytes(%q)", x)
	case string:
		if strings.HasSuffix(col, "hash") && x != "" {
			return "string(<hash>)"
		}
		return fmt.Sprintf("string(%q)", x)
	}
	return fmt.Sprintf("%T(%v)", v, v)
}

// lineDiff lists the lines of got that differ from want's.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d\n want %s\n  got %s\n", i+1, wl, gl)
		}
	}
	return b.String()
}

// A retry's insert fails with gorm.ErrDuplicatedKey, the error the retried
// send relies on, whether the hand-written INSERT runs as it is (its first
// use in a transaction) or prepared, alone in its batch or under a
// savepoint among others.
func TestGroupCommit_DuplicateInsertIsErrDuplicatedKey(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		if _, err := e.svc.Send(ctxBG, session(alice, 1), textReq("first", bob)); err != nil {
			t.Fatal(err)
		}
		conv := p2pConvID(alice, bob)
		item := func(client string) *batchItem {
			return textItem(conv, alice, client, e.svc.sendApply)
		}
		for round := range 3 {
			batches := [][]*batchItem{{item("first")},
				{item(fmt.Sprintf("n%d", round)), item("first")}}
			for _, items := range batches {
				e.svc.commitBatch(items)
				r := <-items[len(items)-1].done
				if !errors.Is(r.err, gorm.ErrDuplicatedKey) {
					t.Fatalf("round %d, batch of %d: err = %v (%T), want ErrDuplicatedKey",
						round, len(items), r.err, r.err)
				}
				for _, it := range items[:len(items)-1] {
					if r := <-it.done; r.err != nil {
						t.Fatalf("round %d: %v", round, r.err)
					}
				}
			}
			// The next rounds run the INSERT prepared.
			testwait.For(t, 5*time.Second, "insert prepared", func() bool {
				return prepared(e.svc.db, e.svc.queries.insertMessage)
			})
		}
	})
}

// prepared says whether db's statement pool holds query prepared.
func prepared(db *gorm.DB, query string) bool {
	p := db.Statement.ConnPool.(*stmtPool)
	p.mu.Lock()
	el, ok := p.stmts[query]
	p.mu.Unlock()
	if !ok {
		return false
	}
	select {
	case <-el.Value.(*pooledStmt).ready:
		return el.Value.(*pooledStmt).err == nil
	default:
		return false
	}
}
