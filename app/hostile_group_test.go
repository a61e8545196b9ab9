package app

import (
	"testing"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

func TestHostile_Groups(t *testing.T) {
	hostileGroups(t, startHostile(t, nil))
}

// hostileGroups: an outsider, a plain member and a removed member try what
// their role does not allow, over raw frames. Each gets its code and the
// group's history holds only what was allowed.
func hostileGroups(t *testing.T, addr string) {
	owner := register(t, addr, "gowner", "phone")
	mem := register(t, addr, "gmem", "phone")
	gone := register(t, addr, "ggone", "phone")
	eve := register(t, addr, "geve", "laptop")
	var created protocol.GroupChangeResp
	owner.wantCall("create", protocol.Op_CREATE_GROUP, &protocol.CreateGroupReq{
		ClientMsgId: "c1", Name: "G", MemberIds: []int64{mem.id, gone.id}}, &created,
		common.ErrorCode_OK)
	g := created.ConvId
	var ack protocol.SendResp
	mem.wantCall("member says hi", protocol.Op_SEND, textSend("m1", 0, g, "hi"), &ack,
		common.ErrorCode_OK)
	var change protocol.GroupChangeResp
	owner.wantCall("remove gone", protocol.Op_MANAGE_GROUP, &protocol.ManageGroupReq{
		ClientMsgId: "r1", ConvId: g, Action: common.GroupAction_REMOVE,
		UserIds: []int64{gone.id}}, &change, common.ErrorCode_OK)
	last := change.Seq

	forbidden := common.ErrorCode_FORBIDDEN
	manage := func(id string, action common.GroupAction, ids ...int64) *protocol.ManageGroupReq {
		return &protocol.ManageGroupReq{ClientMsgId: id, ConvId: g, Action: action, UserIds: ids,
			Name: "pwned", Role: common.GroupRole_OWNER}
	}
	cases := []struct {
		who  *account
		name string
		op   protocol.Op
		req  codec.Body
		resp codec.Readable
		want common.ErrorCode
	}{
		{eve, "outsider reads", protocol.Op_SYNC, &protocol.SyncReq{ConvId: g},
			&protocol.SyncResp{}, forbidden},
		{eve, "outsider reads backward", protocol.Op_SYNC,
			&protocol.SyncReq{ConvId: g, BeforeSeq: 1 << 62}, &protocol.SyncResp{}, forbidden},
		{eve, "outsider sends", protocol.Op_SEND, textSend("e1", 0, g, "x"),
			&protocol.SendResp{}, forbidden},
		{eve, "outsider reads the members", protocol.Op_GET_GROUP,
			&protocol.GetGroupReq{ConvId: g}, &protocol.GroupInfo{}, forbidden},
		{eve, "outsider adds herself", protocol.Op_MANAGE_GROUP,
			manage("e2", common.GroupAction_ADD, eve.id), &protocol.GroupChangeResp{},
			common.ErrorCode_BAD_REQUEST}, // naming only oneself is no change
		{eve, "outsider renames", protocol.Op_MANAGE_GROUP,
			manage("e3", common.GroupAction_RENAME), &protocol.GroupChangeResp{}, forbidden},
		{eve, "outsider counts readers", protocol.Op_READ_COUNTS,
			&protocol.ReadCountsReq{ConvId: g, Seqs: []int64{1}}, &protocol.ReadCountsResp{},
			forbidden},
		{eve, "outsider marks read", protocol.Op_MARK_READ,
			&protocol.MarkReadReq{ConvId: g, Seq: 1}, &protocol.MarkReadResp{}, forbidden},
		{eve, "outsider recalls a member's message", protocol.Op_RECALL,
			&protocol.RecallReq{ClientMsgId: "e4", ConvId: g, Seq: ack.Seq},
			&protocol.SendResp{}, forbidden},
		{mem, "member removes the owner", protocol.Op_MANAGE_GROUP,
			manage("m2", common.GroupAction_REMOVE, owner.id), &protocol.GroupChangeResp{},
			forbidden},
		{mem, "member takes ownership", protocol.Op_MANAGE_GROUP,
			&protocol.ManageGroupReq{ClientMsgId: "m3", ConvId: g,
				Action: common.GroupAction_SET_ROLE, UserIds: []int64{owner.id},
				Role: common.GroupRole_MEMBER}, &protocol.GroupChangeResp{}, forbidden},
		{mem, "member dismisses", protocol.Op_MANAGE_GROUP,
			manage("m4", common.GroupAction_DISMISS), &protocol.GroupChangeResp{}, forbidden},
		{owner, "owner edits a member's message", protocol.Op_EDIT,
			&protocol.EditReq{ClientMsgId: "o1", ConvId: g, Seq: ack.Seq,
				ContentType: common.ContentType_TEXT, Content: []byte("x")},
			&protocol.SendResp{}, forbidden},
		{gone, "removed member sends", protocol.Op_SEND, textSend("g1", 0, g, "x"),
			&protocol.SendResp{}, forbidden},
		{gone, "removed member re-adds himself", protocol.Op_MANAGE_GROUP,
			manage("g2", common.GroupAction_ADD, mem.id), &protocol.GroupChangeResp{}, forbidden},
	}
	for _, tc := range cases {
		tc.who.wantCall(tc.name, tc.op, tc.req, tc.resp, tc.want)
	}
	// Later messages never reach the removed member, by push or by sync.
	mem.wantCall("member after removal", protocol.Op_SEND, textSend("m5", 0, g, "secret"),
		&ack, common.ErrorCode_OK)
	var page protocol.SyncResp
	gone.wantCall("removed member syncs", protocol.Op_SYNC, &protocol.SyncReq{ConvId: g},
		&page, common.ErrorCode_OK)
	if n := len(page.Messages); n == 0 || page.Messages[n-1].Seq != last || page.LastSeq != last {
		t.Fatalf("removed member reads up to %v (last %d), want up to his removal %d",
			page.Messages, page.LastSeq, last)
	}
	for _, p := range gone.pushes {
		if p.Message.GetConvId() == g && p.Message.Seq > last {
			t.Fatalf("removed member was pushed seq %d", p.Message.Seq)
		}
	}
	if n := owner.convLen(g); n != ack.Seq || ack.Seq != last+1 {
		t.Fatalf("group holds %d messages after the attempts, want %d", n, last+1)
	}
}
