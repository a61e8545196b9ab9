package client_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/client/clienttest"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// deliverOnce runs a session of alice's device that hands over conv's first
// n messages and reports them, then ends, as an app process that exits.
func deliverOnce(t *testing.T, s *clienttest.Server, device, conv string, n int) {
	t.Helper()
	sess := openSession(t, s, "alice", device, nil)
	st := collectSession(t, sess)
	waitFor(t, "the first messages", func() bool { return st.count(conv) == n })
	waitFor(t, "their DELIVERED", func() bool {
		return s.DeliveredSeq("alice", device, conv) == int64(n)
	})
	_ = sess.Close()
}

// A new process of a device (a fresh MemoryPositions, as by default) starts
// each conversation where the server says the device got to. A push that
// overtakes the listing must not decide the start instead: with it, the
// Session handed the device's old messages over again, or (StartAtLatest)
// skipped what came while the app was closed.
func TestSession_PushBeforeTheListingKeepsTheDevicePosition(t *testing.T) {
	for _, latest := range []bool{false, true} {
		t.Run(map[bool]string{false: "from the first", true: "at the latest"}[latest],
			func(t *testing.T) {
				s := startServer(t, clienttest.Options{})
				bob, aliceID, conv := pair(t, s, "bob", "alice")
				sendN(t, bob, aliceID, 3, "seen")
				deliverOnce(t, s, "phone", conv, 3)
				sendN(t, bob, aliceID, 4, "while closed")

				release := s.HoldSyncConvs()
				defer release()
				sess := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
					c.StartAtLatest = latest
				})
				st := collectSession(t, sess)
				sendN(t, bob, aliceID, 1, "pushed")
				waitFor(t, "the push offered", func() bool { return sess.Tracks(conv) })
				release()
				waitFor(t, "seq 8", func() bool { return st.has(conv, 8) })
				st.checkSeqs(t, conv, 4, 5, 6, 7, 8)
			})
	}
}

// has reports whether seq of conv was handed over.
func (st *stream) has(conv string, seq int64) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return slices.Contains(st.seqs[conv], seq)
}

// A device continues a conversation where it started it: one that a
// StartAtLatest session started at its newest message, without handing
// anything over, is continued by the next process from there (from the
// app's persisted store, or the server's delivered position), not from
// what is newest then.
func TestSession_StartAtLatestResumesWhereItStarted(t *testing.T) {
	tests := []struct {
		name string
		// persisted: the app keeps one store over its processes; else
		// each process has its own and relies on the server's position.
		persisted bool
	}{
		{name: "persisted store", persisted: true},
		{name: "server's position"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, clienttest.Options{})
			bob, aliceID, conv := pair(t, s, "bob", "alice")
			sendN(t, bob, aliceID, 5, "old")
			nextMilli()

			store := client.NewMemoryPositions()
			positions := func() client.PositionStore {
				if tt.persisted {
					return store
				}
				return client.NewMemoryPositions()
			}
			var resumes atomic.Int32
			first := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
				c.StartAtLatest, c.Positions = true, positions()
				c.OnEvent = countResumes(&resumes)
			})
			collectSession(t, first)
			waitFor(t, "the first resume", func() bool { return resumes.Load() > 0 })
			if got := first.Position(conv); got != 5 {
				t.Fatalf("started at %d, want 5", got)
			}
			if !tt.persisted {
				waitFor(t, "the start reported", func() bool {
					return s.DeliveredSeq("alice", "phone", conv) == 5
				})
			}
			_ = first.Close()

			sendN(t, bob, aliceID, 2, "while closed")
			nextMilli()
			second := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
				c.StartAtLatest, c.Positions = true, positions()
			})
			st := collectSession(t, second)
			sendN(t, bob, aliceID, 1, "after")
			waitFor(t, "seq 8", func() bool { return st.has(conv, 8) })
			st.checkSeqs(t, conv, 6, 7, 8)
		})
	}
}

// countResumes is an OnEvent that counts EventResumed.
func countResumes(n *atomic.Int32) func(client.Event) {
	return func(e client.Event) {
		if e.Kind == client.EventResumed {
			n.Add(1)
		}
	}
}

// openListingHeld opens a session of alice's device "new", StartAtLatest
// unless tweak says otherwise, whose first listing waits for release, and
// collects it.
func openListingHeld(t *testing.T, s *clienttest.Server,
	tweak func(*client.SessionConfig)) (*client.Session, *stream, func()) {
	t.Helper()
	release := s.HoldSyncConvs()
	t.Cleanup(release)
	sess := openSession(t, s, "alice", "new", func(c *client.SessionConfig) {
		c.StartAtLatest = true
		if tweak != nil {
			tweak(c)
		}
	})
	return sess, collectSession(t, sess), release
}

// The backward pages that look for the start may take several, to the
// newest message from before the login or to the first of all.
func TestSession_StartAtLatestPagesBackToTheLogin(t *testing.T) {
	tests := []struct {
		name     string
		old, new int
	}{
		{name: "to the newest old message", old: 3, new: 7},
		{name: "to the first message", new: 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, clienttest.Options{})
			carol, aliceID, conv := pair(t, s, "carol", "alice")
			sendN(t, carol, aliceID, tt.old, "old")
			nextMilli()

			_, st, release := openListingHeld(t, s, func(c *client.SessionConfig) {
				c.SyncPage = 2
			})
			s.DropPushes(tt.new)
			sendN(t, carol, aliceID, tt.new, "new")
			release()
			last := int64(tt.old + tt.new)
			waitFor(t, "the last message", func() bool { return st.has(conv, last) })
			st.checkSeqs(t, conv, seqRange(int64(tt.old)+1, last)...)
		})
	}
}

// A backward SYNC that fails leaves the conversation unplaced, its messages
// held, until a later connection finds the start.
func TestSession_StartAtLatestPlacesAfterAFailedLookup(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	carol, aliceID, conv := pair(t, s, "carol", "alice")
	sendN(t, carol, aliceID, 3, "old")
	nextMilli()

	var disconnects atomic.Int32
	_, st, release := openListingHeld(t, s, func(c *client.SessionConfig) {
		c.OnEvent = func(e client.Event) {
			if e.Kind == client.EventDisconnected {
				disconnects.Add(1)
			}
		}
	})
	s.FailBackwardSyncs(2)
	sendN(t, carol, aliceID, 2, "new")
	release()
	waitFor(t, "seq 5", func() bool { return st.has(conv, 5) })
	st.checkSeqs(t, conv, 4, 5)
	if n := disconnects.Load(); n != 2 {
		t.Fatalf("%d disconnections, want 2 (one per failed lookup)", n)
	}
}

// A conversation still unplaced when its connection ends is placed on the
// next one, with what came meanwhile.
func TestSession_StartAtLatestPlacesAcrossAReconnect(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	carol, aliceID, conv := pair(t, s, "carol", "alice")
	sendN(t, carol, aliceID, 3, "old")
	nextMilli()

	var disconnects atomic.Int32
	sess, st, release := openListingHeld(t, s, slowReconnect(&disconnects))
	sendN(t, carol, aliceID, 1, "pushed")
	waitFor(t, "the push held", func() bool { return sess.Tracks(conv) })
	s.CloseUser("alice", protocol.CloseReason_SERVER_SHUTDOWN, 0)
	waitFor(t, "alice offline", func() bool { return disconnects.Load() == 1 })
	sendN(t, carol, aliceID, 2, "away")
	waitFor(t, "alice back", func() bool { return s.Online("alice") == 1 })
	release()
	waitFor(t, "seq 6", func() bool { return st.has(conv, 6) })
	st.checkSeqs(t, conv, 4, 5, 6)
}

// Pushes that come while the start is looked up wait with the rest.
func TestSession_StartAtLatestHoldsPushesDuringTheLookup(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	carol, aliceID, conv := pair(t, s, "carol", "alice")
	sendN(t, carol, aliceID, 3, "old")
	nextMilli()

	_, st, release := openListingHeld(t, s, nil)
	s.DropPushes(2)
	sendN(t, carol, aliceID, 2, "not pushed")
	s.SlowSync(50 * time.Millisecond) // pushes overtake the lookup's replies
	release()
	sendN(t, carol, aliceID, 3, "pushed")
	waitFor(t, "seq 8", func() bool { return st.has(conv, 8) })
	st.checkSeqs(t, conv, 4, 5, 6, 7, 8)
}

// The device's own message sent into a conversation before its start is
// known is handed over once, in order, after the start is found.
func TestSession_StartAtLatestOwnSendBeforeTheStart(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	carol, carolID := loginNew(t, s, "carol", client.Options{})
	_, aliceID := loginNew(t, s, "alice", client.Options{})
	conv := client.P2PConvID(aliceID, carolID)
	sendN(t, carol, aliceID, 3, "old")
	nextMilli()

	sess, st, release := openListingHeld(t, s, nil)
	ack, err := sess.Send(context.Background(), client.SendParams{ToUserID: carolID,
		Text: "mine"})
	if err != nil || ack.Seq != 4 {
		t.Fatalf("Send = %+v, %v", ack, err)
	}
	s.DropPushes(1)
	sendN(t, carol, aliceID, 1, "reply")
	release()
	waitFor(t, "seq 5", func() bool { return st.has(conv, 5) })
	st.checkSeqs(t, conv, 4, 5)
	if m := st.messages()[0]; string(m.Content) != "mine" || m.SenderDevice != "new" {
		t.Fatalf("seq 4 handed over as %+v", m)
	}
}

func seqRange(from, to int64) []int64 {
	var out []int64
	for seq := from; seq <= to; seq++ {
		out = append(out, seq)
	}
	return out
}

// A push of a message from before the login, redelivered late after a
// server failure, must not decide where a conversation starts either: the
// device's position on the server does or, without one, the first message
// (the newest from before the login, with StartAtLatest).
func TestSession_IgnoresALatePushOfAnOldMessage(t *testing.T) {
	tests := []struct {
		name   string
		latest bool
		// delivered is the device's position from an earlier process.
		delivered int
		repush    int64
		want      []int64
	}{
		{name: "at the latest, device position", latest: true, delivered: 3, repush: 9,
			want: seqRange(4, 11)},
		{name: "at the latest, no device position", latest: true, repush: 9,
			want: []int64{11}},
		{name: "from the first, device position", delivered: 3, repush: 1,
			want: seqRange(4, 11)},
		{name: "from the first, no device position", repush: 1, want: seqRange(1, 11)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, clienttest.Options{})
			bob, aliceID, conv := pair(t, s, "bob", "alice")
			sendN(t, bob, aliceID, tt.delivered, "seen")
			if tt.delivered > 0 {
				deliverOnce(t, s, "new", conv, tt.delivered)
			}
			sendN(t, bob, aliceID, 10-tt.delivered, "while closed")
			nextMilli()

			sess, st, release := openListingHeld(t, s, func(c *client.SessionConfig) {
				c.StartAtLatest = tt.latest
			})
			s.Repush(conv, tt.repush)
			waitFor(t, "the late push offered", func() bool { return sess.Tracks(conv) })
			release()
			sendN(t, bob, aliceID, 1, "after")
			waitFor(t, "seq 11", func() bool { return st.has(conv, 11) })
			st.checkSeqs(t, conv, tt.want...)
		})
	}
}

// A conversation started at the listing's delivered position keeps that
// position in the store: the next session on the same store lists only what
// changed since the saved cursor, so the position is all that tells the
// conversation's next push where the device got to.
func TestSession_ListedStartSurvivesARestart(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	bob, aliceID, conv := pair(t, s, "bob", "alice")
	sendN(t, bob, aliceID, 3, "seen")
	deliverOnce(t, s, "phone", conv, 3) // an earlier install handed 1-3 over

	positions := client.NewMemoryPositions()
	openResumed := func() (*client.Session, *stream) {
		var resumes atomic.Int32
		sess := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
			c.Positions, c.OnEvent = positions, countResumes(&resumes)
		})
		st := collectSession(t, sess)
		waitFor(t, "resumed", func() bool { return resumes.Load() > 0 })
		return sess, st
	}
	first, _ := openResumed() // the listing starts the conversation at 3
	_ = first.Close()

	_, st := openResumed() // nothing changed since its cursor: nothing listed
	sendN(t, bob, aliceID, 1, "after the restart")
	waitFor(t, "seq 4", func() bool { return st.has(conv, 4) })
	st.checkSeqs(t, conv, 4)
}

// A device that starts at the latest starts once: a later process on the
// same store hands over everything stored since, also in a conversation
// that began while the app was closed, as it does in one it knew. Started
// again at that process's login, the new conversation's messages were
// passed over as old history.
func TestSession_StartAtLatestKeepsTheDeviceStartAcrossProcesses(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	bob, aliceID, known := pair(t, s, "bob", "alice")
	carol, carolID := loginNew(t, s, "carol", client.Options{})
	sendN(t, bob, aliceID, 5, "old")
	nextMilli()

	store := client.NewMemoryPositions()
	var resumes atomic.Int32
	first := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
		c.StartAtLatest, c.Positions = true, store
		c.OnEvent = countResumes(&resumes)
	})
	collectSession(t, first)
	waitFor(t, "the first resume", func() bool { return resumes.Load() > 0 })
	_ = first.Close()

	// While the app is closed: more in the known conversation, and a new
	// one.
	nextMilli()
	sendN(t, bob, aliceID, 1, "while closed")
	sendN(t, carol, aliceID, 2, "new while closed")
	nextMilli()
	second := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
		c.StartAtLatest, c.Positions = true, store
	})
	st := collectSession(t, second)
	sendN(t, carol, aliceID, 1, "after")
	fresh := client.P2PConvID(aliceID, carolID)
	waitFor(t, "the new conversation's seq 3", func() bool { return st.has(fresh, 3) })
	st.checkSeqs(t, fresh, 1, 2, 3)
	waitFor(t, "the known conversation's seq 6", func() bool { return st.has(known, 6) })
	st.checkSeqs(t, known, 6)
}
