package client_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/client/clienttest"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

func TestClient_ClearConv(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	alice, aliceID := loginNew(t, s, "alice", client.Options{})
	bob, bobID := loginNew(t, s, "bob", client.Options{})
	carol, _ := loginNew(t, s, "carol", client.Options{})
	sendN(t, alice, bobID, 5, "hi")
	conv := client.P2PConvID(aliceID, bobID)
	ctx := context.Background()

	for _, step := range []struct{ upTo, want int64 }{{3, 3}, {1, 3}} {
		got, err := bob.ClearConv(ctx, conv, step.upTo, false)
		if err != nil || got != step.want {
			t.Fatalf("clear up to %d = %d, %v; want %d", step.upTo, got, err, step.want)
		}
	}
	resp, err := bob.Sync(ctx, conv, 0, 50)
	if err != nil {
		t.Fatal(err)
	}
	if got := seqs(resp.Messages); !slices.Equal(got, []int64{4, 5}) {
		t.Errorf("bob syncs %v after clearing up to 3, want [4 5]", got)
	}
	if _, err := carol.ClearConv(ctx, conv, 0, true); client.CodeOf(err) != common.ErrorCode_FORBIDDEN {
		t.Errorf("an outsider's clear: %v, want FORBIDDEN", err)
	}
}

// A Session resuming from its saved cursor after another device cleared and
// hid a conversation reports it hidden, moves past the cleared history
// without fetching it, and hands over only what comes after.
func TestSession_ResumesPastAClearOnAnotherDevice(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	alice, aliceID := loginNew(t, s, "alice", client.Options{})
	laptop, bobID := loginNew(t, s, "bob", client.Options{})
	conv := client.P2PConvID(aliceID, bobID)
	positions := client.NewMemoryPositions()
	sendN(t, alice, bobID, 2, "before")
	first := openSession(t, s, "bob", "phone", func(c *client.SessionConfig) {
		c.Positions = positions
	})
	st := collectSession(t, first)
	waitFor(t, "the first two messages", func() bool { return st.count(conv) == 2 })
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	sendN(t, alice, bobID, 2, "cleared")
	if got, err := laptop.ClearConv(context.Background(), conv, 0, true); err != nil || got != 4 {
		t.Fatalf("clear on the laptop = %d, %v; want 4", got, err)
	}
	syncs := s.Requests(protocol.Op_SYNC)
	var log eventLog
	second := openSession(t, s, "bob", "phone", func(c *client.SessionConfig) {
		c.Positions = positions
		c.OnEvent = log.add
	})
	st = collectSession(t, second)
	waitFor(t, "the resume", func() bool { return log.count(client.EventResumed) >= 1 })
	hidden := log.of(client.EventConvHidden)
	if len(hidden) == 0 || hidden[0].ConvID != conv {
		t.Errorf("hidden events %+v, want one for %s", hidden, conv)
	}
	if n := s.Requests(protocol.Op_SYNC) - syncs; n != 0 {
		t.Errorf("the resume fetched the cleared history (%d SYNCs)", n)
	}

	sendN(t, alice, bobID, 1, "after")
	waitFor(t, "the new message", func() bool { return st.count(conv) == 1 })
	st.checkSeqs(t, conv, 5)
}

func seqs(msgs []*common.Message) []int64 {
	out := make([]int64, len(msgs))
	for i, m := range msgs {
		out[i] = m.Seq
	}
	return out
}

// A Session's own ClearConv moves it past the cleared history at once: a
// message it missed there is not fetched when the next one comes.
func TestSession_ClearConvMovesPastTheClear(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	alice, aliceID := loginNew(t, s, "alice", client.Options{})
	_, bobID := loginNew(t, s, "bob", client.Options{})
	conv := client.P2PConvID(aliceID, bobID)
	sendN(t, alice, bobID, 2, "seen")
	sess := openSession(t, s, "bob", "phone", nil)
	st := collectSession(t, sess)
	waitFor(t, "the first two messages", func() bool { return st.count(conv) == 2 })

	s.DropPushes(1)
	sendN(t, alice, bobID, 1, "missed")
	cleared, err := sess.ClearConv(context.Background(), conv, 0, false)
	if err != nil || cleared != 3 {
		t.Fatalf("ClearConv = %d, %v; want 3", cleared, err)
	}
	if got := sess.Position(conv); got != 3 {
		t.Errorf("position after the clear = %d, want 3", got)
	}
	syncs := s.Requests(protocol.Op_SYNC)
	sendN(t, alice, bobID, 1, "after")
	waitFor(t, "the message after the clear", func() bool { return st.count(conv) == 3 })
	st.checkSeqs(t, conv, 1, 2, 4)
	if n := s.Requests(protocol.Op_SYNC) - syncs; n != 0 {
		t.Errorf("%d SYNCs for the cleared message", n)
	}
}

// A clear and hide on another device reaches a connected Session at once
// (NOTIFY cleared), not at its next resync: it reports the conversation
// hidden, moves past the cleared history without fetching a message it
// missed there, and still hands the notify to the app's OnNotify.
func TestSession_TakesAClearFromAnotherDeviceAtOnce(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	alice, aliceID := loginNew(t, s, "alice", client.Options{})
	laptop, bobID := loginNew(t, s, "bob", client.Options{})
	conv := client.P2PConvID(aliceID, bobID)
	sendN(t, alice, bobID, 2, "seen")
	var log eventLog
	var appNotified atomic.Int32
	phone := openSession(t, s, "bob", "phone", func(c *client.SessionConfig) {
		c.ResyncInterval = time.Hour // only the notify can tell it in time
		c.OnEvent = log.add
		c.Client.OnNotify = func(n *protocol.Notify) {
			if n.Cleared != nil {
				appNotified.Add(1)
			}
		}
	})
	st := collectSession(t, phone)
	waitFor(t, "the first two messages", func() bool { return st.count(conv) == 2 })
	waitFor(t, "the resume", func() bool { return log.count(client.EventResumed) >= 1 })

	s.DropPushes(1)
	sendN(t, alice, bobID, 1, "missed")
	if got, err := laptop.ClearConv(context.Background(), conv, 0, true); err != nil || got != 3 {
		t.Fatalf("clear on the laptop = %d, %v; want 3", got, err)
	}
	waitFor(t, "the hidden event", func() bool {
		hidden := log.of(client.EventConvHidden)
		return len(hidden) == 1 && hidden[0].ConvID == conv
	})
	waitFor(t, "the position past the clear", func() bool { return phone.Position(conv) == 3 })
	waitFor(t, "the app's notify", func() bool { return appNotified.Load() == 1 })

	syncs := s.Requests(protocol.Op_SYNC)
	sendN(t, alice, bobID, 1, "after")
	waitFor(t, "the message after the clear", func() bool { return st.count(conv) == 3 })
	st.checkSeqs(t, conv, 1, 2, 4)
	if n := s.Requests(protocol.Op_SYNC) - syncs; n != 0 {
		t.Errorf("%d SYNCs for the cleared message", n)
	}
}
