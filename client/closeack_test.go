package client_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/client/clienttest"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// A message handed to the application before Close is acknowledged to the
// server by Close's final DELIVERED, even when Close comes while the
// session is fetching a gap: a device without local positions starts its
// next run from the server's delivered position, and one that never
// reached the server makes a StartAtLatest device skip what came since.
func TestSession_CloseDuringFillStillAcksHandedOver(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	bob, aliceID, conv := pair(t, s, "bob", "alice")
	sess := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
		c.AckInterval = time.Hour // only Close's final acknowledgement sends positions
	})
	got := make(chan int64, 8)
	go func() {
		for m := range sess.Messages() {
			got <- m.Seq
		}
	}()
	sendN(t, bob, aliceID, 1, "first")
	select {
	case seq := <-got:
		if seq != 1 {
			t.Fatalf("first message handed over as seq %d", seq)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("first message not handed over")
	}

	// The push of 2 is lost and 3 reveals the gap: the session fetches it
	// with a SYNC the server answers late, and Close comes meanwhile.
	s.SlowSync(700 * time.Millisecond)
	s.DropPushes(1)
	syncs := s.Requests(protocol.Op_SYNC)
	sendN(t, bob, aliceID, 2, "gap")
	waitFor(t, "the fill's SYNC out", func() bool { return s.Requests(protocol.Op_SYNC) > syncs })
	_ = sess.Close()

	if seq := s.DeliveredSeq("alice", "phone", conv); seq != 1 {
		t.Fatalf("server's delivered position after Close = %d, want 1 (handed over before Close)", seq)
	}
}

// closeDuringReconnectLogin opens a session for alice that was handed seq 1
// of conv, then drops its connection with the server holding the
// reconnect's LOGIN, and returns once that LOGIN is waiting, with what
// answers it. AckInterval is an hour: only a final DELIVERED reports the
// hand-over.
func closeDuringReconnectLogin(t *testing.T, s *clienttest.Server) (sess *client.Session,
	conv string, st *stream, releaseLogin func()) {
	t.Helper()
	bob, aliceID, conv := pair(t, s, "bob", "alice")
	sess = openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
		c.AckInterval = time.Hour
	})
	st = collectSession(t, sess)
	sendN(t, bob, aliceID, 1, "first")
	waitFor(t, "seq 1 handed over", func() bool { return st.count(conv) == 1 })

	releaseLogin = s.HoldLogins()
	t.Cleanup(releaseLogin)
	s.CloseUser("alice", protocol.CloseReason_SERVER_SHUTDOWN, 0)
	waitFor(t, "the reconnect's LOGIN held", func() bool { return s.HeldLogins() == 1 })
	// Stored while alice is away: the closed session must not hand it over.
	sendN(t, bob, aliceID, 1, "away")
	return sess, conv, st, releaseLogin
}

// Close while a reconnect logs in waits for that login and sends the final
// DELIVERED on it: the connection that had the hand-over is gone, and
// without it the server keeps an older delivered position, from which the
// next start at the latest hands the same messages over again.
func TestSession_CloseDuringReconnectLoginStillAcksHandedOver(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	sess, conv, st, releaseLogin := closeDuringReconnectLogin(t, s)

	time.AfterFunc(200*time.Millisecond, releaseLogin)
	_ = sess.Close()

	if seq := s.DeliveredSeq("alice", "phone", conv); seq != 1 {
		t.Fatalf("server's delivered position after Close = %d, want 1", seq)
	}
	st.checkSeqs(t, conv, 1)
}

// A login that never answers holds Close no longer than the final
// DELIVERED's bound.
func TestSession_CloseDuringAStuckLoginReturns(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	sess, conv, st, _ := closeDuringReconnectLogin(t, s)

	start := time.Now()
	_ = sess.Close()
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Close took %v with the login unanswered", took)
	}
	st.checkSeqs(t, conv, 1)
}

// closeInBackoff opens a session for alice that was handed seq 1 of conv,
// then has the server close her connection with an hour's reconnect delay,
// as a server restarting does, and returns once the session waits it out.
// A message stored meanwhile must not be handed over. With reported, the
// server acknowledged seq 1 before the close; otherwise only a final
// DELIVERED can report it (AckInterval is an hour).
func closeInBackoff(t *testing.T, s *clienttest.Server, reported bool) (sess *client.Session,
	conv string, st *stream) {
	t.Helper()
	bob, aliceID, conv := pair(t, s, "bob", "alice")
	var away atomic.Bool
	sess = openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
		if !reported {
			c.AckInterval = time.Hour
		}
		c.OnEvent = func(e client.Event) {
			if e.Kind == client.EventDisconnected {
				away.Store(true)
			}
		}
	})
	st = collectSession(t, sess)
	sendN(t, bob, aliceID, 1, "first")
	waitFor(t, "seq 1 handed over", func() bool { return st.count(conv) == 1 })
	if reported {
		waitFor(t, "seq 1 acknowledged", func() bool {
			return s.DeliveredSeq("alice", "phone", conv) == 1
		})
	}

	s.CloseUser("alice", protocol.CloseReason_SERVER_SHUTDOWN, time.Hour)
	waitFor(t, "the session waiting to reconnect", away.Load)
	sendN(t, bob, aliceID, 1, "away")
	return sess, conv, st
}

// closeWithin closes sess and fails t if that takes longer than the final
// DELIVERED's bound of a second, with some slack for a loaded machine.
func closeWithin(t *testing.T, sess *client.Session) {
	t.Helper()
	start := time.Now()
	_ = sess.Close()
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Fatalf("Close took %v, want about a second at most", took)
	}
}

// Close while the session waits to reconnect logs in once to send the final
// DELIVERED: no connection is left to carry it, and without it the server
// keeps an older delivered position, from which the next start at the
// latest hands the same messages over again.
func TestSession_CloseInBackoffStillAcksHandedOver(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	sess, conv, st := closeInBackoff(t, s, false)

	closeWithin(t, sess)
	if seq := s.DeliveredSeq("alice", "phone", conv); seq != 1 {
		t.Fatalf("server's delivered position after Close = %d, want 1", seq)
	}
	waitFor(t, "the connection that carried it closed", func() bool {
		return s.Online("alice") == 0
	})
	st.checkSeqs(t, conv, 1)
}

// With every position handed over acknowledged, Close in the backoff has
// nothing to report and does not log in.
func TestSession_CloseInBackoffWithAllAckedStaysAway(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	sess, conv, st := closeInBackoff(t, s, true)

	release := s.HoldLogins()
	defer release()
	_ = sess.Close()
	if n := s.HeldLogins(); n != 0 {
		t.Fatalf("%d logins after Close, want none", n)
	}
	st.checkSeqs(t, conv, 1)
}

// Close in the backoff returns within the final DELIVERED's bound when the
// server cannot take it: gone (the dial is refused), or accepting
// connections but never answering a login, the longest the attempt can be
// kept waiting.
func TestSession_CloseInBackoffWithServerUnreachableReturns(t *testing.T) {
	for _, tc := range []struct {
		name     string
		silent   bool // the server stays up and holds logins; else it closes
		attempts int  // logins held by the time Close returns
	}{
		{name: "gone"},
		{name: "login unanswered", silent: true, attempts: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, clienttest.Options{})
			sess, conv, st := closeInBackoff(t, s, false)
			if tc.silent {
				t.Cleanup(s.HoldLogins())
			} else {
				s.Close()
			}

			closeWithin(t, sess)
			if n := s.HeldLogins(); n != tc.attempts {
				t.Fatalf("%d logins held, want %d", n, tc.attempts)
			}
			st.checkSeqs(t, conv, 1)
		})
	}
}

// Close right after a reconnect attempt failed, before the session looked
// for it, still sends the final DELIVERED: the attempt, cut off from Close,
// did not carry it, and the session is away as in the backoff, so it logs
// in once more for it. The hook holds the session between the failure and
// its look until Close has begun.
func TestSession_CloseJustAfterAFailedAttemptStillAcksHandedOver(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	bob, aliceID, conv := pair(t, s, "bob", "alice")
	closed := make(chan struct{})
	sess := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
		c.AckInterval = time.Hour // only a final DELIVERED reports the hand-over
		var once sync.Once
		client.AfterFailedAttempt(c, func(sess *client.Session) {
			once.Do(func() {
				go func() { _ = sess.Close(); close(closed) }()
				<-sess.Closing()
			})
		})
	})
	st := collectSession(t, sess)
	sendN(t, bob, aliceID, 1, "first")
	waitFor(t, "seq 1 handed over", func() bool { return st.count(conv) == 1 })

	s.FailLogins(1) // the reconnect's attempt; the login after Close succeeds
	s.CloseUser("alice", protocol.CloseReason_SERVER_SHUTDOWN, 0)
	<-closed

	if seq := s.DeliveredSeq("alice", "phone", conv); seq != 1 {
		t.Fatalf("server's delivered position after Close = %d, want 1", seq)
	}
	st.checkSeqs(t, conv, 1)
}

// gatedPositions is a PositionStore whose first SetPosition of a seq waits
// for release: the delivery goroutine then holds between putting the
// message in Messages and recording it as delivered.
type gatedPositions struct {
	client.PositionStore
	seq     int64
	entered chan struct{} // closed when the SetPosition of seq waits
	release chan struct{}
	once    sync.Once
}

func (p *gatedPositions) SetPosition(convID string, seq int64) {
	if seq == p.seq {
		p.once.Do(func() {
			close(p.entered)
			<-p.release
		})
	}
	p.PositionStore.SetPosition(convID, seq)
}

// Close just after a message entered Messages, before the session recorded
// it as delivered, still reports it with the final DELIVERED: the
// application has it. The store holds the delivery goroutine in that gap
// until the final DELIVERED is about to be taken (or, when nothing waits for
// the gap, until the session ended).
func TestSession_CloseInTheHandOverGapStillAcksIt(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	bob, aliceID, conv := pair(t, s, "bob", "alice")
	store := &gatedPositions{PositionStore: client.NewMemoryPositions(), seq: 1,
		entered: make(chan struct{}), release: make(chan struct{})}
	var release sync.Once
	open := func() { release.Do(func() { close(store.release) }) }
	sess := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
		c.AckInterval = time.Hour // only a final DELIVERED reports the hand-over
		c.Positions = store
		client.BeforeHandOverWait(c, func(*client.Session) { open() })
	})
	st := collectSession(t, sess)
	sendN(t, bob, aliceID, 1, "first")
	<-store.entered
	waitFor(t, "seq 1 handed over", func() bool { return st.count(conv) == 1 })

	go func() { <-sess.Done(); open() }()
	_ = sess.Close()

	if seq := s.DeliveredSeq("alice", "phone", conv); seq != 1 {
		t.Fatalf("server's delivered position after Close = %d, want 1", seq)
	}
}

// Close's final DELIVERED is sent while a refusal of DELIVERED is still
// remembered: the server may have gained the op meanwhile (upgraded, the
// session reconnected to the new release), and a session that ends has no
// later to report its positions at. Left unreported, the server keeps an
// older position for the device, from which its next process hands the
// same messages over again.
func TestSession_CloseAcksWhileARefusedDeliveredIsRemembered(t *testing.T) {
	tests := []struct {
		name  string
		older func(*clienttest.Server, ...protocol.Op)
		// resumes is how many resumes the refusal leaves behind: a close
		// for the op costs a connection.
		resumes int
	}{
		{name: "answers UNSUPPORTED", older: (*clienttest.Server).Unsupported, resumes: 1},
		{name: "closes on unknown opcodes", older: (*clienttest.Server).Unknown, resumes: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, clienttest.Options{})
			tt.older(s, protocol.Op_DELIVERED)
			bob, aliceID, conv := pair(t, s, "bob", "alice")
			gate := &clienttest.AwayGate{}
			sess := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
				c.OnEvent = gate.OnEvent
				c.ResyncInterval = time.Hour // the refusal is remembered for an hour
			})
			st := collectSession(t, sess)
			sendN(t, bob, aliceID, 3, "before the upgrade")
			waitFor(t, "3 messages", func() bool { return st.count(conv) == 3 })
			waitFor(t, "a DELIVERED refused", func() bool {
				return s.Requests(protocol.Op_DELIVERED) > 0 && gate.Resumes() == tt.resumes
			})

			// The upgrade restarts the server: the session comes back to
			// the release that has DELIVERED.
			s.Upgrade(protocol.Op_DELIVERED)
			s.CloseUser("alice", protocol.CloseReason_SERVER_SHUTDOWN, 0)
			waitFor(t, "a resume on the upgraded server", func() bool {
				return gate.Resumes() == tt.resumes+1
			})
			_ = sess.Close()
			if seq := s.DeliveredSeq("alice", "phone", conv); seq != 3 {
				t.Fatalf("server's delivered position after Close = %d, want 3", seq)
			}
		})
	}
}
