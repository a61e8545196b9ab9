package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/client/clienttest"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// wantClosed waits for c to end and fails unless a CLOSE with reason ended
// it, one that says not to reconnect by itself.
func wantClosed(t *testing.T, c *client.Client, reason protocol.CloseReason) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("still connected, want CLOSE %s", reason)
	}
	var ce *client.CloseError
	if err := c.Err(); !errors.As(err, &ce) || ce.Reason != reason || ce.ShouldReconnect() {
		t.Fatalf("connection ended with %v, want CLOSE %s without reconnect", err, reason)
	}
}

// A connection whose access token expires is closed with TOKEN_EXPIRED, as
// the gateway's, and a REFRESH moves the close to the new token's expiry.
func TestClient_ClosedWhenItsTokenExpires(t *testing.T) {
	s := startServer(t, clienttest.Options{TokenTTL: 400 * time.Millisecond})
	loginNew(t, s, "alice", client.Options{})
	c, login, err := loginDevice(t, s, passwordLogin("alice", "phone"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Refresh(context.Background(), login.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	wantClosed(t, c, protocol.CloseReason_TOKEN_EXPIRED)
	if now := time.Now().UnixMilli(); now < r.TokenExpiresMs {
		t.Fatalf("closed %d ms before the refreshed token's expiry", r.TokenExpiresMs-now)
	}
}

// The third LOGIN refused for its credentials on one connection is answered,
// then the connection closed with LOGIN_FAILED, as the gateway's; a login
// that fails on the server's side does not count.
func TestClient_ClosedAfterThreeFailedLogins(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	loginNew(t, s, "alice", client.Options{})
	c := dial(t, s.Addr(), client.Options{})
	ctx := context.Background()
	wrong := client.LoginParams{Username: "alice", Password: "wrong-password", DeviceID: "phone"}

	s.FailLogins(1)
	if _, err := c.Login(ctx, passwordLogin("alice", "phone")); client.CodeOf(err) !=
		common.ErrorCode_UNAVAILABLE {
		t.Fatalf("Login with a failure injected = %v, want UNAVAILABLE", err)
	}
	if _, err := c.Login(ctx, client.LoginParams{Token: "not-a-token"}); client.CodeOf(err) !=
		common.ErrorCode_TOKEN_INVALID {
		t.Fatalf("Login with a bad token = %v, want TOKEN_INVALID", err)
	}
	if _, err := c.Login(ctx, wrong); client.CodeOf(err) != common.ErrorCode_INVALID_CREDENTIALS {
		t.Fatalf("second failed Login = %v, want INVALID_CREDENTIALS", err)
	}
	if _, err := c.Login(ctx, wrong); client.CodeOf(err) != common.ErrorCode_INVALID_CREDENTIALS {
		t.Fatalf("third failed Login = %v, want its answer, INVALID_CREDENTIALS", err)
	}
	wantClosed(t, c, protocol.CloseReason_LOGIN_FAILED)
}

// A password LOGIN naming no device logs in as "default", as the server's:
// the device the reply names, signs in and sends as.
func TestClient_LoginWithoutDeviceIsDefault(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	bob, bobID := loginNew(t, s, "bob", client.Options{})
	loginNew(t, s, "alice", client.Options{})
	c, resp, err := loginDevice(t, s, client.LoginParams{Username: "alice",
		Password: passwordOf("alice")})
	if err != nil {
		t.Fatal(err)
	}
	if resp.DeviceId != "default" || !s.SignedIn("alice", "default") {
		t.Fatalf("LOGIN without a device = device %q, want \"default\"", resp.DeviceId)
	}
	if _, err := c.Send(context.Background(), client.SendParams{ToUserID: bobID,
		Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	if m := receive(t, bob); m.SenderDevice != "default" {
		t.Fatalf("bob got a message from device %q, want \"default\"", m.SenderDevice)
	}
}

// A Session whose refresh fails until its access token expires is closed
// with TOKEN_EXPIRED, which says not to reconnect: it logs in again all the
// same, with its refresh token or its password, as the close asks.
func TestSession_ReconnectsWhenItsTokenExpires(t *testing.T) {
	for _, tc := range []struct {
		name     string
		password bool
	}{
		{name: "by refresh token"},
		{name: "by password", password: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, clienttest.Options{TokenTTL: 300 * time.Millisecond})
			loginNew(t, s, "alice", client.Options{})
			_, login, err := loginDevice(t, s, passwordLogin("alice", "phone"))
			if err != nil {
				t.Fatal(err)
			}
			s.Unsupported(protocol.Op_REFRESH)
			var gate clienttest.AwayGate
			sess := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
				if !tc.password {
					c.Login = client.LoginParams{Token: login.RefreshToken, DeviceID: "phone"}
				}
				c.OnEvent = gate.OnEvent
			})
			t.Cleanup(func() { _ = sess.Close() })
			collectSession(t, sess)

			waitFor(t, "a reconnect after the token expired, or the end", func() bool {
				select {
				case <-sess.Done():
					return true
				default:
					return gate.Resumes() >= 2
				}
			})
			if err := sess.Err(); err != nil {
				t.Fatalf("the session ended when its token expired: %v", err)
			}
		})
	}
}

// A Session naming no device hands over its own messages as sent by the
// device the server resolved, as the server stores them and other
// devices see them.
func TestSession_OwnMessageNamesTheResolvedDevice(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	bob, bobID := loginNew(t, s, "bob", client.Options{})
	loginNew(t, s, "alice", client.Options{})
	sess := openSession(t, s, "alice", "", nil)
	t.Cleanup(func() { _ = sess.Close() })
	st := collectSession(t, sess)
	ack, err := sess.Send(context.Background(), client.SendParams{ToUserID: bobID, Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the message handed over", func() bool { return st.count(ack.ConvId) == 1 })
	pushed := receive(t, bob)
	st.mu.Lock()
	own := st.msgs[0]
	st.mu.Unlock()
	if own.SenderDevice != pushed.SenderDevice || own.SenderDevice != "default" {
		t.Fatalf("own copy from device %q, bob's from %q, want both \"default\"",
			own.SenderDevice, pushed.SenderDevice)
	}
}
