package app

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// PIN over real sockets, through the gateway: bob pins alice's message,
// alice's phone gets the PIN event live, her laptop (a second device,
// logged in afterwards) reads the pin from SYNC_CONVS without the event,
// a repeat is a duplicate, and an unpin reaches both of her devices.
func TestE2E_Pin(t *testing.T) {
	addr := startHostile(t, nil)
	alice := register(t, addr, "alice", "phone")
	bob := register(t, addr, "bob", "phone")
	var sent protocol.SendResp
	alice.wantCall("send", protocol.Op_SEND, textSend("m1", bob.id, "", "pin me"), &sent,
		common.ErrorCode_OK)
	if m := nextPush(t, bob.rawConn).Message; m.Seq != sent.Seq {
		t.Fatalf("bob's first push is seq %d, want %d", m.Seq, sent.Seq)
	}

	var ack protocol.SendResp
	bob.wantCall("pin", protocol.Op_PIN, &protocol.PinReq{ClientMsgId: "p1",
		ConvId: sent.ConvId, Seq: sent.Seq}, &ack, common.ErrorCode_OK)
	m := nextPush(t, alice.rawConn).Message
	var ev common.PinEvent
	if _, err := ev.FastRead(m.Content); err != nil || m.ContentType != common.ContentType_PIN ||
		m.Seq != ack.Seq || m.SenderId != bob.id || ev.Seq != sent.Seq ||
		ev.MsgId != sent.MsgId || ev.Unpinned {
		t.Fatalf("alice's push %+v with %+v (%v)", m, ev, err)
	}
	bob.wantCall("pin again", protocol.Op_PIN, &protocol.PinReq{ClientMsgId: "p2",
		ConvId: sent.ConvId, Seq: sent.Seq}, &ack, common.ErrorCode_OK)
	if !ack.Duplicate || ack.Seq != 0 {
		t.Errorf("the same pin again = %+v, want a duplicate with no event", ack)
	}
	bob.wantCall("pin an event", protocol.Op_PIN, &protocol.PinReq{ClientMsgId: "p3",
		ConvId: sent.ConvId, Seq: m.Seq}, &ack, common.ErrorCode_BAD_REQUEST)

	laptop := dialRaw(t, addr)
	loginRaw(t, laptop, &protocol.LoginReq{Username: alice.name, Password: hostilePassword,
		DeviceId: "laptop"})
	if s := convOf(t, laptop, sent.ConvId); s == nil ||
		!slices.Equal(s.PinnedSeqs, []int64{sent.Seq}) {
		t.Fatalf("alice's laptop lists %+v, want pinned_seqs [%d]", s, sent.Seq)
	}

	alice.wantCall("unpin", protocol.Op_PIN, &protocol.PinReq{ClientMsgId: "u1",
		ConvId: sent.ConvId, Seq: sent.Seq, Unpin: true}, &ack, common.ErrorCode_OK)
	m = nextPush(t, laptop).Message
	if _, err := ev.FastRead(m.Content); err != nil || m.ContentType != common.ContentType_PIN ||
		m.Seq != ack.Seq || !ev.Unpinned || ev.Seq != sent.Seq {
		t.Fatalf("the laptop's push %+v with %+v (%v)", m, ev, err)
	}
	if m := nextPush(t, bob.rawConn).Message; m.Seq != ack.Seq {
		t.Fatalf("bob's push is seq %d, want the unpin at %d", m.Seq, ack.Seq)
	}
	if s := convOf(t, laptop, sent.ConvId); s == nil || s.PinnedSeqs != nil {
		t.Fatalf("alice's laptop lists %+v after the unpin, want no pins", s)
	}
}

// The Go SDK's pins over the real system: Session.Pin reaches the other
// member's Session, PinEventOf reads the event, and SyncConvs carries the
// pin to a Client that saw no event.
func TestSession_Pin(t *testing.T) {
	addr := startHostile(t, nil)
	alice := register(t, addr, "alice", "phone")
	bob := register(t, addr, "bob", "phone")
	var sent protocol.SendResp
	alice.wantCall("send", protocol.Op_SEND, textSend("m1", bob.id, "", "pin me"), &sent,
		common.ErrorCode_OK)
	aliceS := openSession(t, addr, alice.name, "tablet")
	bobS := openSession(t, addr, bob.name, "tablet")
	aliceSt := collect(t, aliceS)
	aliceSt.waitSeqs(t, "alice", sent.ConvId, []int64{1})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := bobS.Pin(ctx, sent.ConvId, sent.Seq, false)
	if err != nil || ack.Seq != 2 || ack.Duplicate {
		t.Fatalf("Session.Pin = %+v, %v; want the event at seq 2", ack, err)
	}
	aliceSt.waitSeqs(t, "alice", sent.ConvId, []int64{1, 2})
	aliceSt.mu.Lock()
	m := aliceSt.msgs[len(aliceSt.msgs)-1]
	aliceSt.mu.Unlock()
	ev, err := client.PinEventOf(m)
	if err != nil || m.SenderId != bob.id || ev.Seq != sent.Seq || ev.MsgId != sent.MsgId ||
		ev.Unpinned {
		t.Fatalf("PinEventOf(%+v) = %+v, %v", m, ev, err)
	}
	text := &common.Message{ContentType: common.ContentType_TEXT}
	if _, err := client.PinEventOf(text); !errors.Is(err, client.ErrBadParams) {
		t.Errorf("PinEventOf a text message: %v, want ErrBadParams", err)
	}

	c, err := client.Dial(ctx, addr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Login(ctx, client.LoginParams{Username: alice.name,
		Password: hostilePassword, DeviceID: "laptop"}); err != nil {
		t.Fatal(err)
	}
	if got := c.Limits().MaxPins; got != client.DefaultMaxPins {
		t.Errorf("Client.Limits().MaxPins = %d, want %d", got, client.DefaultMaxPins)
	}
	dup, err := c.Pin(ctx, sent.ConvId, sent.Seq, false)
	if err != nil || !dup.Duplicate || dup.Seq != 0 {
		t.Errorf("Client.Pin of a pinned message = %+v, %v; want a duplicate", dup, err)
	}
	if _, err := c.Pin(ctx, sent.ConvId, 99, false); client.CodeOf(err) !=
		common.ErrorCode_NOT_FOUND {
		t.Errorf("Client.Pin of a missing seq: %v, want NOT_FOUND", err)
	}
	page, err := c.SyncConvs(ctx, "", 10)
	if err != nil || len(page.Convs) != 1 ||
		!slices.Equal(page.Convs[0].PinnedSeqs, []int64{sent.Seq}) {
		t.Fatalf("alice's laptop lists %+v, %v; want the pin", page, err)
	}
}
