package client_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/client/clienttest"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// A server older than WATCH_PRESENCE refuses it; the Session remembers the
// refusal for a while, as for SYNC_CONVS and DELIVERED, instead of sending
// the watch set again on every new connection. Against a gateway that
// closes the connection for the op, each resend cost that connection: the
// session reconnected, sent the set again, and was closed again.
func TestSession_RemembersARefusedWatchAcrossReconnects(t *testing.T) {
	for _, tt := range olderServers {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, clienttest.Options{})
			tt.older(s, protocol.Op_WATCH_PRESENCE)
			_, bobID, _ := pair(t, s, "alice", "bob")
			var passes atomic.Int32 // of the connections' watch goroutines
			sess := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
				client.AfterWatch(c, func(*client.Session) { passes.Add(1) })
			})
			collectSession(t, sess)
			// The first connection's pass, with no set yet, so that it does
			// not send the one set below a second time.
			waitFor(t, "the first connection's watch pass", func() bool {
				return passes.Load() == 1
			})

			if _, err := sess.WatchPresence(context.Background(),
				[]int64{bobID}); err == nil {
				t.Fatal("WatchPresence on an older server: no error")
			}
			for range 3 {
				n := passes.Load()
				s.CloseUser("alice", protocol.CloseReason_SERVER_SHUTDOWN, 0)
				waitFor(t, "a new connection's watch pass", func() bool {
					return passes.Load() > n
				})
			}
			if got := s.Requests(protocol.Op_WATCH_PRESENCE); got != 1 {
				t.Fatalf("%d WATCH_PRESENCE requests after three reconnects, want 1", got)
			}
		})
	}
}

// The refusal is remembered for a while only: a server older than the op
// is soon replaced during a rolling upgrade, and the upgraded one must get
// the watch set back.
func TestSession_SendsARefusedWatchAgainLater(t *testing.T) {
	for _, tt := range olderServers {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, clienttest.Options{})
			tt.older(s, protocol.Op_WATCH_PRESENCE)
			_, bobID, _ := pair(t, s, "alice", "bob")
			var passes atomic.Int32
			sess := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
				c.ResyncInterval = 50 * time.Millisecond
				client.AfterWatch(c, func(*client.Session) { passes.Add(1) })
			})
			collectSession(t, sess)
			waitFor(t, "the first connection's watch pass", func() bool {
				return passes.Load() == 1
			})

			if _, err := sess.WatchPresence(context.Background(), []int64{bobID}); err == nil {
				t.Fatal("WatchPresence on an older server: no error")
			}
			waitFor(t, "the set sent again on a later connection", func() bool {
				s.CloseUser("alice", protocol.CloseReason_SERVER_SHUTDOWN, 0)
				return s.Requests(protocol.Op_WATCH_PRESENCE) > 1
			})
		})
	}
}
