package app

import (
	"testing"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// CLEAR_CONV over real sockets: the clearing user's other device reads
// nothing cleared and no longer lists a hidden chat, the peer keeps it all,
// an outsider is refused, and a new message lists the chat again.
func TestE2E_ClearConv(t *testing.T) {
	addr := startHostile(t, nil)
	alice := register(t, addr, "alice", "phone")
	bob := register(t, addr, "bob", "phone")
	eve := register(t, addr, "eve", "phone")
	laptop := dialRaw(t, addr)
	loginRaw(t, laptop, &protocol.LoginReq{Username: bob.name, Password: hostilePassword,
		DeviceId: "laptop"})
	var conv string
	for _, id := range []string{"c1", "c2", "c3"} {
		var ack protocol.SendResp
		alice.wantCall("send "+id, protocol.Op_SEND, textSend(id, bob.id, "", id), &ack,
			common.ErrorCode_OK)
		conv = ack.ConvId
	}

	var cleared protocol.ClearConvResp
	bob.wantCall("clear and hide", protocol.Op_CLEAR_CONV,
		&protocol.ClearConvReq{ConvId: conv, Hide: true}, &cleared, common.ErrorCode_OK)
	if cleared.ClearedSeq != 3 {
		t.Fatalf("cleared_seq = %d, want 3", cleared.ClearedSeq)
	}
	var page protocol.SyncResp
	laptop.wantCall("laptop sync", protocol.Op_SYNC,
		&protocol.SyncReq{ConvId: conv}, &page, common.ErrorCode_OK)
	if len(page.Messages) != 0 || page.HasMore {
		t.Errorf("bob's laptop reads %d messages (has_more %t) after the clear",
			len(page.Messages), page.HasMore)
	}
	if s := convOf(t, laptop, conv); s != nil {
		t.Errorf("bob's laptop lists the hidden chat: %+v", s)
	}
	alice.wantCall("alice sync", protocol.Op_SYNC, &protocol.SyncReq{ConvId: conv}, &page,
		common.ErrorCode_OK)
	if len(page.Messages) != 3 {
		t.Errorf("alice reads %d messages after bob's clear, want 3", len(page.Messages))
	}
	eve.wantCall("outsider clears", protocol.Op_CLEAR_CONV,
		&protocol.ClearConvReq{ConvId: conv}, &cleared, common.ErrorCode_FORBIDDEN)

	var ack protocol.SendResp
	alice.wantCall("send c4", protocol.Op_SEND, textSend("c4", bob.id, "", "c4"), &ack,
		common.ErrorCode_OK)
	s := convOf(t, laptop, conv)
	if s == nil || s.Hidden || s.ClearedSeq != 3 || s.LastMessage == nil ||
		s.LastMessage.Seq != ack.Seq {
		t.Errorf("after a new message bob's laptop lists %+v, want it back with seq %d", s, ack.Seq)
	}
}

// convOf returns conv's summary in a full SYNC_CONVS listing on rc, or nil.
func convOf(t *testing.T, rc *rawConn, conv string) *protocol.ConvSummary {
	t.Helper()
	var resp protocol.SyncConvsResp
	rc.wantCall("sync convs", protocol.Op_SYNC_CONVS, &protocol.SyncConvsReq{Limit: 200}, &resp,
		common.ErrorCode_OK)
	for _, c := range resp.Convs {
		if c.ConvId == conv {
			return c
		}
	}
	return nil
}

// The terminal client against the real system: a /clear on one device is
// told at once on another open client of the same user (NOTIFY cleared).
func TestChat_ClearShowsOnTheOtherDevice(t *testing.T) {
	sys := startSystem(t, baseConfig(t, RoleAll))
	addr := sys.GatewayAddr().String()
	runChat(t, addr, "cbob")
	desk := runChat(t, addr, "cann")
	phone := startChat(t, addr, "--user", "cann", "--device", "phone")
	phone.wait(t, "logged in as cann")
	desk.to(t, "cbob")
	phone.to(t, "cbob")
	desk.say(t, "hello bob")
	phone.wait(t, "cann #1: hello bob")

	desk.say(t, "/clear")
	desk.wait(t, "* cleared the history with cbob up to #1")
	phone.wait(t, "* the history with cbob was cleared up to #1 on another of your devices")
}
