package client_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/client/clienttest"
	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// A gateway address that takes the connection but answers the login in
// another protocol, or not at all, cannot be reached as a gateway either:
// the Session moves on to the next address, as after a failed dial. A
// login the gateway refuses is its answer, and the next is not tried.
func TestSession_PassesOverAnAddressThatIsNoGateway(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	loginNew(t, s, "alice", client.Options{})
	tests := []struct {
		name  string
		first string
	}{
		{name: "another protocol", first: clienttest.OtherProtocolAddr(t)},
		{name: "no answer", first: clienttest.SilentAddr(t)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			connectedAt := make(chan string, 1)
			sess := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
				c.Addr, c.Fallbacks = tt.first, []string{s.Addr()}
				c.Client.RequestTimeout = 200 * time.Millisecond
				c.OnEvent = func(e client.Event) {
					if e.Kind == client.EventConnected {
						select {
						case connectedAt <- e.Addr:
						default:
						}
					}
				}
			})
			collectSession(t, sess)
			if addr := <-connectedAt; addr != s.Addr() {
				t.Fatalf("connected at %q, want %q", addr, s.Addr())
			}
		})
	}

	// Every address fails: the error is the last one's.
	_, err := client.OpenSession(context.Background(), client.SessionConfig{
		Addr: clienttest.SilentAddr(t), Fallbacks: []string{clienttest.OtherProtocolAddr(t)},
		Login:  client.LoginParams{Username: "alice", Password: passwordOf("alice")},
		Client: client.Options{RequestTimeout: 200 * time.Millisecond}})
	if !errors.Is(err, codec.ErrBadMagic) {
		t.Fatalf("OpenSession = %v, want the last address's %v", err, codec.ErrBadMagic)
	}

	// A refused login is an answer: the fallback, where the password
	// would do, is not tried.
	other := startServer(t, clienttest.Options{})
	c := dial(t, other.Addr(), client.Options{})
	if _, err := c.Register(context.Background(), "alice", "other-password"); err != nil {
		t.Fatal(err)
	}
	_, err = client.OpenSession(context.Background(), client.SessionConfig{
		Addr: s.Addr(), Fallbacks: []string{other.Addr()},
		Login: client.LoginParams{Username: "alice", Password: "other-password"}})
	if client.CodeOf(err) != common.ErrorCode_INVALID_CREDENTIALS {
		t.Fatalf("OpenSession = %v, want INVALID_CREDENTIALS", err)
	}
}

// When no address of several answers as a gateway, OpenSession gives the
// failure at each, in the order tried; with one address, its failure as is.
func TestOpenSession_GivesTheFailureAtEachAddress(t *testing.T) {
	down, other := clienttest.ClosedAddr(t), clienttest.OtherProtocolAddr(t)
	login := client.LoginParams{Username: "alice", Password: passwordOf("alice"),
		DeviceID: "phone"}
	_, err := client.OpenSession(context.Background(), client.SessionConfig{
		Addr: down, Fallbacks: []string{other}, Login: login})
	var each *client.AddrsError
	if !errors.As(err, &each) || len(each.Failures) != 2 {
		t.Fatalf("OpenSession = %v, want an AddrsError of 2 failures", err)
	}
	if f := each.Failures[0]; f.Addr != down || errors.Is(f.Err, codec.ErrBadMagic) {
		t.Fatalf("first failure %v, want the dial of %s", f, down)
	}
	if f := each.Failures[1]; f.Addr != other || !errors.Is(f.Err, codec.ErrBadMagic) {
		t.Fatalf("second failure %v, want bad magic at %s", f, other)
	}

	_, err = client.OpenSession(context.Background(), client.SessionConfig{Addr: other,
		Login: login})
	if errors.As(err, &each) || !errors.Is(err, codec.ErrBadMagic) {
		t.Fatalf("OpenSession of one address = %v, want its bad magic as is", err)
	}
}

// SERVER_SHUTDOWN says the gateway is stopping, and protocol.md asks a
// client to reconnect preferably to another: with fallbacks, the Session
// goes on to the next address rather than dial the stopping one again,
// which at best still answers until it stops and at worst costs a failed
// dial and a backoff first.
func TestSession_MovesOnFromAGatewayShuttingDown(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	loginNew(t, s, "alice", client.Options{})
	_, port, err := net.SplitHostPort(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	// The same server under a second name stands for a second gateway.
	other := net.JoinHostPort("localhost", port)
	connectedAt := make(chan string, 4)
	sess := openSession(t, s, "alice", "phone", func(c *client.SessionConfig) {
		c.Fallbacks = []string{other}
		c.OnEvent = func(e client.Event) {
			if e.Kind == client.EventConnected {
				connectedAt <- e.Addr
			}
		}
	})
	collectSession(t, sess)
	if addr := <-connectedAt; addr != s.Addr() {
		t.Fatalf("first connected at %q, want %q", addr, s.Addr())
	}

	s.CloseUser("alice", protocol.CloseReason_SERVER_SHUTDOWN, 0)
	if addr := <-connectedAt; addr != other {
		t.Fatalf("after SERVER_SHUTDOWN connected at %q, want the next address %q", addr, other)
	}
}
