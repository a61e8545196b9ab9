package logic

import (
	"strings"
	"sync/atomic"
	"testing"

	"gorm.io/gorm"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// deleteAfterUsersCheck runs the whole deletion of victim's account (both
// passes over its groups) right after the next usersExist query read that
// victim exists, before the group change that asked stores anything: the
// interleaving in which an add checked just before the deletion commits and
// commits after its second pass.
func deleteAfterUsersCheck(t *testing.T, e *env, victim device) *atomic.Bool {
	t.Helper()
	var armed, ran atomic.Bool
	armed.Store(true)
	name := "test:delete_after_users_check"
	err := e.svc.rdb.Callback().Query().After("gorm:query").Register(name, func(db *gorm.DB) {
		sql := db.Statement.SQL.String()
		if strings.Contains(sql, "count(") && strings.Contains(sql, "deleted_ms = 0") &&
			armed.Swap(false) {
			if err := e.deleteAccount(victim.sess, testPassword); err != nil {
				t.Errorf("deleting the added user's account: %v", err)
			}
			ran.Store(true)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.svc.rdb.Callback().Query().Remove(name) })
	return &ran
}

// activeMember reports whether user is an active member of conv.
func (e *env) activeMember(t *testing.T, conv string, user int64) bool {
	t.Helper()
	return e.countRows(t, &memberRow{}, "conv_id = ? AND user_id = ? AND left_seq = 0",
		conv, user) > 0
}

func TestCreateGroup_RacingMemberDeletionAddsNoDeletedUser(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		ran := deleteAfterUsersCheck(t, e, e.loginDevice(t, "bob", "phone", 5))
		resp, err := e.svc.CreateGroup(ctxBG, session(alice, 1), &protocol.CreateGroupReq{
			ClientMsgId: "create-race", Name: "g", MemberIds: []int64{bob}})
		if !ran.Load() {
			t.Fatal("the deletion never ran")
		}
		if err == nil && e.activeMember(t, resp.ConvId, bob) {
			t.Fatalf("group %s made with the deleted user %d as a member", resp.ConvId, bob)
		}
		wantCode(t, err, common.ErrorCode_NOT_FOUND)
	})
}

func TestManageGroupAdd_RacingMemberDeletionAddsNoDeletedUser(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob, carol := e.register(t, "alice"), e.register(t, "bob"), e.register(t, "carol")
		g := e.group(t, alice, "g", carol)
		ran := deleteAfterUsersCheck(t, e, e.loginDevice(t, "bob", "phone", 5))
		_, err := e.manage(alice, g, common.GroupAction_ADD, []int64{bob}, "", 0)
		if !ran.Load() {
			t.Fatal("the deletion never ran")
		}
		if e.activeMember(t, g, bob) {
			t.Fatalf("the deleted user %d was added to %s", bob, g)
		}
		wantCode(t, err, common.ErrorCode_NOT_FOUND)
	})
}
