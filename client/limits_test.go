package client_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/client/clienttest"
	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// wantTooLarge fails unless err is the SDK's ErrTooLarge for op.
func wantTooLarge(t *testing.T, what string, err error, op protocol.Op) *client.TooLargeError {
	t.Helper()
	var tl *client.TooLargeError
	if !errors.Is(err, client.ErrTooLarge) || !errors.As(err, &tl) || tl.Op != op {
		t.Fatalf("%s: err = %.300v, want ErrTooLarge for %s", what, err, op)
	}
	return tl
}

// Every request is checked against the server's body limit before it is
// written, not only SEND: the gateway closes the connection at the header
// of an oversized frame, failing whatever else was in flight.
func TestClient_RefusesRequestsOverSendLimit(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	c, _ := loginNew(t, s, "alice", client.Options{})
	_, bobID := loginNew(t, s, "bob", client.Options{})
	ctx := context.Background()
	huge := strings.Repeat("z", codec.DefaultMaxBody+1)

	tests := []struct {
		name string
		op   protocol.Op
		call func() error
	}{
		{name: "text", op: protocol.Op_SEND, call: func() error {
			_, err := c.Send(ctx, client.SendParams{ToUserID: bobID, Text: huge})
			return err
		}},
		{name: "binary content", op: protocol.Op_SEND, call: func() error {
			_, err := c.Send(ctx, client.SendParams{ToUserID: bobID, Content: []byte(huge)})
			return err
		}},
		{name: "edit", op: protocol.Op_EDIT, call: func() error {
			_, err := c.Edit(ctx, "p2p:1:2", 1, huge, "")
			return err
		}},
		{name: "group name", op: protocol.Op_CREATE_GROUP, call: func() error {
			_, err := c.CreateGroup(ctx, huge, []int64{bobID}, "")
			return err
		}},
		{name: "user lookup", op: protocol.Op_GET_USER, call: func() error {
			_, err := c.GetUser(ctx, huge)
			return err
		}},
		{name: "push token", op: protocol.Op_SET_PUSH_TOKEN, call: func() error {
			return c.SetPushToken(ctx, protocol.PushPlatform_FCM, huge, "app")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl := wantTooLarge(t, tt.name, tt.call(), tt.op)
			if tl.Limit != codec.DefaultMaxBody || tl.Size <= tl.Limit {
				t.Fatalf("error %+v, want a size over the default limit", tl)
			}
		})
	}
	if err := c.Err(); err != nil {
		t.Fatalf("connection ended: %v", err)
	}
	if n := s.SendCount(); n != 0 {
		t.Fatalf("%d oversized SENDs reached the server", n)
	}
	if _, err := c.Send(ctx, client.SendParams{ToUserID: bobID, Text: "still up"}); err != nil {
		t.Fatalf("send after the refusals: %v", err)
	}
}

// sendBodyOf returns a SEND whose body is exactly size bytes.
func sendBodyOf(size int, to int64) client.SendParams {
	p := client.SendParams{ToUserID: to, ClientMsgID: client.NewClientMsgID(), Content: []byte{}}
	base := (&protocol.SendReq{ClientMsgId: p.ClientMsgID, ToUserId: to,
		ContentType: common.ContentType_BINARY, Content: []byte{}}).BLength()
	p.Content = make([]byte, size-base)
	return p
}

func TestClient_SendLimitIsInclusive(t *testing.T) {
	s := startServer(t, clienttest.Options{MaxContent: 1 << 20})
	c, _ := loginNew(t, s, "alice", client.Options{SendLimit: 32 << 10})
	_, bobID := loginNew(t, s, "bob", client.Options{})
	ctx := context.Background()

	if _, err := c.Send(ctx, sendBodyOf(32<<10, bobID)); err != nil {
		t.Fatalf("a body at the limit: %v", err)
	}
	_, err := c.Send(ctx, sendBodyOf(32<<10+1, bobID))
	if tl := wantTooLarge(t, "a byte over", err, protocol.Op_SEND); tl.Size != 32<<10+1 {
		t.Fatalf("size %d, want %d", tl.Size, 32<<10+1)
	}
	if n := s.SendCount(); n != 1 {
		t.Fatalf("%d SENDs reached the server, want 1", n)
	}
}

// A Session does not queue an oversized message for resending: Send fails
// at once and the messages after it go out.
func TestSession_SendRefusesTooLargeAndGoesOn(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	_, bobID := loginNew(t, s, "bob", client.Options{})
	loginNew(t, s, "alice", client.Options{})
	sess := openSession(t, s, "alice", "phone", nil)
	st := collectSession(t, sess)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := sess.Send(ctx, client.SendParams{ToUserID: bobID,
		Text: strings.Repeat("y", 70<<10)})
	wantTooLarge(t, "session send", err, protocol.Op_SEND)
	if ctx.Err() != nil {
		t.Fatal("Send waited for its context instead of failing at once")
	}
	ack, err := sess.Send(ctx, client.SendParams{ToUserID: bobID, Text: "next"})
	if err != nil || ack.Seq != 1 {
		t.Fatalf("next send = %+v, %v", ack, err)
	}
	waitFor(t, "the next message handed over", func() bool { return st.count(ack.ConvId) == 1 })
}

// A server whose limit is below the SDK's closes the connection for an
// oversized request (FRAME_TOO_LARGE). That request fails with ErrTooLarge
// instead of being sent again after every reconnect, and the messages in
// flight beside it are resent and stored once.
func TestSession_DropsTheRequestTheServerClosedFor(t *testing.T) {
	tests := []struct {
		name string
		size int
	}{
		// Written whole before the server reads the header.
		{name: "body written whole", size: 40 << 10},
		// Far over the socket buffers: the write fails with a reset, and
		// the CLOSE read before it must still decide.
		{name: "write cut short", size: 8 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, clienttest.Options{MaxBody: 32 << 10, MaxContent: 16 << 20})
			_, bobID := loginNew(t, s, "bob", client.Options{})
			loginNew(t, s, "alice", client.Options{})
			sess := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
				c.Client.SendLimit = 16 << 20
			})
			st := collectSession(t, sess)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()

			small := make(chan error, 1)
			go func() {
				for i := range 20 {
					_, err := sess.Send(ctx, client.SendParams{ToUserID: bobID,
						Text: fmt.Sprintf("small %d", i)})
					if err != nil {
						small <- err
						return
					}
				}
				small <- nil
			}()
			_, err := sess.Send(ctx, client.SendParams{ToUserID: bobID,
				Text: strings.Repeat("y", tt.size)})
			if tl := wantTooLarge(t, "big send", err, protocol.Op_SEND); tl.Limit != 0 {
				t.Fatalf("error %+v, want the server's refusal (Limit 0)", tl)
			}
			if err := <-small; err != nil {
				t.Fatalf("small sends: %v", err)
			}
			ack, err := sess.Send(ctx, client.SendParams{ToUserID: bobID, Text: "after"})
			if err != nil || ack.Seq != 21 {
				t.Fatalf("send after = %+v, %v", ack, err)
			}
			waitFor(t, "every small message", func() bool { return st.count(ack.ConvId) == 21 })
			st.checkExactly(t, ack.ConvId, 21)
		})
	}
}

// A request the server closes the connection for as malformed or unknown
// (PROTOCOL_ERROR, here a gateway older than the op) is sent once more, in
// case another frame was at fault, then fails: it used to end every
// connection it was resent on until its context ended.
func TestSession_GivesUpARequestClosedAsAProtocolError(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	_, bobID := loginNew(t, s, "bob", client.Options{})
	loginNew(t, s, "alice", client.Options{})
	var disconnects atomic.Int32
	sess := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
		c.OnEvent = func(e client.Event) {
			if e.Kind == client.EventDisconnected {
				disconnects.Add(1)
			}
		}
	})
	collectSession(t, sess)
	s.Unknown(protocol.Op_CREATE_GROUP)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	_, err := sess.CreateGroup(ctx, "friends", []int64{bobID})
	var ce *client.CloseError
	if !errors.As(err, &ce) || ce.Reason != protocol.CloseReason_PROTOCOL_ERROR {
		t.Fatalf("CreateGroup = %v, want the PROTOCOL_ERROR close", err)
	}
	if _, err := sess.Send(ctx, client.SendParams{ToUserID: bobID, Text: "still up"}); err != nil {
		t.Fatalf("send after: %v", err)
	}
	if n := disconnects.Load(); n != 2 {
		t.Fatalf("%d disconnections, want 2", n)
	}
}

// A server with --max-content raised pushes frames past the 64 KiB a client
// may send; the SDK reads them by default. It used to refuse a frame over
// 64 KiB and drop the connection, and as the message came again with every
// resume, the session reconnected for ever without handing anything over.
func TestSession_ReadsAMessagePastTheRequestLimit(t *testing.T) {
	s := startServer(t, clienttest.Options{MaxBody: 1 << 20, MaxContent: 512 << 10})
	bob, bobID := loginNew(t, s, "bob", client.Options{SendLimit: 1 << 20})
	_, aliceID := loginNew(t, s, "alice", client.Options{})
	conv := client.P2PConvID(aliceID, bobID)
	sess := openSession(t, s, "alice", "phone", nil) // default Options
	st := collectSession(t, sess)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := bob.Send(ctx, client.SendParams{ToUserID: aliceID, Text: strings.Repeat("w", 200<<10)})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the 200 KiB message", func() bool { return st.count(conv) == 1 })
	st.checkExactly(t, conv, 1)
}
