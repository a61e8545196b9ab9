package client_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/client/clienttest"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// eventLog records a Session's events.
type eventLog struct {
	mu     sync.Mutex
	events []client.Event
}

func (l *eventLog) add(e client.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

// count is how many events of kind were recorded.
func (l *eventLog) count(kind client.EventKind) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.events {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

// of returns the events of kind recorded.
func (l *eventLog) of(kind client.EventKind) []client.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []client.Event
	for _, e := range l.events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// A conversation whose SYNC the server refuses (one the user may no longer
// read) is passed over and reported once; the catch-up of the others goes
// on, and the session stays connected.
func TestSession_PassesOverAConversationTheServerRefuses(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	_, aliceID := loginNew(t, s, "alice", client.Options{})
	bob, bobID := loginNew(t, s, "bob", client.Options{})
	carol, carolID := loginNew(t, s, "carol", client.Options{})
	sendN(t, bob, aliceID, 2, "from bob")
	sendN(t, carol, aliceID, 2, "from carol")
	bobConv := client.P2PConvID(aliceID, bobID)
	carolConv := client.P2PConvID(aliceID, carolID)
	s.RefuseSyncs(bobConv, common.ErrorCode_FORBIDDEN)

	var log eventLog
	sess := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
		c.ResyncInterval = 50 * time.Millisecond
		c.OnEvent = log.add
	})
	st := collectSession(t, sess)
	waitFor(t, "carol's messages", func() bool { return st.count(carolConv) == 2 })
	st.checkExactly(t, carolConv, 2)
	waitFor(t, "a completed catch-up", func() bool {
		return log.count(client.EventResumed) >= 1
	})

	// A push behind the gap asks for bob's conversation again, and so does
	// every resync while the gap stays: refused each time, reported once.
	syncs := s.Requests(protocol.Op_SYNC)
	sendN(t, bob, aliceID, 1, "later")
	waitFor(t, "bob's conversation asked again at the push and two resyncs", func() bool {
		return s.Requests(protocol.Op_SYNC) >= syncs+3
	})
	refused := log.of(client.EventConvRefused)
	if len(refused) != 1 || refused[0].ConvID != bobConv ||
		client.CodeOf(refused[0].Err) != common.ErrorCode_FORBIDDEN {
		t.Fatalf("refusal events %+v, want one of %s with FORBIDDEN", refused, bobConv)
	}
	if n := log.count(client.EventDisconnected); n != 0 {
		t.Fatalf("%d disconnections, want none", n)
	}
	if n := st.count(bobConv); n != 0 {
		t.Fatalf("%d messages of the refused conversation handed over, want none", n)
	}
}

// A catch-up answered TOKEN_INVALID comes from a signed-out device whose
// close was lost: the session ends as at a CLOSE SIGNED_OUT, whether the
// gateway sends that close behind the answer or, older, sends none; it
// does not reconnect, which would sign the device in again with the
// password.
func TestSession_TokenInvalidCatchUpEndsSignedOut(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("gateway keeps the connection %v", keep), func(t *testing.T) {
			s := startServer(t, clienttest.Options{KeepSignedOut: keep})
			_, aliceID := loginNew(t, s, "alice", client.Options{})
			bob, bobID := loginNew(t, s, "bob", client.Options{})
			sendN(t, bob, aliceID, 1, "from bob")
			s.RefuseSyncs(client.P2PConvID(aliceID, bobID), common.ErrorCode_TOKEN_INVALID)

			sess := openSession(t, s, "alice", "phone", nil)
			t.Cleanup(func() { _ = sess.Close() })
			select {
			case <-sess.Done():
			case <-time.After(10 * time.Second):
				t.Fatalf("the session goes on after TOKEN_INVALID (%d logins)",
					s.Requests(protocol.Op_LOGIN))
			}
			ce, ok := errors.AsType[*client.CloseError](sess.Err())
			if !errors.Is(sess.Err(), client.ErrSessionEnded) || !ok ||
				ce.Reason != protocol.CloseReason_SIGNED_OUT || ce.ShouldReconnect() {
				t.Fatalf("session ended with %v, want ErrSessionEnded and CLOSE SIGNED_OUT",
					sess.Err())
			}
			if n := s.Requests(protocol.Op_LOGIN); n != 3 { // alice, bob, the session
				t.Fatalf("%d logins, want 3: the session logged in again", n)
			}
		})
	}
}
