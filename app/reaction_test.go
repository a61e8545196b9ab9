package app

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// REACT over real sockets: the reaction reaches the other member's device
// live as a REACTION event, a device that was offline reads the sum on the
// message in SYNC, and the reaction is not an unread message.
func TestE2E_React(t *testing.T) {
	addr := startHostile(t, nil)
	alice := register(t, addr, "alice", "phone")
	bob := register(t, addr, "bob", "phone")
	var sent protocol.SendResp
	alice.wantCall("send", protocol.Op_SEND, textSend("m1", bob.id, "", "react to me"), &sent,
		common.ErrorCode_OK)
	if m := nextPush(t, bob.rawConn).Message; m.Seq != sent.Seq {
		t.Fatalf("bob's first push is seq %d, want %d", m.Seq, sent.Seq)
	}

	var ack protocol.SendResp
	bob.wantCall("react", protocol.Op_REACT, &protocol.ReactReq{ClientMsgId: "r1",
		ConvId: sent.ConvId, Seq: sent.Seq, Emoji: "👍"}, &ack, common.ErrorCode_OK)
	m := nextPush(t, alice.rawConn).Message
	var ev common.ReactionEvent
	if _, err := ev.FastRead(m.Content); err != nil || m.ContentType !=
		common.ContentType_REACTION || m.Seq != ack.Seq || m.SenderId != bob.id ||
		ev.Seq != sent.Seq || ev.MsgId != sent.MsgId || ev.Emoji != "👍" {
		t.Fatalf("alice's push %+v with %+v (%v)", m, ev, err)
	}
	if m.Reactions != nil {
		t.Errorf("a pushed event carries reactions %v", m.Reactions)
	}
	bob.wantCall("react again", protocol.Op_REACT, &protocol.ReactReq{ClientMsgId: "r2",
		ConvId: sent.ConvId, Seq: sent.Seq, Emoji: "👍"}, &ack, common.ErrorCode_OK)
	if !ack.Duplicate || ack.Seq != 0 {
		t.Errorf("the same reaction again = %+v, want a duplicate with no event", ack)
	}

	laptop := dialRaw(t, addr)
	loginRaw(t, laptop, &protocol.LoginReq{Username: alice.name, Password: hostilePassword,
		DeviceId: "laptop"})
	var page protocol.SyncResp
	laptop.wantCall("laptop sync", protocol.Op_SYNC, &protocol.SyncReq{ConvId: sent.ConvId},
		&page, common.ErrorCode_OK)
	if len(page.Messages) != 2 {
		t.Fatalf("alice's laptop reads %d messages, want the message and its reaction",
			len(page.Messages))
	}
	r := page.Messages[0].Reactions
	if len(r) != 1 || r[0].Emoji != "👍" || r[0].Count != 1 || len(r[0].UserIds) != 1 ||
		r[0].UserIds[0] != bob.id {
		t.Errorf("the message's reactions on alice's laptop: %v", r)
	}
	if s := convOf(t, laptop, sent.ConvId); s == nil || s.LastSeq != 2 || s.Unread != 0 {
		t.Errorf("alice's summary %+v, want last_seq 2 and nothing unread", s)
	}
}

// nextPush returns the first PUSH rc kept while waiting for a reply, or
// else reads the next frame, which must be one.
func nextPush(t *testing.T, rc *rawConn) *protocol.PushMsg {
	t.Helper()
	if len(rc.pushes) > 0 {
		p := rc.pushes[0]
		rc.pushes = rc.pushes[1:]
		return p
	}
	return readPush(t, rc)
}

// The Go SDK's reactions over the real system: Session.React reaches the
// other member's Session and the reactor's own, ReactionEventOf reads the
// event, and Client.React of what one has already changes nothing.
func TestSession_React(t *testing.T) {
	addr := startHostile(t, nil)
	alice := register(t, addr, "alice", "phone")
	bob := register(t, addr, "bob", "phone")
	var sent protocol.SendResp
	alice.wantCall("send", protocol.Op_SEND, textSend("m1", bob.id, "", "react to me"), &sent,
		common.ErrorCode_OK)
	aliceS := openSession(t, addr, alice.name, "tablet")
	bobS := openSession(t, addr, bob.name, "tablet")
	aliceSt, bobSt := collect(t, aliceS), collect(t, bobS)
	aliceSt.waitSeqs(t, "alice", sent.ConvId, []int64{1})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := bobS.React(ctx, sent.ConvId, sent.Seq, "🎉", false)
	if err != nil || ack.Seq != 2 || ack.Duplicate {
		t.Fatalf("Session.React = %+v, %v; want the event at seq 2", ack, err)
	}
	aliceSt.waitSeqs(t, "alice", sent.ConvId, []int64{1, 2})
	bobSt.waitSeqs(t, "bob", sent.ConvId, []int64{1, 2})
	aliceSt.mu.Lock()
	m := aliceSt.msgs[len(aliceSt.msgs)-1]
	aliceSt.mu.Unlock()
	ev, err := client.ReactionEventOf(m)
	if err != nil || m.SenderId != bob.id || ev.Seq != sent.Seq || ev.MsgId != sent.MsgId ||
		ev.Emoji != "🎉" || ev.Removed {
		t.Fatalf("ReactionEventOf(%+v) = %+v, %v", m, ev, err)
	}
	text := &common.Message{ContentType: common.ContentType_TEXT}
	if _, err := client.ReactionEventOf(text); !errors.Is(err, client.ErrBadParams) {
		t.Errorf("ReactionEventOf a text message: %v, want ErrBadParams", err)
	}

	c, err := client.Dial(ctx, addr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Login(ctx, client.LoginParams{Username: bob.name, Password: hostilePassword,
		DeviceID: "laptop"}); err != nil {
		t.Fatal(err)
	}
	dup, err := c.React(ctx, sent.ConvId, sent.Seq, "🎉", false)
	if err != nil || !dup.Duplicate || dup.Seq != 0 {
		t.Errorf("Client.React of a reaction bob has = %+v, %v; want a duplicate", dup, err)
	}
	if _, err := c.React(ctx, sent.ConvId, sent.Seq, "bad emoji", false); client.CodeOf(err) !=
		common.ErrorCode_BAD_REQUEST {
		t.Errorf("Client.React with a space: %v, want BAD_REQUEST", err)
	}
	page, err := c.Sync(ctx, sent.ConvId, 0, 10)
	if err != nil || len(page.Messages) != 2 || len(page.Messages[0].Reactions) != 1 {
		t.Fatalf("bob's laptop syncs %+v, %v; want the message with its reaction", page, err)
	}
}
