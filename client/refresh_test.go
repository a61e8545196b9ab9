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

// Register refuses, as the server does, a password it would not set as a
// new one: the fake taking any password let tests pass that the server
// fails.
func TestClient_RegisterRefusesAPasswordTheServerWould(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	c := dial(t, s.Addr(), client.Options{})
	ctx := context.Background()
	for _, tc := range []struct {
		name, password string
	}{
		{name: "too short", password: "short"},
		{name: "too long", password: strings.Repeat("ab", 65)},
		{name: "the username", password: "Margaret"},
		{name: "one character", password: "xxxxxxxx"},
	} {
		_, err := c.Register(ctx, "margaret", tc.password)
		if client.CodeOf(err) != common.ErrorCode_BAD_REQUEST {
			t.Errorf("%s: Register = %v, want BAD_REQUEST", tc.name, err)
		}
	}
	if _, err := c.Register(ctx, "margaret", passwordOf("margaret")); err != nil {
		t.Fatalf("Register with a password the policy takes = %v", err)
	}
}

// A password LOGIN hands out a refresh token, which REFRESH rotates as the
// server does: the rotated-away token is taken back once within the grace
// (a retry whose answer was lost), an older one is refused, and the
// rotated-away one coming back after its retry is reuse, which signs the
// device out.
func TestClient_RefreshRotatesTheRefreshToken(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	loginNew(t, s, "alice", client.Options{})
	phone, login, err := loginDevice(t, s, passwordLogin("alice", "phone"))
	if err != nil {
		t.Fatal(err)
	}
	if login.RefreshToken == "" || login.RefreshExpiresMs <= time.Now().UnixMilli() {
		t.Fatalf("password LOGIN = %+v, want a refresh token and its expiry", login)
	}
	ctx := context.Background()

	first, err := phone.Refresh(ctx, login.RefreshToken)
	if err != nil || first.RefreshToken == "" || first.RefreshToken == login.RefreshToken {
		t.Fatalf("Refresh = %+v, %v, want a new refresh token", first, err)
	}
	second, err := phone.Refresh(ctx, first.RefreshToken)
	if err != nil {
		t.Fatalf("Refresh with the new token = %v", err)
	}
	if _, err := phone.Refresh(ctx, login.RefreshToken); client.CodeOf(err) !=
		common.ErrorCode_TOKEN_INVALID {
		t.Fatalf("Refresh with a token rotated twice = %v, want TOKEN_INVALID", err)
	}
	third, err := phone.Refresh(ctx, first.RefreshToken)
	if err != nil {
		t.Fatalf("Refresh retrying the token rotated just now = %v", err)
	}
	// The retry replaced the pair whose answer it takes to be lost, and
	// that pair's token, coming back, is reuse, as on the server: the
	// retried token is merely refused.
	if _, err := phone.Refresh(ctx, first.RefreshToken); client.CodeOf(err) !=
		common.ErrorCode_TOKEN_INVALID {
		t.Fatalf("Refresh retrying a second time = %v, want TOKEN_INVALID", err)
	}
	if !s.SignedIn("alice", "phone") {
		t.Fatal("a second retry signed the device out")
	}
	// The server closes the device's connections beside the answer: the
	// close may overtake it.
	_, err = phone.Refresh(ctx, second.RefreshToken)
	var ce *client.CloseError
	if client.CodeOf(err) != common.ErrorCode_TOKEN_INVALID && !errors.As(err, &ce) {
		t.Fatalf("Refresh with the pair a retry replaced = %v, want TOKEN_INVALID or the close",
			err)
	}
	waitSignedOut(t, "the device whose refresh token was reused", phone)
	wantTokenRefused(t, s, third.Token, "phone")
}

// A LOGIN by refresh token rotates it and hands out the new pair; a LOGIN
// by access token hands out no refresh token (the one held stays), as the
// server's.
func TestClient_LoginByRefreshTokenRotatesIt(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	loginNew(t, s, "alice", client.Options{})
	_, login, err := loginDevice(t, s, passwordLogin("alice", "phone"))
	if err != nil {
		t.Fatal(err)
	}
	_, byAccess, err := loginDevice(t, s, client.LoginParams{Token: login.Token})
	if err != nil || byAccess.RefreshToken != "" || byAccess.DeviceId != "phone" {
		t.Fatalf("LOGIN by access token = %+v, %v, want the phone and no refresh token",
			byAccess, err)
	}
	_, byRefresh, err := loginDevice(t, s, client.LoginParams{Token: login.RefreshToken})
	if err != nil || byRefresh.RefreshToken == "" ||
		byRefresh.RefreshToken == login.RefreshToken || byRefresh.DeviceId != "phone" {
		t.Fatalf("LOGIN by refresh token = %+v, %v, want the phone and a new refresh token",
			byRefresh, err)
	}
	if _, _, err := loginDevice(t, s, client.LoginParams{Token: byRefresh.RefreshToken,
		DeviceID: "laptop"}); client.CodeOf(err) != common.ErrorCode_TOKEN_INVALID {
		t.Fatalf("LOGIN by the phone's refresh token as the laptop = %v, want TOKEN_INVALID",
			err)
	}
}

// A Session given only a refresh token keeps its tokens fresh with REFRESH
// before the access token expires, and after a TOKEN_EXPIRED close logs in
// again with the newest refresh token: every older one is refused by then,
// and with no password a broken chain would end it.
func TestSession_RefreshesItsTokens(t *testing.T) {
	s := startServer(t, clienttest.Options{TokenTTL: 300 * time.Millisecond})
	loginNew(t, s, "alice", client.Options{})
	_, login, err := loginDevice(t, s, passwordLogin("alice", "phone"))
	if err != nil {
		t.Fatal(err)
	}
	if login.RefreshToken == "" {
		t.Fatalf("password LOGIN = %+v, want a refresh token", login)
	}
	var gate clienttest.AwayGate
	sess := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
		c.Login = client.LoginParams{Token: login.RefreshToken, DeviceID: "phone"}
		c.OnEvent = gate.OnEvent
	})
	t.Cleanup(func() { _ = sess.Close() })
	collectSession(t, sess)

	waitFor(t, "two refreshes", func() bool { return s.Requests(protocol.Op_REFRESH) >= 2 })
	// -1 ms, do not reconnect, as the gateway says it.
	s.CloseUser("alice", protocol.CloseReason_TOKEN_EXPIRED, -time.Millisecond)
	waitFor(t, "a reconnect or the end", func() bool {
		select {
		case <-sess.Done():
			return true
		default:
			return gate.Resumes() == 2
		}
	})
	if err := sess.Err(); err != nil {
		t.Fatalf("the session ended at its reconnect by refresh token: %v", err)
	}
	wantTokenRefused(t, s, login.RefreshToken, "phone")
}

// A Session whose device was signed out while its close was lost ends as
// signed out at its next REFRESH, which the server refuses and follows with
// CLOSE SIGNED_OUT: it does not wait for TOKEN_EXPIRED and log the device
// back in with its password.
func TestSession_SignedOutAtRefreshEnds(t *testing.T) {
	s := startServer(t, clienttest.Options{TokenTTL: 300 * time.Millisecond})
	loginNew(t, s, "alice", client.Options{})
	sess := openSession(t, s, "alice", "phone", nil)
	t.Cleanup(func() { _ = sess.Close() })
	collectSession(t, sess)
	logins := s.Requests(protocol.Op_LOGIN)

	s.RevokeTokens()
	waitFor(t, "the session's end", func() bool {
		select {
		case <-sess.Done():
			return true
		default:
			return false
		}
	})
	ce, ok := errors.AsType[*client.CloseError](sess.Err())
	if !errors.Is(sess.Err(), client.ErrSessionEnded) || !ok ||
		ce.Reason != protocol.CloseReason_SIGNED_OUT {
		t.Fatalf("session ended with %v, want ErrSessionEnded and CLOSE SIGNED_OUT", sess.Err())
	}
	if n := s.Requests(protocol.Op_LOGIN) - logins; n != 0 {
		t.Fatalf("the session logged in %d more times", n)
	}
}
