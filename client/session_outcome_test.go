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

// A Session's CreateGroup whose answer is lost retries with the same client
// msg id and returns the group the lost request made: one group, not two.
func TestSession_CreateGroupSettlesALostAnswer(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	_, bobID := loginNew(t, s, "bob", client.Options{})
	loginNew(t, s, "alice", client.Options{})
	sess := openSession(t, s, "alice", "phone", nil)
	t.Cleanup(func() { _ = sess.Close() })
	collectSession(t, sess)

	s.LoseReplies(protocol.Op_CREATE_GROUP, 1)
	g, err := sess.CreateGroup(context.Background(), "g", []int64{bobID})
	if err != nil {
		t.Fatalf("CreateGroup = %v", err)
	}
	next, err := sess.CreateGroup(context.Background(), "h", []int64{bobID})
	if err != nil {
		t.Fatal(err)
	}
	if g.ConvId != "g:1" || next.ConvId != "g:2" {
		t.Fatalf("groups %q then %q, want g:1 (made by the lost request) then g:2", g.ConvId,
			next.ConvId)
	}
}

// A Session's group change that gives up (ctx ended) before a retry
// settled a lost answer says the outcome is unknown.
func TestSession_ManageGroupUnsettledIsUnknown(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	_, bobID := loginNew(t, s, "bob", client.Options{})
	loginNew(t, s, "alice", client.Options{})
	sess := openSession(t, s, "alice", "phone", nil)
	t.Cleanup(func() { _ = sess.Close() })
	collectSession(t, sess)
	g, err := sess.CreateGroup(context.Background(), "g", []int64{bobID})
	if err != nil {
		t.Fatal(err)
	}

	release := s.HoldLogins()
	t.Cleanup(release)
	s.LoseReplies(protocol.Op_MANAGE_GROUP, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := sess.ManageGroup(ctx, &protocol.ManageGroupReq{ConvId: g.ConvId,
			Action: common.GroupAction_SET_ROLE, Role: common.GroupRole_OWNER,
			UserIds: []int64{bobID}})
		done <- err
	}()
	// The retry waits for a connection, whose login is held.
	waitFor(t, "a reconnect held", func() bool { return s.HeldLogins() > 0 })
	cancel()
	err = <-done
	if !errors.Is(err, client.ErrOutcomeUnknown) || !errors.Is(err, context.Canceled) {
		t.Fatalf("ManageGroup given up after a lost answer = %v, want ErrOutcomeUnknown "+
			"and the context's error", err)
	}
}

// A Session's Logout whose LOGOUT answers are lost says that the device may
// be signed out: it is.
func TestSession_LogoutUnansweredIsUnknown(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	loginNew(t, s, "alice", client.Options{})
	sess := openSession(t, s, "alice", "phone", nil)
	collectSession(t, sess)
	waitFor(t, "the session connected", func() bool { return s.SignedIn("alice", "phone") })

	s.LoseReplies(protocol.Op_LOGOUT, 10)
	err := sess.Logout(context.Background())
	if !errors.Is(err, client.ErrLogoutUnconfirmed) || !errors.Is(err, client.ErrOutcomeUnknown) {
		t.Fatalf("Logout with its answers lost = %v, want ErrLogoutUnconfirmed and "+
			"ErrOutcomeUnknown", err)
	}
	if s.SignedIn("alice", "phone") {
		t.Fatal("the device is signed in: the lost LOGOUT was not acted on")
	}
}

// A Session whose REFRESH answer is lost presents the same refresh token
// again at once, on its next connection, while the server still takes it
// back: waiting for the next refresh time would present it after the grace,
// which the server takes for reuse and signs the device out.
func TestSession_RefreshRetriesALostAnswerWithinTheGrace(t *testing.T) {
	s := startServer(t, clienttest.Options{TokenTTL: 1500 * time.Millisecond,
		RefreshRetryGrace: time.Second})
	loginNew(t, s, "alice", client.Options{})
	sess := openSession(t, s, "alice", "phone", nil)
	t.Cleanup(func() { _ = sess.Close() })
	collectSession(t, sess)

	s.LoseReplies(protocol.Op_REFRESH, 1)
	waitFor(t, "a refresh after the lost one, or the end", func() bool {
		select {
		case <-sess.Done():
			return true
		default:
			return s.Requests(protocol.Op_REFRESH) >= 3
		}
	})
	if err := sess.Err(); err != nil {
		t.Fatalf("the session ended after a lost REFRESH answer: %v", err)
	}
	if !s.SignedIn("alice", "phone") {
		t.Fatal("the device was signed out after a lost REFRESH answer")
	}
}

// A retry refused by a server that did not act on it (RATE_LIMITED here,
// which the Session does not retry) settles nothing: the lost attempt may
// have made the change, so the outcome stays unknown.
func TestSession_GroupChangeRefusedRetryIsUnknown(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	_, bobID := loginNew(t, s, "bob", client.Options{})
	loginNew(t, s, "alice", client.Options{})
	sess := openSession(t, s, "alice", "phone", nil)
	t.Cleanup(func() { _ = sess.Close() })
	collectSession(t, sess)

	s.LoseReplies(protocol.Op_CREATE_GROUP, 1)
	s.Refuse(protocol.Op_CREATE_GROUP, common.ErrorCode_RATE_LIMITED, 1)
	_, err := sess.CreateGroup(context.Background(), "g", []int64{bobID})
	if !errors.Is(err, client.ErrOutcomeUnknown) ||
		client.CodeOf(err) != common.ErrorCode_RATE_LIMITED {
		t.Fatalf("CreateGroup refused after a lost answer = %v, want ErrOutcomeUnknown "+
			"and the refusal", err)
	}
	if n := s.Requests(protocol.Op_CREATE_GROUP); n != 2 {
		t.Fatalf("%d CREATE_GROUP requests, want 2 (the lost one, the refused retry)", n)
	}
}
