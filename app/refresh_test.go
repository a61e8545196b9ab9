package app

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
)

// TestSession_RefreshesBeforeTokenExpiry runs a Session against a system
// whose access tokens live 2 s: the SDK must refresh them on the live
// connection, so the gateway never closes it with TOKEN_EXPIRED.
func TestSession_RefreshesBeforeTokenExpiry(t *testing.T) {
	cfg := baseConfig(t, RoleAll)
	cfg.Logic.TokenTTL = 4 * time.Second
	// The gateway's wheel first looks at a connection at its login deadline;
	// keep that shorter than the token so the expiry is enforced on time,
	// and long enough for a registration and a password hash on a busy
	// machine.
	cfg.Gateway.LoginTimeout = 3 * time.Second
	sys := startSystem(t, cfg)
	addr := sys.GatewayAddr().String()
	name := fmt.Sprintf("fresh%d", time.Now().UnixNano()%1_000_000_000)
	login(t, addr, name, "setup", true) // registers

	var drops atomic.Int32
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := client.OpenSession(ctx, client.SessionConfig{
		Addr:  addr,
		Login: client.LoginParams{Username: name, Password: "correct horse", DeviceID: "phone"},
		OnEvent: func(e client.Event) {
			if e.Kind == client.EventDisconnected {
				drops.Add(1)
				t.Logf("disconnected: %v", e.Err)
			}
		},
	})
	if err != nil {
		t.Fatalf("open session: %v", err)
	}
	defer s.Close()

	time.Sleep(10 * time.Second) // two and a half token lifetimes
	if n := drops.Load(); n != 0 {
		t.Fatalf("session dropped %d times; tokens were not refreshed in time", n)
	}
	peer := login(t, addr, name+"x", "x", true)
	if _, err := peer.Send(ctx, client.SendParams{ToUserID: s.UserID(), Text: "still there?"}); err != nil {
		t.Fatalf("send: %v", err)
	}
	select {
	case m := <-s.Messages():
		if string(m.Content) != "still there?" {
			t.Fatalf("got %q", m.Content)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no message on the refreshed session")
	}
}
