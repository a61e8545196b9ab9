package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/client/clienttest"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// A Session whose connection is closed with ACCOUNT_SUSPENDED ends for good
// with ErrAccountSuspended, without reconnecting.
func TestSession_SuspensionEndsSessionForGood(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	loginNew(t, s, "alice", client.Options{})
	var gate clienttest.AwayGate
	phone := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
		c.OnEvent = gate.OnEvent
	})
	t.Cleanup(func() { _ = phone.Close() })
	collectSession(t, phone)
	waitFor(t, "the session caught up", func() bool { return gate.Resumes() == 1 })
	logins := s.Requests(protocol.Op_LOGIN)

	s.Suspend("alice")
	select {
	case <-phone.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the session still runs after the suspension")
	}
	err := phone.Err()
	if !errors.Is(err, client.ErrAccountSuspended) || !errors.Is(err, client.ErrSessionEnded) {
		t.Fatalf("Err = %v, want ErrSessionEnded and ErrAccountSuspended", err)
	}
	if n := s.Requests(protocol.Op_LOGIN); n != logins {
		t.Fatalf("%d logins after the suspension, want none", n-logins)
	}
}

// A login refused as suspended is final: a Session holding a token and the
// password does not fall back to the password, and ends at once.
func TestSession_SuspendedLoginTriesNoPassword(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	loginNew(t, s, "alice", client.Options{})
	_, resp, err := loginDevice(t, s, passwordLogin("alice", "phone"))
	if err != nil {
		t.Fatal(err)
	}
	s.Suspend("alice")
	logins := s.Requests(protocol.Op_LOGIN)

	cfg := client.SessionConfig{Addr: s.Addr(), Login: client.LoginParams{Username: "alice",
		Password: passwordOf("alice"), Token: resp.Token, DeviceID: "phone"}}
	sess, err := client.OpenSession(context.Background(), cfg)
	if err == nil {
		_ = sess.Close()
		t.Fatal("OpenSession of a suspended account succeeded")
	}
	if !errors.Is(err, client.ErrAccountSuspended) {
		t.Fatalf("OpenSession = %v, want ErrAccountSuspended", err)
	}
	if n := s.Requests(protocol.Op_LOGIN) - logins; n != 1 {
		t.Fatalf("%d logins, want the token's only", n)
	}
}
