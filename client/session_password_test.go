package client_test

import (
	"context"
	"errors"
	"testing"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/client/clienttest"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// A password changed through the Session leaves it the new token pair and
// password: its next reconnect logs in, where the revoked tokens and the
// old password would be refused and end it. With signedOut, the device is
// signed out from another while the Session is away: the reconnect's token
// is refused as a signed-out device's, and the Session ends rather than
// sign the device in again with the new password it keeps.
func TestSession_ChangePasswordKeepsTheSessionLoggingIn(t *testing.T) {
	for _, tc := range []struct {
		name      string
		signedOut bool
	}{
		{name: "by token"},
		{name: "signed out while away ends", signedOut: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, clienttest.Options{})
			laptop, _ := loginNew(t, s, "alice", client.Options{})
			var gate clienttest.AwayGate
			sess := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
				c.OnEvent = gate.OnEvent
			})
			collectSession(t, sess)
			waitFor(t, "the session caught up", func() bool { return gate.Resumes() == 1 })
			ctx := context.Background()

			pair, err := sess.ChangePassword(ctx, passwordOf("alice"), "new-password")
			if err != nil || pair.Token == "" {
				t.Fatalf("ChangePassword = %+v, %v", pair, err)
			}
			gate.Hold(t)
			s.CloseUser("alice", protocol.CloseReason_SERVER_SHUTDOWN, 0)
			waitFor(t, "the session away", gate.Away)
			if tc.signedOut {
				// The laptop was signed out by the change; it signs in
				// again with the new password to sign the phone out.
				laptop, _, err = loginDevice(t, s, client.LoginParams{Username: "alice",
					Password: "new-password", DeviceID: "laptop"})
				if err != nil {
					t.Fatal(err)
				}
				if err := laptop.SignOutDevice(ctx, "phone"); err != nil {
					t.Fatal(err)
				}
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
			if tc.signedOut {
				wantSignedOutEnd(t, sess)
				if s.SignedIn("alice", "phone") {
					t.Fatal("the signed-out device was signed in again with the password")
				}
				return
			}
			if err := sess.Err(); err != nil {
				t.Fatalf("the session ended at its reconnect after the change: %v", err)
			}
			if !s.SignedIn("alice", "phone") {
				t.Fatal("the device is not signed in after the reconnect")
			}
			_, _, err = loginDevice(t, s, passwordLogin("alice", "tablet"))
			if client.CodeOf(err) != common.ErrorCode_INVALID_CREDENTIALS {
				t.Fatalf("login with the old password = %v, want INVALID_CREDENTIALS", err)
			}
		})
	}
}

// wantSignedOutEnd fails t unless sess ended as a signed-out device's:
// ErrSessionEnded wrapping a CLOSE SIGNED_OUT.
func wantSignedOutEnd(t *testing.T, sess *client.Session) {
	t.Helper()
	err := sess.Err()
	ce, ok := errors.AsType[*client.CloseError](err)
	if !errors.Is(err, client.ErrSessionEnded) || !ok ||
		ce.Reason != protocol.CloseReason_SIGNED_OUT {
		t.Fatalf("the session ended with %v, want ErrSessionEnded and CLOSE SIGNED_OUT", err)
	}
}
