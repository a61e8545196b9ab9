package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// staleLaptopTokens is staleLaptop, also returning the laptop's refresh
// token.
func staleLaptopTokens(t *testing.T, sys *System, alice *user) (*user, string) {
	t.Helper()
	ctx, c := dialFor(t, sys.GatewayAddr().String())
	resp, err := c.Login(ctx, client.LoginParams{Username: alice.name,
		Password: "correct horse", DeviceID: "laptop"})
	if err != nil {
		t.Fatalf("login %s/laptop: %v", alice.name, err)
	}
	loseRoute(t, sys, alice.id, "laptop")
	return &user{Client: c, id: resp.UserId, name: alice.name}, resp.RefreshToken
}

// A connection of a signed-out device whose close was lost cannot act on
// the account's sessions: its REFRESH, LOGOUT, CHANGE_PASSWORD and
// DELETE_ACCOUNT are answered TOKEN_INVALID, then the gateway closes it with
// SIGNED_OUT, and the phone that signed it out goes on, its password and
// account untouched.
func TestSignedOut_LostCloseAccountCallsCloseSignedOut(t *testing.T) {
	sys := signedOutSystem(t)
	addr := sys.GatewayAddr().String()
	alice := login(t, addr, fmt.Sprintf("alice%d", time.Now().UnixNano()%1_000_000_000),
		"phone", true)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	calls := []struct {
		name string
		call func(laptop *user, refresh string) error
	}{
		{"refresh", func(laptop *user, refresh string) error {
			_, err := laptop.Refresh(ctx, refresh)
			return err
		}},
		{"logout", func(laptop *user, _ string) error { return laptop.Logout(ctx) }},
		{"change password", func(laptop *user, _ string) error {
			_, err := laptop.ChangePassword(ctx, "correct horse", "a thief's horse")
			return err
		}},
		{"delete account", func(laptop *user, _ string) error {
			return laptop.DeleteAccount(ctx, "correct horse")
		}},
	}
	// One stale connection each: the first refusal closes it.
	for _, c := range calls {
		laptop, refresh := staleLaptopTokens(t, sys, alice)
		if err := alice.SignOutDevice(ctx, "laptop"); err != nil {
			t.Fatal(err)
		}
		if err := c.call(laptop, refresh); client.CodeOf(err) != common.ErrorCode_TOKEN_INVALID {
			t.Fatalf("%s of the signed-out laptop = %v, want TOKEN_INVALID", c.name, err)
		}
		expectSignedOut(t, laptop)
	}
	if _, err := alice.ListDevices(ctx); err != nil {
		t.Fatalf("the phone after the stale calls: %v", err)
	}
	login(t, addr, alice.name, "desk", false) // the password is unchanged
}

// A connection whose device was signed out on another device (its password
// changed there, or the device named) while its close was lost is closed
// with SIGNED_OUT at its REFRESH, and a Session on it ends there, as signed
// out: it neither waits for its access token to expire nor logs the device
// back in with the password it keeps.
func TestSignedOut_LostCloseRefreshEndsSession(t *testing.T) {
	cases := []struct {
		name    string
		signOut func(ctx context.Context, alice *user) error
	}{
		{"sign out device", func(ctx context.Context, alice *user) error {
			return alice.SignOutDevice(ctx, "laptop")
		}},
		{"change password", func(ctx context.Context, alice *user) error {
			_, err := alice.ChangePassword(ctx, "correct horse", "a new horse")
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sys := shortTokenSystem(t)
			addr := sys.GatewayAddr().String()
			alice := login(t, addr, fmt.Sprintf("alice%d", time.Now().UnixNano()%1_000_000_000),
				"phone", true)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var logins atomic.Int32
			resumed := make(chan struct{}, 1)
			sess, err := client.OpenSession(ctx, client.SessionConfig{Addr: addr,
				Login: client.LoginParams{Username: alice.name, Password: "correct horse",
					DeviceID: "laptop"},
				// No catch-up read after the resume: the REFRESH is the
				// first request after the sign-out.
				ResyncInterval: time.Hour,
				OnEvent: func(e client.Event) {
					switch e.Kind {
					case client.EventConnected:
						logins.Add(1)
					case client.EventResumed:
						select {
						case resumed <- struct{}{}:
						default:
						}
					}
				}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = sess.Close() })
			// A resume still reading after the sign-out would be refused
			// and end the session before its REFRESH.
			select {
			case <-resumed:
			case <-ctx.Done():
				t.Fatal("the laptop's session never resumed")
			}
			loseRoute(t, sys, alice.id, "laptop")
			if err := tc.signOut(ctx, alice); err != nil {
				t.Fatal(err)
			}

			select {
			case <-sess.Done():
			case <-ctx.Done():
				t.Fatalf("the signed-out laptop's session goes on after %d logins", logins.Load())
			}
			ce, ok := errors.AsType[*client.CloseError](sess.Err())
			if !errors.Is(sess.Err(), client.ErrSessionEnded) || !ok ||
				ce.Reason != protocol.CloseReason_SIGNED_OUT {
				t.Fatalf("session ended with %v, want ErrSessionEnded and CLOSE SIGNED_OUT",
					sess.Err())
			}
			if n := logins.Load(); n != 1 {
				t.Fatalf("the session logged in %d times, want once", n)
			}
		})
	}
}

// shortTokenSystem is signedOutSystem with access tokens that live 4 s, so
// that a Session refreshes within a test.
func shortTokenSystem(t *testing.T) *System {
	cfg := baseConfig(t, RoleAll)
	cfg.Logic.DBDSN = filepath.Join(cfg.DataDir, "resonance.db")
	cfg.Gateway.RenewInterval = time.Hour
	cfg.Logic.TokenTTL = 4 * time.Second
	// As in TestSession_RefreshesBeforeTokenExpiry: the wheel first looks
	// at a connection at its login deadline, which must come before the
	// token's expiry.
	cfg.Gateway.LoginTimeout = 3 * time.Second
	return startSystem(t, cfg)
}
