package logic

import (
	"context"
	"testing"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// FuzzManageGroup feeds arbitrary group changes by a plain member to
// ManageGroup: nothing fails on the server's side, and a member never gets a
// change the role table forbids.
func FuzzManageGroup(f *testing.F) {
	e := newEnv(f, sqliteConfig(f))
	owner, mem, other := e.register(f, "owner"), e.register(f, "mem"), e.register(f, "other")
	resp, err := e.svc.CreateGroup(context.Background(), session(owner, 1),
		&protocol.CreateGroupReq{ClientMsgId: "c", Name: "G", MemberIds: []int64{mem}})
	if err != nil {
		f.Fatal(err)
	}
	g := resp.ConvId
	f.Add("m1", g, int32(2), other, "x", int32(1))
	f.Add("m2", g, int32(3), owner, "", int32(3))
	f.Add("m3", g, int32(6), owner, "", int32(3))
	f.Add("m4", "g:"+g[2:], int32(5), int64(0), "\xff", int32(0))
	f.Add("'; --", "p2p:1:2", int32(99), int64(-1), "", int32(-1))
	f.Fuzz(func(t *testing.T, clientID, conv string, action int32, user int64, name string,
		role int32) {
		req := &protocol.ManageGroupReq{ClientMsgId: clientID, ConvId: conv,
			Action: common.GroupAction(action), UserIds: []int64{user}, Name: name,
			Role: common.GroupRole(role)}
		ack, err := e.svc.ManageGroup(context.Background(), session(mem, 1), req)
		wantClientError(t, err)
		// A reused client id answers with the change first stored under it.
		if err == nil && !ack.Duplicate && req.Action != common.GroupAction_LEAVE {
			t.Fatalf("a member was allowed %+v", req)
		}
	})
}
