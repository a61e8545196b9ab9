package app

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/internal/redistest"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

func TestEndToEnd_NotifyEmbedded(t *testing.T) {
	cfg := baseConfig(t, RoleAll)
	cfg.Task.PresenceWindow = 200 * time.Millisecond
	sys := startSystem(t, cfg)
	testNotify(t, sys.GatewayAddr())
}

func TestEndToEnd_NotifyExternal(t *testing.T) {
	testNotify(t, externalSystem(t))
}

// notifyUser is a logged-in device whose NOTIFY frames are collected.
type notifyUser struct {
	*user
	notes chan *protocol.Notify
}

func loginNotify(t *testing.T, addr, name, device string) *notifyUser {
	t.Helper()
	notes := make(chan *protocol.Notify, 64)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr, client.Options{OnNotify: func(n *protocol.Notify) {
		select {
		case notes <- n:
		default: // a test that stopped reading does not stall the reader
		}
	}})
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	resp, err := c.Login(ctx, client.LoginParams{Username: name, Password: "correct horse",
		DeviceID: device})
	if err != nil {
		t.Fatalf("login %s/%s: %v", name, device, err)
	}
	return &notifyUser{user: &user{Client: c, id: resp.UserId, name: name}, notes: notes}
}

// registerOnly registers name on a connection that never logs in, leaving
// the user offline.
func registerOnly(t *testing.T, addr, name string) int64 {
	t.Helper()
	ctx, c := dialFor(t, addr)
	id, err := c.Register(ctx, name, "correct horse")
	if err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	return id
}

// expectNotify waits for a NOTIFY on u that match accepts, skipping others.
func expectNotify(t *testing.T, u *notifyUser, what string, match func(*protocol.Notify) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case n := <-u.notes:
			if match(n) {
				return
			}
		case <-deadline:
			t.Fatalf("%s: no NOTIFY %s within 10s", u.name, what)
		}
	}
}

func testNotify(t *testing.T, addr net.Addr) {
	suffix := time.Now().UnixNano() % 1_000_000_000
	aliceName, bobName := fmt.Sprintf("alice%d", suffix), fmt.Sprintf("bob%d", suffix)
	registerOnly(t, addr.String(), aliceName)
	bobID := registerOnly(t, addr.String(), bobName)
	alice := loginNotify(t, addr.String(), aliceName, "phone")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Alice watches bob, who is offline.
	now, err := alice.WatchPresence(ctx, []int64{bobID})
	if err != nil || len(now) != 1 || now[0].UserId != bobID || now[0].Online {
		t.Fatalf("watch = %+v, %v; want bob offline", now, err)
	}
	presenceOf := func(online bool) func(*protocol.Notify) bool {
		return func(n *protocol.Notify) bool {
			return n.Presence != nil && n.Presence.UserId == bobID && n.Presence.Online == online
		}
	}
	bob := loginNotify(t, addr.String(), bobName, "laptop")
	expectNotify(t, alice, "bob online", presenceOf(true))

	// Typing needs a conversation: alice writes first.
	ack, err := alice.Send(ctx, client.SendParams{ToUserID: bobID, Text: "hi bob"})
	if err != nil {
		t.Fatalf("alice send: %v", err)
	}
	if err := bob.Typing(ctx, ack.ConvId, true); err != nil {
		t.Fatalf("bob typing: %v", err)
	}
	expectNotify(t, alice, "bob typing", func(n *protocol.Notify) bool {
		return n.Typing != nil && n.Typing.UserId == bobID && n.Typing.ConvId == ack.ConvId &&
			n.Typing.Typing
	})

	// A read receipt reaches the peer and the reader's other device.
	reply, err := bob.Send(ctx, client.SendParams{ToUserID: alice.id, Text: "hello"})
	if err != nil {
		t.Fatalf("bob send: %v", err)
	}
	alicePC := loginNotify(t, addr.String(), aliceName, "desktop")
	if _, err := alice.MarkRead(ctx, ack.ConvId, reply.Seq); err != nil {
		t.Fatalf("alice mark read: %v", err)
	}
	readBy := func(n *protocol.Notify) bool {
		return n.Read_ != nil && n.Read_.UserId == alice.id && n.Read_.ConvId == ack.ConvId &&
			n.Read_.ReadSeq == reply.Seq
	}
	expectNotify(t, bob, "alice's read receipt", readBy)
	expectNotify(t, alicePC, "alice's read position", readBy)

	// A delete chat on the phone reaches alice's other device at once.
	cleared, err := alice.ClearConv(ctx, ack.ConvId, 0, true)
	if err != nil || cleared != reply.Seq {
		t.Fatalf("alice clear = %d, %v; want %d", cleared, err, reply.Seq)
	}
	expectNotify(t, alicePC, "alice's delete chat", func(n *protocol.Notify) bool {
		return n.Cleared != nil && n.Cleared.ConvId == ack.ConvId &&
			n.Cleared.ClearedSeq == reply.Seq && n.Cleared.Hidden
	})

	// Bob leaves: alice and her other device (all her devices watch) hear it.
	bob.Close()
	expectNotify(t, alice, "bob offline", presenceOf(false))
	expectNotify(t, alicePC, "bob offline", presenceOf(false))
}

// deleteRedisKeys removes the keys a run on cfg's Redis left under prefix:
// watch sets and presence records would otherwise stay a day.
func deleteRedisKeys(t *testing.T, cfg Config, prefix string) {
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs: cfg.redisAddrs(), IsClusterMode: cfg.redisClusterMode(),
	})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := redistest.DeleteKeys(ctx, rdb, prefix); err != nil {
		t.Logf("delete redis keys %s*: %v", prefix, err)
	}
}

func TestEndToEnd_SessionRewatchesAfterReconnect(t *testing.T) {
	cfg := baseConfig(t, RoleAll)
	cfg.Task.PresenceWindow = 100 * time.Millisecond
	sys := startSystem(t, cfg)
	addr := sys.GatewayAddr().String()
	suffix := time.Now().UnixNano() % 1_000_000_000
	aliceName, bobName := fmt.Sprintf("alice%d", suffix), fmt.Sprintf("bob%d", suffix)
	registerOnly(t, addr, aliceName)
	bobID := registerOnly(t, addr, bobName)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	notes := make(chan *protocol.Notify, 64)
	connected := make(chan struct{}, 4)
	sess, err := client.OpenSession(ctx, client.SessionConfig{
		Addr:       addr,
		Login:      client.LoginParams{Username: aliceName, Password: "correct horse"},
		Client:     client.Options{OnNotify: func(n *protocol.Notify) { notes <- n }},
		MinBackoff: 10 * time.Millisecond,
		OnEvent: func(e client.Event) {
			if e.Kind == client.EventConnected {
				connected <- struct{}{}
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sess.Close() })
	<-connected
	if _, err := sess.WatchPresence(ctx, []int64{bobID}); err != nil {
		t.Fatal(err)
	}

	// Another device of alice clears her watch set on the server; only a
	// resend by the Session can bring it back.
	other := loginNotify(t, addr, aliceName, "other")
	if _, err := other.WatchPresence(ctx, nil); err != nil {
		t.Fatal(err)
	}
	c, err := sess.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close() // the connection drops; the Session reconnects
	select {
	case <-connected:
	case <-ctx.Done():
		t.Fatal("session did not reconnect")
	}
	waitWatched(t, sys, bobID)

	loginNotify(t, addr, bobName, "laptop")
	au := &notifyUser{user: &user{name: aliceName}, notes: notes}
	expectNotify(t, au, "bob online after the resend", func(n *protocol.Notify) bool {
		return n.Presence != nil && n.Presence.UserId == bobID && n.Presence.Online
	})
}

// waitWatched waits until someone watches user in sys's watch store.
func waitWatched(t *testing.T, sys *System, user int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ws, err := sys.watches.Watchers(context.Background(), user)
		if err == nil && len(ws) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nobody watches user %d after 10s (last error %v)", user, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
