package client_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/client/clienttest"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Logout reports what was handed over, then signs the device out: its
// tokens stop working, the session ends without reconnecting, and the
// device's next Session logs in with the password.
func TestSession_LogoutSignsTheDeviceOut(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	bob, aliceID, conv := pair(t, s, "bob", "alice")
	var mu sync.Mutex
	var token string
	sess := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
		c.AckInterval = time.Hour // only the last DELIVERED reports the hand-over
		c.OnEvent = func(e client.Event) {
			if e.Kind == client.EventConnected {
				mu.Lock()
				token = e.Login.Token
				mu.Unlock()
			}
		}
	})
	st := collectSession(t, sess)
	sendN(t, bob, aliceID, 2, "first")
	waitFor(t, "both handed over", func() bool { return st.count(conv) == 2 })

	if err := sess.Logout(context.Background()); err != nil {
		t.Fatalf("Logout = %v", err)
	}
	if seq := s.DeliveredSeq("alice", "phone", conv); seq != 2 {
		t.Fatalf("server's delivered position after Logout = %d, want 2", seq)
	}
	if s.SignedIn("alice", "phone") {
		t.Fatal("the device is still signed in after Logout")
	}
	select {
	case <-sess.Done():
	default:
		t.Fatal("the session runs on after Logout")
	}
	if err := sess.Err(); !errors.Is(err, client.ErrLoggedOut) {
		t.Fatalf("Err after Logout = %v, want ErrLoggedOut", err)
	}
	if err := sess.Logout(context.Background()); err != nil {
		t.Fatalf("a second Logout after an answered one = %v, want nil", err)
	}
	mu.Lock()
	old := token
	mu.Unlock()
	wantTokenRefused(t, s, old, "phone")

	// The sign-out holds: a session given the old token with the password
	// does not sign the device in again with the password. Given the
	// password alone, as a user typing it, it does.
	_, err := client.OpenSession(context.Background(), client.SessionConfig{Addr: s.Addr(),
		Login: client.LoginParams{Username: "alice", Password: passwordOf("alice"),
			DeviceID: "phone", Token: old}})
	if ce, ok := errors.AsType[*client.CloseError](err); !ok ||
		ce.Reason != protocol.CloseReason_SIGNED_OUT {
		t.Fatalf("a session opened with the logged-out token = %v, want CLOSE SIGNED_OUT", err)
	}
	if s.SignedIn("alice", "phone") {
		t.Fatal("the logged-out token's session signed the device in with the password")
	}
	next := openSession(t, s, "alice", "phone", nil)
	collectSession(t, next)
	if !s.SignedIn("alice", "phone") {
		t.Fatal("the next session of the device did not log in with the password")
	}
}

// Logout while the session waits to reconnect logs in once to sign out:
// no connection is left to carry the LOGOUT, and without it the device's
// tokens stay valid. It hands nothing over from that connection.
func TestSession_LogoutInBackoffSignsOutOnAConnectionOfItsOwn(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	sess, conv, st := closeInBackoff(t, s, true)

	if err := sess.Logout(context.Background()); err != nil {
		t.Fatalf("Logout = %v", err)
	}
	if s.SignedIn("alice", "phone") {
		t.Fatal("the device is still signed in after Logout")
	}
	if n := s.Requests(protocol.Op_LOGOUT); n != 1 {
		t.Fatalf("%d LOGOUT requests, want 1", n)
	}
	waitFor(t, "the connection that carried it closed", func() bool {
		return s.Online("alice") == 0
	})
	st.checkSeqs(t, conv, 1)
}

// Logout while a reconnect logs in signs that connection out once its
// login is answered, after the last DELIVERED: the LOGOUT must come after
// the login, which would otherwise leave the device signed in.
func TestSession_LogoutDuringReconnectLoginSignsItOut(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	sess, conv, st, releaseLogin := closeDuringReconnectLogin(t, s)

	go func() { <-sess.Closing(); releaseLogin() }()
	if err := sess.Logout(context.Background()); err != nil {
		t.Fatalf("Logout = %v", err)
	}
	if s.SignedIn("alice", "phone") {
		t.Fatal("the device is still signed in after Logout")
	}
	if seq := s.DeliveredSeq("alice", "phone", conv); seq != 1 {
		t.Fatalf("server's delivered position after Logout = %d, want 1", seq)
	}
	st.checkSeqs(t, conv, 1)
}

// Logout that reaches no server, or finds the session ended, says the
// device may still be signed in; the session ends all the same.
func TestSession_LogoutUnconfirmedSaysSo(t *testing.T) {
	t.Run("server gone", func(t *testing.T) {
		s := startServer(t, clienttest.Options{})
		sess, _, _ := closeInBackoff(t, s, true)
		s.Close()
		err := sess.Logout(context.Background())
		if !errors.Is(err, client.ErrLogoutUnconfirmed) {
			t.Fatalf("Logout with the server gone = %v, want ErrLogoutUnconfirmed", err)
		}
		if err := sess.Err(); !errors.Is(err, client.ErrLoggedOut) {
			t.Fatalf("Err after Logout = %v, want ErrLoggedOut", err)
		}
	})
	t.Run("session ended", func(t *testing.T) {
		s := startServer(t, clienttest.Options{})
		loginNew(t, s, "alice", client.Options{})
		sess := openSession(t, s, "alice", "phone", nil)
		collectSession(t, sess)
		s.CloseUser("alice", protocol.CloseReason_KICKED, -time.Millisecond)
		<-sess.Done()
		err := sess.Logout(context.Background())
		var ce *client.CloseError
		if !errors.Is(err, client.ErrLogoutUnconfirmed) || !errors.As(err, &ce) ||
			ce.Reason != protocol.CloseReason_KICKED {
			t.Fatalf("Logout of a kicked session = %v, want ErrLogoutUnconfirmed and KICKED", err)
		}
		if s.Requests(protocol.Op_LOGOUT) != 0 {
			t.Fatal("a LOGOUT went out after the session ended")
		}
	})
}

// A gateway older than DELIVERED closes the connection for the last
// DELIVERED, taking the LOGOUT behind it: Logout signs out on one more
// connection, which sends the LOGOUT alone.
func TestSession_LogoutOnAGatewayWithoutDelivered(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	bob, aliceID, conv := pair(t, s, "bob", "alice")
	s.Unknown(protocol.Op_DELIVERED)
	sess := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
		c.AckInterval = time.Hour // only the last DELIVERED reports the hand-over
	})
	st := collectSession(t, sess)
	sendN(t, bob, aliceID, 1, "first")
	waitFor(t, "seq 1 handed over", func() bool { return st.count(conv) == 1 })

	if err := sess.Logout(context.Background()); err != nil {
		t.Fatalf("Logout = %v", err)
	}
	if s.SignedIn("alice", "phone") {
		t.Fatal("the device is still signed in after Logout")
	}
	if n := s.Requests(protocol.Op_DELIVERED); n != 1 {
		t.Fatalf("%d DELIVERED requests, want the one refused", n)
	}
}

// A last DELIVERED refused with an error the connection survives (here
// FORBIDDEN: the user left the group meanwhile) leaves its positions
// unreported, but the LOGOUT behind it is answered. The session must not
// then log in again to report them: its tokens are revoked, so it would
// log in with the password and sign the device back in.
func TestSession_LogoutAnsweredStaysSignedOutAfterARefusedDelivered(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	bob, aliceID, _ := pair(t, s, "bob", "alice")
	sess := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
		c.AckInterval = time.Hour // only the last DELIVERED reports the hand-over
	})
	st := collectSession(t, sess)
	ctx := context.Background()
	g, err := bob.CreateGroup(ctx, "friends", []int64{aliceID}, "")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the group's creation handed over", func() bool { return st.count(g.ConvId) == 1 })
	laptop, _, err := loginDevice(t, s, passwordLogin("alice", "laptop"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := laptop.ManageGroup(ctx, &protocol.ManageGroupReq{ConvId: g.ConvId,
		Action: common.GroupAction_LEAVE}); err != nil {
		t.Fatal(err)
	}

	if err := sess.Logout(ctx); err != nil {
		t.Fatalf("Logout = %v", err)
	}
	if n := s.Requests(protocol.Op_LOGOUT); n != 1 {
		t.Fatalf("%d LOGOUT requests, want 1", n)
	}
	if s.SignedIn("alice", "phone") {
		t.Fatal("the device is signed in again after an answered Logout")
	}
}

// A Close that ends the session just as Logout begins leaves the LOGOUT to
// be sent all the same: Logout then returns nil, and Err must say the
// device logged out, as it does after any Logout that returned nil.
func TestSession_LogoutRacingCloseReportsLoggedOut(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	loginNew(t, s, "alice", client.Options{})
	closed := make(chan struct{})
	sess := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
		client.AfterLogoutBegins(c, func(sess *client.Session) {
			// Close wins the race to say why the session ends.
			go func() { defer close(closed); _ = sess.Close() }()
			<-sess.Closing()
		})
	})
	collectSession(t, sess)

	err := sess.Logout(context.Background())
	<-closed
	if err != nil {
		t.Fatalf("Logout = %v", err)
	}
	if s.SignedIn("alice", "phone") {
		t.Fatal("the device is still signed in after Logout returned nil")
	}
	if err := sess.Err(); !errors.Is(err, client.ErrLoggedOut) {
		t.Fatalf("Err after a Logout that returned nil = %v, want ErrLoggedOut", err)
	}
}
