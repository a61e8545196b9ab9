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

// DeleteAccount tells a refusal and a request that was not sent from one
// whose answer was lost, and a deletion closes the user's other
// connections with ACCOUNT_DELETED.
func TestClient_DeleteAccount(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		fault    func(*clienttest.Server, *client.Client)
		password string
		unknown  bool
		code     common.ErrorCode
		is       error
		deleted  bool
	}{
		{name: "answered", deleted: true},
		{name: "reply lost", unknown: true, deleted: true,
			fault: func(s *clienttest.Server, _ *client.Client) {
				s.LoseReplies(protocol.Op_DELETE_ACCOUNT, 1)
			}},
		{name: "request lost", unknown: true,
			fault: func(s *clienttest.Server, _ *client.Client) {
				s.LoseRequests(protocol.Op_DELETE_ACCOUNT, 1)
			}},
		{name: "wrong password", password: "wrong-password",
			code: common.ErrorCode_INVALID_CREDENTIALS},
		{name: "not sent", is: client.ErrClosed,
			fault: func(_ *clienttest.Server, c *client.Client) { _ = c.Close() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, clienttest.Options{})
			phone, id := loginNew(t, s, "alice", client.Options{})
			laptop, _, err := loginDevice(t, s, passwordLogin("alice", "laptop"))
			if err != nil {
				t.Fatal(err)
			}
			if tc.fault != nil {
				tc.fault(s, phone)
			}
			password := passwordOf("alice")
			if tc.password != "" {
				password = tc.password
			}

			err = phone.DeleteAccount(ctx, password)
			if got := errors.Is(err, client.ErrOutcomeUnknown); got != tc.unknown {
				t.Errorf("DeleteAccount = %v: outcome unknown %t, want %t", err, got, tc.unknown)
			}
			if tc.code != 0 && client.CodeOf(err) != tc.code {
				t.Errorf("DeleteAccount = %v, want %s", err, tc.code)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("DeleteAccount = %v, want %v", err, tc.is)
			}
			if tc.name == "answered" && err != nil {
				t.Fatalf("DeleteAccount = %v", err)
			}
			if got := s.Deleted(id); got != tc.deleted {
				t.Fatalf("deleted = %t, want %t", got, tc.deleted)
			}
			if !tc.deleted {
				return
			}
			select {
			case <-laptop.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("the other device is still connected")
			}
			var ce *client.CloseError
			if err := laptop.Err(); !errors.As(err, &ce) ||
				ce.Reason != protocol.CloseReason_ACCOUNT_DELETED || ce.ShouldReconnect() {
				t.Fatalf("the other device ended with %v, want ACCOUNT_DELETED", err)
			}
		})
	}
}

// A Session that deletes the account ends with ErrAccountDeleted, and the
// user's other Session ends for good with it too, without reconnecting.
func TestSession_DeleteAccountEndsSessionsForGood(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	loginNew(t, s, "alice", client.Options{})
	var phoneGate, laptopGate clienttest.AwayGate
	phone := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
		c.OnEvent = phoneGate.OnEvent
	})
	laptop := openSession(t, s, "alice", "laptop", func(c *client.SessionConfig) {
		c.OnEvent = laptopGate.OnEvent
	})
	t.Cleanup(func() { _ = phone.Close(); _ = laptop.Close() })
	collectSession(t, phone)
	collectSession(t, laptop)
	waitFor(t, "both sessions caught up", func() bool {
		return phoneGate.Resumes() == 1 && laptopGate.Resumes() == 1
	})
	ctx := context.Background()

	err := phone.DeleteAccount(ctx, "wrong-password")
	if client.CodeOf(err) != common.ErrorCode_INVALID_CREDENTIALS || phone.Err() != nil {
		t.Fatalf("DeleteAccount with a wrong password = %v, session %v", err, phone.Err())
	}
	if err := phone.DeleteAccount(ctx, passwordOf("alice")); err != nil {
		t.Fatal(err)
	}
	if err := phone.Err(); !errors.Is(err, client.ErrAccountDeleted) {
		t.Fatalf("the deleting session's Err = %v, want ErrAccountDeleted", err)
	}
	select {
	case <-laptop.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the other session still runs")
	}
	err = laptop.Err()
	if !errors.Is(err, client.ErrAccountDeleted) || !errors.Is(err, client.ErrSessionEnded) {
		t.Fatalf("the other session's Err = %v, want ErrSessionEnded and ErrAccountDeleted", err)
	}
	if phoneGate.Resumes() != 1 || laptopGate.Resumes() != 1 {
		t.Fatalf("reconnected after the deletion: resumes %d and %d", phoneGate.Resumes(),
			laptopGate.Resumes())
	}
	_, _, err = loginDevice(t, s, passwordLogin("alice", "tablet"))
	if client.CodeOf(err) != common.ErrorCode_INVALID_CREDENTIALS {
		t.Fatalf("login after the deletion = %v, want INVALID_CREDENTIALS", err)
	}
}
