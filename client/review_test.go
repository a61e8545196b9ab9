package client_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/client/clienttest"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// A device handed messages of many conversations between two flushes
// acknowledges them all even when the frame limit is small: a DELIVERED of
// up to 500 positions may be larger than the limit, and it is then refused
// (by the SDK, or by the server closing the connection) at every flush.
func TestSession_AcksManyConversationsUnderASmallFrameLimit(t *testing.T) {
	const peers, limit = 60, 1 << 10
	tests := []struct {
		name     string
		server   clienttest.Options
		sdkLimit int
		// disconnects is how many FRAME_TOO_LARGE closes teach the SDK a
		// server limit it was not told: each halves the batches.
		disconnects int32
	}{
		{name: "SDK limit", sdkLimit: limit},
		{name: "server limit", server: clienttest.Options{MaxBody: limit}, disconnects: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, tt.server)
			_, aliceID := loginNew(t, s, "alice", client.Options{})
			// The peers write while alice's device is away; it fetches
			// the lot when it comes back and acknowledges them together.
			convs := make([]string, peers)
			for i := range peers {
				c, _ := loginNew(t, s, fmt.Sprintf("peer%02d", i), client.Options{})
				ack, err := c.Send(context.Background(),
					client.SendParams{ToUserID: aliceID, Text: "hi"})
				if err != nil {
					t.Fatal(err)
				}
				convs[i] = ack.ConvId
				_ = c.Close()
			}
			var disconnects atomic.Int32
			sess := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
				c.Client.SendLimit = tt.sdkLimit
				c.OnEvent = func(e client.Event) {
					if e.Kind == client.EventDisconnected {
						disconnects.Add(1)
					}
				}
			})
			st := collectSession(t, sess)
			acked := func() int {
				n := 0
				for _, conv := range convs {
					if st.count(conv) == 1 && s.DeliveredSeq("alice", "phone", conv) == 1 {
						n++
					}
				}
				return n
			}
			deadline := time.Now().Add(3 * time.Second)
			for acked() < peers && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if n := acked(); n < peers || disconnects.Load() > tt.disconnects {
				shown := 0
				for _, conv := range convs {
					shown += st.count(conv)
				}
				t.Fatalf("%d of %d conversations acknowledged after 3s (%d messages "+
					"handed over); %d disconnections, %d DELIVERED reached the server",
					n, peers, shown, disconnects.Load(), s.DeliveredCalls())
			}
		})
	}
}

// A request the server closed the connection for as a PROTOCOL_ERROR
// fails at its second close, but the sends in flight beside it were not at
// fault: none of them may fail for it, however busy the session. One that
// fails may even have been stored (it was read before the bad frame), and
// a person told "not sent" types it again.
func TestSession_ProtocolErrorFailsOnlyTheRequestAtFault(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	_, bobID := loginNew(t, s, "bob", client.Options{})
	loginNew(t, s, "alice", client.Options{})
	sess := openSession(t, s, "alice", "phone", nil)
	collectSession(t, sess)
	s.Unknown(protocol.Op_CREATE_GROUP)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	const senders, each = 8, 300
	type failure struct {
		text string
		err  error
	}
	failures := make(chan *failure, senders)
	var sent atomic.Int32
	for i := range senders {
		go func() {
			for j := range each {
				text := fmt.Sprintf("m%d-%d", i, j)
				_, err := sess.Send(ctx, client.SendParams{ToUserID: bobID, Text: text})
				if err != nil {
					failures <- &failure{text: text, err: err}
					return
				}
				sent.Add(1)
			}
			failures <- nil
		}()
	}
	waitFor(t, "sends under way", func() bool { return sent.Load() >= senders })
	_, err := sess.CreateGroup(ctx, "friends", []int64{bobID})
	var ce *client.CloseError
	if !errors.As(err, &ce) || ce.Reason != protocol.CloseReason_PROTOCOL_ERROR {
		t.Fatalf("CreateGroup = %v, want the PROTOCOL_ERROR close", err)
	}
	failed := make(map[string]bool)
	for range senders {
		if f := <-failures; f != nil {
			t.Errorf("send %s: %v", f.text, f.err)
			failed[f.text] = true
		}
	}
	if len(failed) == 0 {
		return
	}
	bob := collectSession(t, openSession(t, s, "bob", "phone", nil))
	waitFor(t, "bob's messages", func() bool { return bob.total() >= int(sent.Load()) })
	for _, m := range bob.messages() {
		if failed[string(m.Content)] {
			t.Errorf("send %s failed, yet bob has it", m.Content)
		}
	}
}

func (st *stream) total() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.msgs)
}

func (st *stream) messages() []*common.Message {
	st.mu.Lock()
	defer st.mu.Unlock()
	return slices.Clone(st.msgs)
}

// The request a FRAME_TOO_LARGE close was for may have been given up
// before the close came (its context ended while the server was busy):
// it is then not pending, and no pending request may be blamed for it. A
// request blamed fails with ErrTooLarge and a Session never sends it
// again, so an innocent one would be lost.
func TestClient_BlamesNoPendingRequestForOneGivenUp(t *testing.T) {
	s := startServer(t, clienttest.Options{MaxBody: 32 << 10, MaxContent: 1 << 20})
	_, bobID := loginNew(t, s, "bob", client.Options{})
	c, _ := loginNew(t, s, "alice", client.Options{SendLimit: 1 << 20})
	ack, err := c.Send(context.Background(), client.SendParams{ToUserID: bobID, Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	// The server reads nothing more until this SYNC is answered.
	s.SlowSync(300 * time.Millisecond)
	syncDone := make(chan error, 1)
	go func() {
		_, err := c.Sync(context.Background(), ack.ConvId, 0, 10)
		syncDone <- err
	}()
	time.Sleep(50 * time.Millisecond)

	// Over the server's limit, given up before the server reads its header.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = c.Send(ctx, client.SendParams{ToUserID: bobID, Text: strings.Repeat("x", 40<<10)})
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, client.ErrTimeout) {
		t.Fatalf("big send = %v, want its deadline", err)
	}
	// Innocent, and larger than anything answered on the connection.
	_, err = c.Send(context.Background(), client.SendParams{ToUserID: bobID,
		Text: strings.Repeat("y", 1<<10)})
	if errors.Is(err, client.ErrTooLarge) {
		t.Fatalf("a 1 KiB send under the 32 KiB limit was blamed: %v", err)
	}
	<-syncDone
}
