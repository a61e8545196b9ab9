package logic

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/resonance-im/resonance/internal/mq"
	"github.com/resonance-im/resonance/internal/testwait"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/event"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

func textReq(clientID string, to int64) *protocol.SendReq {
	return &protocol.SendReq{ClientMsgId: clientID, ToUserId: to,
		ContentType: common.ContentType_TEXT, Content: []byte("hello " + clientID)}
}

// lastEvent reads the newest event of the stream and its Nats-Msg-Id.
func (e *env) lastEvent(t *testing.T) (*event.MessageEvent, string) {
	t.Helper()
	ctx := context.Background()
	s, err := e.js.Stream(ctx, e.names.Stream)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.GetLastMsgForSubject(ctx, e.names.MessageSubjects())
	if err != nil {
		t.Fatalf("read event: %v", err)
	}
	var ev event.MessageEvent
	if _, err := ev.FastRead(raw.Data); err != nil {
		t.Fatalf("decode event: %v", err)
	}
	return &ev, raw.Header.Get(jetstream.MsgIDHeader)
}

func TestSend_StoresAndPublishes(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		ctx := context.Background()
		for want := int64(1); want <= 2; want++ {
			// The second message names the conversation instead of the peer.
			req := textReq(fmt.Sprintf("c%d", want), bob)
			if want == 2 {
				req.ToUserId, req.ConvId = 0, p2pConvID(alice, bob)
			}
			resp, err := e.svc.Send(ctx, session(alice, 11), req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Seq != want || resp.ConvId != p2pConvID(alice, bob) || resp.Duplicate {
				t.Fatalf("resp = %+v, want seq %d", resp, want)
			}
			e.waitPublished(t, uint64(want))
			ev, msgID := e.lastEvent(t)
			m := ev.Message
			if msgID != fmt.Sprintf("msg-%d", resp.MsgId) || m.MsgId != resp.MsgId ||
				m.Seq != want || m.SenderId != alice || m.SenderDevice != "phone" ||
				string(m.Content) != string(req.Content) || m.SendTimeMs != resp.SendTimeMs {
				t.Fatalf("event %s = %+v, resp %+v", msgID, m, resp)
			}
			if !slices.Equal(ev.Recipients, []int64{alice, bob}) ||
				ev.OriginGateway != "gw-1:9000" || ev.OriginConnId != 11 {
				t.Fatalf("event routing = %v %s %d", ev.Recipients, ev.OriginGateway, ev.OriginConnId)
			}
		}
		if n := e.streamMsgs(t); n != 2 {
			t.Fatalf("stream holds %d events, want 2", n)
		}
	})
}

func TestSend_RetryIsDeduplicated(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		ctx := context.Background()
		first, err := e.svc.Send(ctx, session(alice, 1), textReq("same", bob))
		if err != nil {
			t.Fatal(err)
		}
		again, err := e.svc.Send(ctx, session(alice, 1), textReq("same", bob))
		if err != nil {
			t.Fatal(err)
		}
		if !again.Duplicate || again.MsgId != first.MsgId || again.Seq != first.Seq ||
			again.SendTimeMs != first.SendTimeMs {
			t.Fatalf("retry = %+v, first = %+v", again, first)
		}
		if n := e.countMessages(t); n != 1 {
			t.Fatalf("store holds %d messages, want 1", n)
		}
		e.waitPublished(t, 1)
		if n := e.svc.stats.published.Load(); n != 1 {
			t.Fatalf("normal path published %d times, want once", n)
		}
	})
}

// Client ids are compared byte for byte on every store: ids that differ
// only in case or in which emoji they hold are two messages. Under MySQL's
// utf8mb4_general_ci they compared equal, and the second was answered as a
// duplicate of the first and never stored.
func TestSend_ClientIDsCompareBytewise(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		for _, id := range []string{"Ab3x", "ab3x", "AB3X", "re-👍", "re-😂"} {
			resp, err := e.svc.Send(ctxBG, session(alice, 1), textReq(id, bob))
			if err != nil || resp.Duplicate {
				t.Fatalf("send with client id %q = %+v, %v; want a new message", id, resp, err)
			}
		}
		if n := e.countMessages(t); n != 5 {
			t.Fatalf("store holds %d messages, want 5", n)
		}
	})
}

// A retry gets its first ack even once the conversation refuses the sender,
// and a retry that reaches the insert leaves no gap in the seqs.
func TestSend_RetryAfterBlockGetsFirstAck(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		first, err := e.svc.Send(ctx, session(alice, 1), textReq("a1", bob))
		if err != nil {
			t.Fatal(err)
		}
		again, err := e.svc.Send(ctx, session(alice, 1), textReq("a1", bob))
		if err != nil || !again.Duplicate || again.Seq != 1 {
			t.Fatalf("retry = %+v, %v; want the first ack", again, err)
		}
		next, err := e.svc.Send(ctx, session(alice, 1), textReq("a2", bob))
		if err != nil || next.Seq != 2 {
			t.Fatalf("send after a retry = %+v, %v; want seq 2", next, err)
		}
		_, err = e.svc.Block(ctx, session(bob, 2), &protocol.BlockReq{UserId: alice, Blocked: true})
		if err != nil {
			t.Fatal(err)
		}
		again, err = e.svc.Send(ctx, session(alice, 1), textReq("a1", bob))
		if err != nil || !again.Duplicate || again.MsgId != first.MsgId {
			t.Fatalf("retry after the block = %+v, %v; want the first ack %+v", again, err, first)
		}
		_, err = e.svc.Send(ctx, session(alice, 1), textReq("a3", bob))
		wantCode(t, err, common.ErrorCode_FORBIDDEN)
		if n := e.countMessages(t); n != 2 {
			t.Fatalf("store holds %d messages, want 2", n)
		}
	})
}

func TestSend_ConcurrentRetriesStoreOnce(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		const retries = 10
		resps := make([]*protocol.SendResp, retries)
		errs := make([]error, retries)
		var wg sync.WaitGroup
		for i := range retries {
			wg.Go(func() {
				resps[i], errs[i] = e.svc.Send(context.Background(), session(alice, 1), textReq("r", bob))
			})
		}
		wg.Wait()
		e.waitPublished(t, 1)
		firsts := 0
		for i, r := range resps {
			if errs[i] != nil {
				t.Fatalf("retry %d: %v", i, errs[i])
			}
			if r.MsgId != resps[0].MsgId || r.Seq != 1 {
				t.Fatalf("retry %d = %+v, retry 0 = %+v", i, r, resps[0])
			}
			if !r.Duplicate {
				firsts++
			}
		}
		if firsts != 1 || e.countMessages(t) != 1 || e.streamMsgs(t) != 1 {
			t.Fatalf("non-duplicate acks %d, stored %d, events %d; want 1 each",
				firsts, e.countMessages(t), e.streamMsgs(t))
		}
	})
}

func TestSend_ConcurrentSendersGetDenseSeqs(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		const senders = 20
		seqs := make([]int64, senders)
		errs := make([]error, senders)
		var wg sync.WaitGroup
		for i := range senders {
			from, to := alice, bob
			if i%2 == 1 {
				from, to = bob, alice
			}
			wg.Go(func() {
				resp, err := e.svc.Send(context.Background(), session(from, int64(i)),
					textReq(fmt.Sprintf("n%d", i), to))
				errs[i] = err
				if err == nil {
					seqs[i] = resp.Seq
				}
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("sender %d: %v", i, err)
			}
		}
		slices.Sort(seqs)
		for i, s := range seqs {
			if s != int64(i+1) {
				t.Fatalf("sorted seqs = %v, want 1..%d", seqs, senders)
			}
		}
	})
}

func TestSend_Rejects(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob, carol := e.register(t, "alice"), e.register(t, "bob"), e.register(t, "carol")
		big := textReq("big", bob)
		big.Content = make([]byte, DefaultMaxContent+1)
		cases := []struct {
			name   string
			sender int64
			mutate func(r *protocol.SendReq)
			want   common.ErrorCode
		}{
			{name: "too large", sender: alice, mutate: func(r *protocol.SendReq) { *r = *big },
				want: common.ErrorCode_TOO_LARGE},
			{name: "empty content", sender: alice, mutate: func(r *protocol.SendReq) { r.Content = nil },
				want: common.ErrorCode_BAD_REQUEST},
			{name: "no client id", sender: alice, mutate: func(r *protocol.SendReq) { r.ClientMsgId = "" },
				want: common.ErrorCode_BAD_REQUEST},
			{name: "long client id", sender: alice,
				mutate: func(r *protocol.SendReq) { r.ClientMsgId = strings.Repeat("x", 65) },
				want:   common.ErrorCode_BAD_REQUEST},
			{name: "unknown content type", sender: alice,
				mutate: func(r *protocol.SendReq) { r.ContentType = 9 }, want: common.ErrorCode_BAD_REQUEST},
			{name: "to self", sender: alice, mutate: func(r *protocol.SendReq) { r.ToUserId = alice },
				want: common.ErrorCode_BAD_REQUEST},
			{name: "unknown peer", sender: alice, mutate: func(r *protocol.SendReq) { r.ToUserId = 999 },
				want: common.ErrorCode_NOT_FOUND},
			{name: "no target", sender: alice, mutate: func(r *protocol.SendReq) { r.ToUserId = 0 },
				want: common.ErrorCode_BAD_REQUEST},
			{name: "others' conversation", sender: carol, mutate: func(r *protocol.SendReq) {
				r.ToUserId, r.ConvId = 0, p2pConvID(alice, bob)
			}, want: common.ErrorCode_FORBIDDEN},
			{name: "malformed conv", sender: alice, mutate: func(r *protocol.SendReq) {
				r.ToUserId, r.ConvId = 0, fmt.Sprintf("p2p:%d:0%d", alice, bob)
			}, want: common.ErrorCode_BAD_REQUEST},
			{name: "conv and peer disagree", sender: alice, mutate: func(r *protocol.SendReq) {
				r.ConvId = p2pConvID(alice, carol)
			}, want: common.ErrorCode_BAD_REQUEST},
			{name: "no session", sender: 0, mutate: func(*protocol.SendReq) {},
				want: common.ErrorCode_UNAUTHENTICATED},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				req := textReq("reject-"+tc.name, bob)
				tc.mutate(req)
				_, err := e.svc.Send(context.Background(), session(tc.sender, 1), req)
				wantCode(t, err, tc.want)
			})
		}
		if n := e.countMessages(t); n != 0 {
			t.Fatalf("rejected sends stored %d messages", n)
		}
	})
}

// TestSend_AckedWhileStreamDownThenRelayed checks that a message stored while
// JetStream cannot take it is acked (acked means stored) and reaches the
// stream once the stream is back, through the relay.
func TestSend_AckedWhileStreamDownThenRelayed(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	e.svc.cfg.PublishTimeout = time.Second
	alice, bob := e.register(t, "alice"), e.register(t, "bob")
	ctx := context.Background()

	// Without the stream JetStream has no responder: the publish fails fast.
	if err := e.js.DeleteStream(ctx, e.names.Stream); err != nil {
		t.Fatal(err)
	}
	resp, err := e.svc.Send(ctx, session(alice, 1), textReq("lost", bob))
	if err != nil {
		t.Fatalf("send while the stream is down: %v", err)
	}
	testwait.For(t, 10*time.Second, "failed publish", func() bool {
		return e.svc.stats.failed.Load() == 1
	})
	if n := e.outboxLen(t); n != 1 {
		t.Fatalf("outbox holds %d rows after a failed publish, want 1", n)
	}

	if _, err := mq.EnsureStream(ctx, e.js, e.names); err != nil {
		t.Fatal(err)
	}
	e.waitPublished(t, 1) // the relay takes it after relayAge
	if p, r := e.svc.stats.published.Load(), e.svc.stats.relayed.Load(); p != 0 || r != 1 {
		t.Fatalf("published %d, relayed %d; want the relay's one", p, r)
	}
	ev, _ := e.lastEvent(t)
	if ev.Message.MsgId != resp.MsgId || ev.Message.Seq != 1 {
		t.Fatalf("relayed event = %+v, ack = %+v", ev.Message, resp)
	}
}

// TestSend_OutboxSurvivesCrashBeforePublish plays a process that dies between
// commit and publish: the restarted service relays the event exactly once.
func TestSend_OutboxSurvivesCrashBeforePublish(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		const stored = 3
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		ctx := context.Background()
		e.svc.onStored = func(*outboxRow) {} // the crash: committed, never published
		last := e.sendN(t, alice, bob, stored, "crash")
		if n := e.outboxLen(t); n != stored || e.streamMsgs(t) != 0 {
			t.Fatalf("before restart: outbox %d, stream %d; want %d, 0", n, e.streamMsgs(t), stored)
		}
		// A running relay leaves a fresh row to the publisher.
		if young, err := e.svc.oldOutbox(ctx, relayAge); err != nil || len(young) != 0 {
			t.Fatalf("rows older than %v = %d, %v; want none yet", relayAge, len(young), err)
		}

		e.restart(t)
		e.waitPublished(t, stored)
		// A retry of the lost ack and a second relay pass publish nothing new.
		again, err := e.svc.Send(ctx, session(alice, 1), textReq(fmt.Sprintf("crash-%d",
			stored-1), bob))
		if err != nil || !again.Duplicate || again.MsgId != last.MsgId {
			t.Fatalf("retry = %+v, %v; first = %+v", again, err, last)
		}
		if n := e.svc.relay(ctx, 0); n != 0 {
			t.Fatalf("second relay published %d events", n)
		}
		if seqs := e.streamSeqs(t); !slices.Equal(seqs, []int64{1, 2, 3}) ||
			e.svc.stats.relayed.Load() != stored {
			t.Fatalf("stream seqs %v, relayed %d; want 1 2 3 relayed once each",
				seqs, e.svc.stats.relayed.Load())
		}
	})
}

// Rows whose events the publisher saw acked but whose deletes lag are not
// published again by the relay; the others are.
func TestOutbox_RelaySkipsRowsWaitingForTheirDelete(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		ctx := context.Background()
		e.svc.onStored = func(*outboxRow) {} // nothing reaches the publisher
		e.sendN(t, alice, bob, 3, "lag")
		rows, err := e.svc.oldOutbox(ctx, 0)
		if err != nil || len(rows) != 3 {
			t.Fatalf("outbox rows = %d, %v; want 3", len(rows), err)
		}
		// The first two were published, their deletes not run yet.
		e.svc.undeleted.add([]int64{rows[0].rowID, rows[1].rowID})
		if n := e.svc.relay(ctx, 0); n != 1 {
			t.Fatalf("relay published %d events, want 1", n)
		}
		if seqs := e.streamSeqs(t); !slices.Equal(seqs, []int64{3}) {
			t.Fatalf("stream seqs %v, want 3 only", seqs)
		}
		e.svc.deleteAcked(ctx, []int64{rows[0].rowID, rows[1].rowID})
		if n := e.outboxLen(t); n != 0 {
			t.Fatalf("outbox holds %d rows after the deletes, want 0", n)
		}
		if n := e.svc.relay(ctx, 0); n != 0 {
			t.Fatalf("relay after the deletes published %d events", n)
		}
	})
}

// streamSeqs returns the message seqs of the stream's message events, in
// stream order.
func (e *env) streamSeqs(t *testing.T) []int64 {
	t.Helper()
	ctx := context.Background()
	s, err := e.js.Stream(ctx, e.names.Stream)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for i := uint64(1); i <= e.streamMsgs(t); i++ {
		raw, err := s.GetMsg(ctx, i)
		if err != nil {
			t.Fatalf("read event %d: %v", i, err)
		}
		var ev event.MessageEvent
		if _, err := ev.FastRead(raw.Data); err != nil {
			t.Fatalf("decode event %d: %v", i, err)
		}
		seqs = append(seqs, ev.Message.Seq)
	}
	return seqs
}

func TestSync(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		alice, bob, carol := e.register(t, "alice"), e.register(t, "bob"), e.register(t, "carol")
		for i := range 5 {
			if _, err := e.svc.Send(context.Background(), session(alice, 1),
				textReq(fmt.Sprintf("s%d", i), bob)); err != nil {
				t.Fatal(err)
			}
		}
		conv := p2pConvID(alice, bob)
		cases := []struct {
			name     string
			user     int64
			req      *protocol.SyncReq
			wantSeqs []int64
			wantMore bool
			want     common.ErrorCode
		}{
			{name: "first page", user: bob, req: &protocol.SyncReq{ConvId: conv, Limit: 2},
				wantSeqs: []int64{1, 2}, wantMore: true},
			{name: "middle page", user: alice, req: &protocol.SyncReq{ConvId: conv, AfterSeq: 2, Limit: 2},
				wantSeqs: []int64{3, 4}, wantMore: true},
			{name: "last page", user: bob, req: &protocol.SyncReq{ConvId: conv, AfterSeq: 4, Limit: 2},
				wantSeqs: []int64{5}},
			{name: "default limit", user: bob, req: &protocol.SyncReq{ConvId: conv},
				wantSeqs: []int64{1, 2, 3, 4, 5}},
			{name: "caught up", user: bob, req: &protocol.SyncReq{ConvId: conv, AfterSeq: 5}},
			{name: "not a member", user: carol, req: &protocol.SyncReq{ConvId: conv},
				want: common.ErrorCode_FORBIDDEN},
			{name: "bad conv id", user: bob, req: &protocol.SyncReq{ConvId: "group:1"},
				want: common.ErrorCode_BAD_REQUEST},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				resp, err := e.svc.Sync(context.Background(), session(tc.user, 2), tc.req)
				wantCode(t, err, tc.want)
				if err != nil {
					return
				}
				var seqs []int64
				for _, m := range resp.Messages {
					seqs = append(seqs, m.Seq)
				}
				if !slices.Equal(seqs, tc.wantSeqs) || resp.HasMore != tc.wantMore {
					t.Fatalf("seqs = %v more = %v, want %v %v", seqs, resp.HasMore, tc.wantSeqs, tc.wantMore)
				}
			})
		}
	})
}
