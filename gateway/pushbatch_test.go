package gateway

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
	"github.com/resonance-im/resonance/kitex_gen/pushrpc"
)

// PushBatch does what the same reqs as Push calls one after the other do:
// each target gets the frames in req order, and each req gets the answer its
// Push call gets, missing connections included. A req its Push call would
// refuse is answered with the error and writes nothing; the others still go.
func TestGateway_PushBatchActsAsPushCallsInOrder(t *testing.T) {
	h := startGateway(t, Config{})
	alice, bob, carol := h.dial(t), h.dial(t), h.dialWS(t)
	alice.login("alice", 1)
	bob.login("bob", 1)
	aliceConn, bobConn := h.logic.connOf("alice").ConnId, h.logic.connOf("bob").ConnId
	carol.login("bob", 1) // bob's browser
	carolConn := h.logic.connOf("bob").ConnId

	pushFrame := func(seq int64) []byte {
		msg := &protocol.PushMsg{Message: &common.Message{MsgId: 100 + seq, ConvId: "g:x",
			Seq: seq, Content: []byte("m")}}
		return codec.EncodeFrame(protocol.Op_PUSH, 0, 0, msg)
	}
	reqs := []*pushrpc.PushReq{
		{Frame: pushFrame(1), Targets: []*pushrpc.Target{{ConnId: aliceConn, UserId: 1},
			{ConnId: bobConn, UserId: 2}, {ConnId: 12345, UserId: 1}}},
		{Frames: []*pushrpc.PushFrame{{Frame: pushFrame(2)},
			{Frame: pushFrame(3), SkipConn: aliceConn}},
			Targets: []*pushrpc.Target{{ConnId: aliceConn, UserId: 1},
				{ConnId: bobConn, UserId: 2}, {ConnId: carolConn, UserId: 2}}},
		{Frame: []byte("junk"), Targets: []*pushrpc.Target{{ConnId: bobConn, UserId: 2}}},
		{Frame: pushFrame(4), Targets: []*pushrpc.Target{
			{ConnId: bobConn, UserId: 1}, // wrong user: missing
			{ConnId: carolConn, UserId: 2}}},
	}
	want := map[string][]int64{"alice": {1, 2}, "bob": {1, 2, 3}, "carol": {2, 3, 4}}
	reads := map[string]func() frame{"alice": alice.read, "bob": bob.read, "carol": carol.read}
	// received reads what each client got, then checks with a heartbeat that
	// nothing more came.
	received := func(round uint32) map[string][]int64 {
		got := map[string][]int64{}
		for name, read := range reads {
			for range want[name] {
				f := read()
				var pm protocol.PushMsg
				if f.Op != protocol.Op_PUSH || codec.ReadBody(f.body, &pm) != nil {
					t.Fatalf("%s got op %v, want PUSH", name, f.Op)
				}
				got[name] = append(got[name], pm.Message.Seq)
			}
		}
		alice.send(protocol.Op_HEARTBEAT, round, nil)
		alice.expectReply(protocol.Op_HEARTBEAT_ACK, round, &protocol.HeartbeatResp{})
		bob.send(protocol.Op_HEARTBEAT, round, nil)
		bob.expectReply(protocol.Op_HEARTBEAT_ACK, round, &protocol.HeartbeatResp{})
		carol.send(protocol.Op_HEARTBEAT, round, nil)
		carol.expectReply(protocol.Op_HEARTBEAT_ACK, round, &protocol.HeartbeatResp{})
		return got
	}

	cli := h.pushClient(t)
	single := make([]*pushrpc.PushResp, len(reqs))
	singleErrs := make([]error, len(reqs))
	for i, req := range reqs {
		single[i], singleErrs[i] = cli.Push(context.Background(), req)
	}
	if got := received(10); !reflect.DeepEqual(got, want) {
		t.Fatalf("Push calls delivered %v, want %v", got, want)
	}

	batch, err := cli.PushBatch(context.Background(), reqs)
	if err != nil {
		t.Fatalf("PushBatch: %v", err)
	}
	if got := received(11); !reflect.DeepEqual(got, want) {
		t.Fatalf("PushBatch delivered %v, want %v (as the Push calls)", got, want)
	}
	if len(batch) != len(reqs) {
		t.Fatalf("PushBatch answered %d resps for %d reqs", len(batch), len(reqs))
	}
	for i := range reqs {
		if batch[i] == nil {
			t.Fatalf("req %d: PushBatch answered nothing", i)
		}
		if singleErrs[i] != nil {
			msg := batch[i].GetError()
			if msg == "" || !strings.Contains(singleErrs[i].Error(), msg) {
				t.Errorf("req %d: PushBatch error %q, Push error %v", i, msg, singleErrs[i])
			}
			continue
		}
		if !reflect.DeepEqual(batch[i], single[i]) {
			t.Errorf("req %d: PushBatch answered %+v, Push %+v", i, batch[i], single[i])
		}
	}
	wantMissing := [][]int64{{12345}, nil, nil, {bobConn}}
	for i, missing := range wantMissing {
		if singleErrs[i] != nil {
			continue
		}
		if got := single[i].GetMissingConns(); !slices.Equal(got, missing) {
			t.Errorf("req %d: missing conns %v, want %v", i, got, missing)
		}
	}
	if singleErrs[2] == nil {
		t.Error("Push accepted a junk frame")
	}
}
