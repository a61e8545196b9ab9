package client_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/client/clienttest"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// A CHANGE_PASSWORD whose connection is lost after it was sent has an
// unknown outcome, whether the server changed the password (reply lost)
// or not (request lost); the caller tells it from a refusal and from a
// request that was not sent.
func TestClient_ChangePasswordOfUnknownOutcome(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		fault   func(*clienttest.Server, *client.Client)
		old     string
		unknown bool
		is      error
		changed bool
	}{
		{name: "reply lost", unknown: true, changed: true,
			fault: func(s *clienttest.Server, _ *client.Client) {
				s.LoseReplies(protocol.Op_CHANGE_PASSWORD, 1)
			}},
		{name: "request lost", unknown: true,
			fault: func(s *clienttest.Server, _ *client.Client) {
				s.LoseRequests(protocol.Op_CHANGE_PASSWORD, 1)
			}},
		{name: "refused", old: "wrong-password"},
		{name: "not sent", is: client.ErrClosed,
			fault: func(_ *clienttest.Server, c *client.Client) { _ = c.Close() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, clienttest.Options{})
			phone, _ := loginNew(t, s, "alice", client.Options{})
			if tc.fault != nil {
				tc.fault(s, phone)
			}
			old := passwordOf("alice")
			if tc.old != "" {
				old = tc.old
			}

			_, err := phone.ChangePassword(ctx, old, "new-password")
			if err == nil {
				t.Fatal("ChangePassword succeeded")
			}
			if got := errors.Is(err, client.ErrOutcomeUnknown); got != tc.unknown {
				t.Errorf("ChangePassword = %v: outcome unknown %t, want %t", err, got, tc.unknown)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("ChangePassword = %v, want %v", err, tc.is)
			}
			if strings.Count(err.Error(), "client:") != 1 {
				t.Errorf("ChangePassword = %q, want \"client:\" once", err)
			}
			want := passwordOf("alice")
			if tc.changed {
				want = "new-password"
			}
			_, _, err = loginDevice(t, s, client.LoginParams{Username: "alice", Password: want,
				DeviceID: "laptop"})
			if err != nil {
				t.Fatalf("login with the password the server should hold = %v", err)
			}
		})
	}
}

// A Session whose password change has an unknown outcome says so, and logs
// in at its reconnect with whichever password the server holds: the new
// one when its tokens were revoked by the change, the old one when the
// change was not made (its tokens revoked here otherwise, so that the
// password decides).
func TestSession_ChangePasswordOfUnknownOutcome(t *testing.T) {
	for _, tc := range []struct {
		name    string
		lose    func(*clienttest.Server, protocol.Op, int)
		changed bool
	}{
		{name: "reply lost", lose: (*clienttest.Server).LoseReplies, changed: true},
		{name: "request lost", lose: (*clienttest.Server).LoseRequests},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, clienttest.Options{})
			loginNew(t, s, "alice", client.Options{})
			var gate clienttest.AwayGate
			sess := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
				c.OnEvent = gate.OnEvent
			})
			t.Cleanup(func() { _ = sess.Close() })
			collectSession(t, sess)
			waitFor(t, "the session caught up", func() bool { return gate.Resumes() == 1 })

			gate.Hold(t)
			tc.lose(s, protocol.Op_CHANGE_PASSWORD, 1)
			_, err := sess.ChangePassword(context.Background(), passwordOf("alice"),
				"new-password")
			if !errors.Is(err, client.ErrOutcomeUnknown) {
				t.Fatalf("ChangePassword = %v, want ErrOutcomeUnknown", err)
			}
			waitFor(t, "the session away", gate.Away)
			if !tc.changed {
				s.RevokeTokens()
			}
			gate.Release()

			waitFor(t, "a reconnect or the end", func() bool {
				select {
				case <-sess.Done():
					return true
				default:
					return gate.Resumes() == 2
				}
			})
			if err := sess.Err(); err != nil {
				t.Fatalf("the session ended at its reconnect after the change: %v", err)
			}
			if !s.SignedIn("alice", "phone") {
				t.Fatal("the device is not signed in after the reconnect")
			}
		})
	}
}

// A refused change says nothing of an unknown outcome, and a Session whose
// change was refused keeps logging in with its password.
func TestSession_ChangePasswordRefusedIsKnown(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	loginNew(t, s, "alice", client.Options{})
	sess := openSession(t, s, "alice", "phone", nil)
	t.Cleanup(func() { _ = sess.Close() })
	collectSession(t, sess)
	_, err := sess.ChangePassword(context.Background(), "wrong-password", "new-password")
	if errors.Is(err, client.ErrOutcomeUnknown) ||
		client.CodeOf(err) != common.ErrorCode_INVALID_CREDENTIALS {
		t.Fatalf("ChangePassword with a wrong old password = %v, want INVALID_CREDENTIALS", err)
	}
}

// A password change of unknown outcome that was made revokes the Session's
// own tokens, so the gateway refuses them at the reconnect and closes the
// connection as a signed-out device's: the Session still logs in, on a new
// connection, with the new password. Once that settled the change, a
// sign-out from another device while the Session is away ends it, as any
// sign-out does: the exception lasts only while the change is in doubt.
func TestSession_UnconfirmedChangeOutlivesItsOwnSignOut(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	loginNew(t, s, "alice", client.Options{})
	var gate clienttest.AwayGate
	sess := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
		c.OnEvent = gate.OnEvent
	})
	t.Cleanup(func() { _ = sess.Close() })
	collectSession(t, sess)
	waitFor(t, "the session caught up", func() bool { return gate.Resumes() == 1 })
	ctx := context.Background()

	gate.Hold(t)
	s.LoseReplies(protocol.Op_CHANGE_PASSWORD, 1)
	if _, err := sess.ChangePassword(ctx, passwordOf("alice"), "new-password"); !errors.Is(err,
		client.ErrOutcomeUnknown) {
		t.Fatalf("ChangePassword = %v, want ErrOutcomeUnknown", err)
	}
	waitFor(t, "the session away", gate.Away)
	logins := s.Requests(protocol.Op_LOGIN)
	gate.Release()
	waitFor(t, "a reconnect or the end", func() bool {
		select {
		case <-sess.Done():
			return true
		default:
			return gate.Resumes() == 2
		}
	})
	if err := sess.Err(); err != nil {
		t.Fatalf("the session ended at its reconnect after its own change: %v", err)
	}
	// The access token, refused, closed the first connection; the new
	// password logged in on the next.
	if n := s.Requests(protocol.Op_LOGIN) - logins; n != 2 {
		t.Fatalf("%d LOGINs to reconnect, want 2 (the refused token, the new password)", n)
	}

	gate.Hold(t)
	s.CloseUser("alice", protocol.CloseReason_SERVER_SHUTDOWN, 0)
	waitFor(t, "the session away again", gate.Away)
	laptop, _, err := loginDevice(t, s, client.LoginParams{Username: "alice",
		Password: "new-password", DeviceID: "laptop"})
	if err != nil {
		t.Fatal(err)
	}
	if err := laptop.SignOutDevice(ctx, "phone"); err != nil {
		t.Fatal(err)
	}
	gate.Release()
	select {
	case <-sess.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the signed-out session goes on")
	}
	wantSignedOutEnd(t, sess)
	if s.SignedIn("alice", "phone") {
		t.Fatal("the signed-out device was signed in again with the new password")
	}
}
