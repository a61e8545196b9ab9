package client_test

import (
	"context"
	"errors"
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

// presenceIDs returns n user ids.
func presenceIDs(n int) []int64 {
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = int64(i + 1)
	}
	return ids
}

// The server refuses a presence request over MaxPresenceUsers ids as a
// whole; the SDK refuses it first, unsent, and sends one of exactly that
// many.
func TestPresence_RefusesTooManyIDsUnsent(t *testing.T) {
	type call func(context.Context, []int64) ([]*protocol.Presence, error)
	tests := []struct {
		name string
		op   protocol.Op
		call func(c *client.Client, sess *client.Session) call
	}{
		{name: "Client.GetPresence", op: protocol.Op_GET_PRESENCE,
			call: func(c *client.Client, _ *client.Session) call { return c.GetPresence }},
		{name: "Client.WatchPresence", op: protocol.Op_WATCH_PRESENCE,
			call: func(c *client.Client, _ *client.Session) call { return c.WatchPresence }},
		{name: "Session.GetPresence", op: protocol.Op_GET_PRESENCE,
			call: func(_ *client.Client, sess *client.Session) call { return sess.GetPresence }},
		{name: "Session.WatchPresence", op: protocol.Op_WATCH_PRESENCE,
			call: func(_ *client.Client, sess *client.Session) call { return sess.WatchPresence }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, clienttest.Options{})
			c, _ := loginNew(t, s, "alice", client.Options{})
			sess := openSession(t, s, "alice", "phone", nil)
			t.Cleanup(func() { _ = sess.Close() })
			collectSession(t, sess)
			presence := tc.call(c, sess)

			_, err := presence(context.Background(), presenceIDs(client.MaxPresenceUsers+1))
			if !errors.Is(err, client.ErrBadParams) {
				t.Fatalf("%s of %d ids = %v, want ErrBadParams", tc.name,
					client.MaxPresenceUsers+1, err)
			}
			if n := s.Requests(tc.op); n != 0 {
				t.Fatalf("%d %s requests for %d ids, want none", n, tc.op,
					client.MaxPresenceUsers+1)
			}
			_, _ = presence(context.Background(), presenceIDs(client.MaxPresenceUsers))
			if n := s.Requests(tc.op); n != 1 {
				t.Fatalf("%d %s requests for %d ids, want 1", n, tc.op, client.MaxPresenceUsers)
			}
		})
	}
}
