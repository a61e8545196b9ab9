package logic

import (
	"strings"
	"testing"
	"time"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

func TestRecallAndEdit(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		first := e.sendN(t, alice, bob, 2, "hi")
		conv := first.ConvId
		recall := &protocol.RecallReq{ClientMsgId: "r1", ConvId: conv, Seq: 1}
		edit := &protocol.EditReq{ClientMsgId: "e1", ConvId: conv, Seq: 2,
			ContentType: common.ContentType_TEXT, Content: []byte("hi, edited")}

		// Only the sender changes a message.
		_, err := e.svc.Recall(ctxBG, session(bob, 1), recall)
		wantCode(t, err, common.ErrorCode_FORBIDDEN)
		_, err = e.svc.Edit(ctxBG, session(bob, 1), edit)
		wantCode(t, err, common.ErrorCode_FORBIDDEN)

		rack, err := e.svc.Recall(ctxBG, session(alice, 1), recall)
		if err != nil || rack.Seq != 3 {
			t.Fatalf("recall = %+v, %v; want seq 3", rack, err)
		}
		again, err := e.svc.Recall(ctxBG, session(alice, 1), recall)
		if err != nil || !again.Duplicate || again.Seq != 3 {
			t.Fatalf("recall retry = %+v, %v", again, err)
		}
		eack, err := e.svc.Edit(ctxBG, session(alice, 1), edit)
		if err != nil || eack.Seq != 4 {
			t.Fatalf("edit = %+v, %v; want seq 4", eack, err)
		}
		// A recalled message stays recalled.
		_, err = e.svc.Edit(ctxBG, session(alice, 1), &protocol.EditReq{ClientMsgId: "e2",
			ConvId: conv, Seq: 1, ContentType: common.ContentType_TEXT, Content: []byte("x")})
		wantCode(t, err, common.ErrorCode_FORBIDDEN)
		// Events themselves cannot be changed.
		_, err = e.svc.Recall(ctxBG, session(alice, 1), &protocol.RecallReq{ClientMsgId: "r3",
			ConvId: conv, Seq: 3})
		wantCode(t, err, common.ErrorCode_BAD_REQUEST)

		// History shows the state; the events follow in order.
		msgs := e.syncAll(t, bob, conv)
		if len(msgs) != 4 {
			t.Fatalf("%d messages, want 4", len(msgs))
		}
		if !msgs[0].Recalled || len(msgs[0].Content) != 0 {
			t.Fatalf("recalled message %+v", msgs[0])
		}
		if string(msgs[1].Content) != "hi, edited" || msgs[1].EditedMs == 0 {
			t.Fatalf("edited message %+v", msgs[1])
		}
		var rev common.RecallEvent
		if _, err := rev.FastRead(msgs[2].Content); err != nil || msgs[2].ContentType !=
			common.ContentType_RECALL || rev.Seq != 1 || rev.MsgId != msgs[0].MsgId {
			t.Fatalf("recall event %+v (%v)", rev, err)
		}
		var eev common.EditEvent
		if _, err := eev.FastRead(msgs[3].Content); err != nil || eev.Seq != 2 ||
			string(eev.Content) != "hi, edited" {
			t.Fatalf("edit event %+v (%v)", eev, err)
		}

		// An edit of a message recalled later keeps no text in history.
		e.sendN(t, alice, bob, 1, "secret")
		if _, err := e.svc.Edit(ctxBG, session(alice, 1), &protocol.EditReq{ClientMsgId: "e5",
			ConvId: conv, Seq: 5, ContentType: common.ContentType_TEXT,
			Content: []byte("secret, edited")}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Recall(ctxBG, session(alice, 1), &protocol.RecallReq{ClientMsgId: "r5",
			ConvId: conv, Seq: 5}); err != nil {
			t.Fatal(err)
		}
		for _, m := range e.syncAll(t, bob, conv)[4:] {
			if strings.Contains(string(m.Content), "secret") {
				t.Fatalf("seq %d (%s) still carries the recalled text", m.Seq, m.ContentType)
			}
			if m.ContentType == common.ContentType_EDIT && !m.Recalled {
				t.Fatalf("the edit at seq %d is not marked recalled", m.Seq)
			}
		}

		// Past the window: refused.
		e.svc.now = func() time.Time { return time.Now().Add(e.svc.cfg.RecallWindow + time.Minute) }
		_, err = e.svc.Recall(ctxBG, session(alice, 1), &protocol.RecallReq{ClientMsgId: "r4",
			ConvId: conv, Seq: 2})
		wantCode(t, err, common.ErrorCode_FORBIDDEN)
	})
}

func TestReadCounts_GroupAndReadPositionOnOtherDevices(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		owner, a, b, c := e.register(t, "owner"), e.register(t, "aa1"), e.register(t, "bb1"),
			e.register(t, "cc1")
		g := e.group(t, owner, "G", a, b, c)
		for i := range 3 {
			if _, err := e.sendTo(owner, g, "m"+string(rune('0'+i))); err != nil {
				t.Fatal(err)
			}
		}
		// a reads all, b up to seq 2, c nothing. Seqs: 1 create, 2..4 messages.
		for user, seq := range map[int64]int64{a: 4, b: 2} {
			if _, err := e.svc.MarkRead(ctxBG, session(user, 1),
				&protocol.MarkReadReq{ConvId: g, Seq: seq}); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := e.svc.ReadCounts(ctxBG, session(owner, 1),
			&protocol.ReadCountsReq{ConvId: g, Seqs: []int64{2, 3, 4}})
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Counts; len(got) != 3 || got[0] != 2 || got[1] != 1 || got[2] != 1 ||
			resp.MemberCount != 4 {
			t.Fatalf("counts %v members %d, want [2 1 1] of 4", got, resp.MemberCount)
		}

		// Device two of a syncs its list, then device one reads: device
		// two's next list reports the conversation again with the position.
		tablet := session(c, 2)
		tablet.DeviceId = "tablet"
		first := e.syncConvs(t, tablet, "", 50)
		if len(first.Convs) != 1 || first.Convs[0].Unread != 4 || first.Convs[0].MemberCount != 4 ||
			first.Convs[0].Name != "G" {
			t.Fatalf("first list %+v", first.Convs)
		}
		e.svc.now = func() time.Time { return time.Now().Add(convCursorMargin + time.Second) }
		if _, err := e.svc.MarkRead(ctxBG, session(c, 1),
			&protocol.MarkReadReq{ConvId: g, Seq: 4}); err != nil {
			t.Fatal(err)
		}
		next := e.syncConvs(t, tablet, first.Cursor, 50)
		if len(next.Convs) != 1 || next.Convs[0].ReadSeq != 4 || next.Convs[0].Unread != 0 {
			t.Fatalf("after a read on another device: %+v", next.Convs)
		}
	})
}
