package client_test

import (
	"slices"
	"sync/atomic"
	"testing"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/client/clienttest"
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
				bob, bobID := loginNew(t, s, "bob", client.Options{})
				_, aliceID := loginNew(t, s, "alice", client.Options{})
				conv := client.P2PConvID(aliceID, bobID)
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
			bob, bobID := loginNew(t, s, "bob", client.Options{})
			_, aliceID := loginNew(t, s, "alice", client.Options{})
			conv := client.P2PConvID(aliceID, bobID)
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
