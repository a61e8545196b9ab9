package client_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/client/clienttest"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// An error of the SDK wrapping another of the SDK says "client:" once, at
// its start, and still matches the sentinel it wraps.
func TestErrors_SayClientOnce(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		fail func(t *testing.T) error
		is   error
	}{
		{name: "request timed out", is: client.ErrTimeout, fail: func(t *testing.T) error {
			s := startSilent(t)
			c := dial(t, s.ln.Addr().String(),
				client.Options{RequestTimeout: 20 * time.Millisecond})
			_, err := c.GetUser(ctx, "bob")
			return err
		}},
		{name: "request after close", is: client.ErrClosed, fail: func(t *testing.T) error {
			s := startServer(t, clienttest.Options{})
			c := dial(t, s.Addr(), client.Options{})
			_ = c.Close()
			_, err := c.Register(ctx, "alice", passwordOf("alice"))
			return err
		}},
		{name: "request after the server hung up", fail: func(t *testing.T) error {
			s := startSilent(t)
			c := dial(t, s.ln.Addr().String(), client.Options{})
			waitFor(t, "the server connection", func() bool {
				s.mu.Lock()
				defer s.mu.Unlock()
				return s.conn != nil
			})
			s.mu.Lock()
			_ = s.conn.Close()
			s.mu.Unlock()
			<-c.Done()
			_, err := c.Sync(ctx, "p2p:1:2", 0, 10)
			return err
		}},
		{name: "request too large", is: client.ErrTooLarge, fail: func(t *testing.T) error {
			s := startServer(t, clienttest.Options{})
			c := dial(t, s.Addr(), client.Options{SendLimit: 64})
			_, err := c.Send(ctx, client.SendParams{ToUserID: 2, Text: strings.Repeat("x", 100)})
			return err
		}},
		{name: "session send after the session ended", is: client.ErrSessionEnded,
			fail: func(t *testing.T) error {
				s := startServer(t, clienttest.Options{})
				loginNew(t, s, "alice", client.Options{})
				sess := openSession(t, s, "alice", "phone", nil)
				collectSession(t, sess)
				s.CloseUser("alice", protocol.CloseReason_SIGNED_OUT, -1)
				<-sess.Done()
				_, err := sess.Send(ctx, client.SendParams{ToUserID: 1, Text: "x"})
				return err
			}},
		{name: "session change password after close", is: client.ErrClosed,
			fail: func(t *testing.T) error {
				s := startServer(t, clienttest.Options{})
				loginNew(t, s, "alice", client.Options{})
				sess := openSession(t, s, "alice", "phone", nil)
				collectSession(t, sess)
				_ = sess.Close()
				_, err := sess.ChangePassword(ctx, passwordOf("alice"), "new-password")
				return err
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.fail(t)
			if err == nil {
				t.Fatal("no error")
			}
			text := err.Error()
			if !strings.HasPrefix(text, "client: ") || strings.Count(text, "client:") != 1 {
				t.Errorf("error %q does not say \"client:\" once, at its start", text)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q does not match %v", text, tc.is)
			}
		})
	}
}
