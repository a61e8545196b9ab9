package logic

import (
	"strconv"
	"testing"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Clears, hides and mentions together, as SyncConvs reports them to a
// device starting afresh: a clear past an unread mention leaves no badge, a
// clear below it keeps it, a mention revives a hidden group with its badge,
// and a recalled or edited message keeps its quote and mentions.
func TestInterplay_ClearHideMentionQuote(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob, carol := e.register(t, "alice"), e.register(t, "bob"), e.register(t, "carol")
		g := e.group(t, alice, "g", bob, carol) // seq 1
		fresh := &logicrpc.Session{UserId: bob, DeviceId: "fresh", ConnId: 9}
		summary := func() *protocol.ConvSummary {
			t.Helper()
			return listed(e.syncConvs(t, fresh, "", 100), g)
		}
		send := func(id string, replyTo int64, all bool, ids ...int64) int64 {
			t.Helper()
			resp, err := e.svc.Send(ctxBG, session(alice, 1), quoteReq(id, g, replyTo, all, ids...))
			if err != nil {
				t.Fatal(err)
			}
			return resp.Seq
		}

		m2 := send("m2", 0, false, bob) // 2 mentions bob
		send("m3", 0, false)            // 3
		if got := e.clear(t, session(bob, 1), g, 0, false); got != 3 {
			t.Fatalf("cleared %d, want 3", got)
		}
		if s := summary(); s.MentionSeq != m2 || s.ReadSeq < s.MentionSeq || s.Unread != 0 {
			t.Fatalf("after a clear past the mention: %+v", s)
		}

		m4 := send("m4", m2, false, bob) // 4 quotes 2, mentions bob
		send("m5", 0, false)             // 5
		if got := e.clear(t, session(bob, 1), g, 3, false); got != 3 {
			t.Fatalf("cleared %d, want 3 (only forward)", got)
		}
		if s := summary(); s.MentionSeq != m4 || s.ReadSeq >= m4 {
			t.Fatalf("a clear below the mention lost its badge: %+v", s)
		}

		if got := e.clear(t, session(bob, 1), g, 0, true); got != 5 {
			t.Fatalf("hide cleared %d, want 5", got)
		}
		if s := summary(); s != nil {
			t.Fatalf("hidden group listed: %+v", s)
		}
		m6 := send("m6", m4, true) // 6: @all, quoting 4
		s := summary()
		if s == nil || s.Hidden || s.MentionSeq != m6 || s.ReadSeq >= m6 || s.Unread != 1 ||
			s.LastMessage.GetSeq() != m6 {
			t.Fatalf("hidden group after an @all: %+v", s)
		}

		// Bob quotes a message he cleared; alice recalls and edits quoted
		// and mentioning messages, which keep both.
		if _, err := e.svc.Send(ctxBG, session(bob, 1), quoteReq("b1", g, m2, false, carol)); err != nil {
			t.Fatalf("quote of a cleared message: %v", err)
		}
		if _, err := e.svc.Recall(ctxBG, session(alice, 1), &protocol.RecallReq{ConvId: g,
			Seq: m4, ClientMsgId: "r4"}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Edit(ctxBG, session(alice, 1), &protocol.EditReq{ConvId: g,
			Seq: m6, ClientMsgId: "e6", ContentType: common.ContentType_TEXT,
			Content: []byte("edited")}); err != nil {
			t.Fatal(err)
		}
		for _, m := range e.syncAll(t, carol, g) {
			switch m.Seq {
			case m4:
				if !m.Recalled || m.GetReplyToSeq() != m2 || len(m.Mentions) != 1 {
					t.Fatalf("recalled #%d: %+v", m4, m)
				}
			case m6:
				if m.EditedMs == 0 || m.GetReplyToSeq() != m4 || !m.GetMentionAll() {
					t.Fatalf("edited #%d: %+v", m6, m)
				}
			}
		}
	})
}

// Clears with hide race sends: whatever the order, the member row ends
// with read_seq at or past cleared_seq, and the group is hidden exactly
// when nothing came after the last clear.
func TestInterplay_ClearRacesSends(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	alice, bob := e.register(t, "alice"), e.register(t, "bob")
	g := e.group(t, alice, "g", bob)
	done := make(chan error, 2)
	go func() {
		for i := range 40 {
			_, err := e.svc.Send(ctxBG, session(alice, 1),
				quoteReq("s"+strconv.Itoa(i), g, 0, false, bob))
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	go func() {
		for range 40 {
			if _, err := e.svc.ClearConv(ctxBG, session(bob, 1),
				&protocol.ClearConvReq{ConvId: g, Hide: true}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	var m memberRow
	var c convRow
	if err := e.db.Where("conv_id = ? AND user_id = ?", g, bob).Take(&m).Error; err != nil {
		t.Fatal(err)
	}
	if err := e.db.Where("id = ?", g).Take(&c).Error; err != nil {
		t.Fatal(err)
	}
	if m.ReadSeq < m.ClearedSeq || m.HiddenSeq != m.ClearedSeq || m.ClearedSeq > c.LastSeq ||
		m.MentionSeq != c.LastSeq {
		t.Fatalf("member %+v, conv last_seq %d", m, c.LastSeq)
	}
	s := listed(e.syncConvs(t, &logicrpc.Session{UserId: bob, DeviceId: "new", ConnId: 3},
		"", 100), g)
	if hidden := c.LastSeq <= m.HiddenSeq; hidden != (s == nil) {
		t.Fatalf("listed %+v with last_seq %d hidden at %d", s, c.LastSeq, m.HiddenSeq)
	}
	if s != nil && (s.Hidden || s.MentionSeq != c.LastSeq ||
		s.Unread != c.LastSeq-m.ClearedSeq) {
		t.Fatalf("summary %+v, member %+v", s, m)
	}
}
