package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// signedOutSystem starts a whole system on SQLite whose gateway renews no
// route during a test, so that a route loseRoute dropped stays dropped.
func signedOutSystem(t *testing.T) *System {
	cfg := baseConfig(t, RoleAll)
	cfg.Logic.DBDSN = filepath.Join(cfg.DataDir, "resonance.db")
	cfg.Gateway.RenewInterval = time.Hour
	return startSystem(t, cfg)
}

// loseRoute drops the route of user's device as if it had expired: a
// sign-out of the device then finds no connection to close, as when its
// kick is lost or the gateway holding the connection misses it. The
// connection stays open, logged in at the generation it had.
func loseRoute(t *testing.T, sys *System, user int64, device string) {
	t.Helper()
	ctx := context.Background()
	rs, err := sys.routes.Lookup(ctx, []int64{user})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.DeviceID != device {
			continue
		}
		if err := sys.routes.Delete(ctx, r); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("no route of user %d's %s", user, device)
}

// notifyLog collects the NOTIFY frames a connection receives.
type notifyLog struct {
	mu  sync.Mutex
	got []*protocol.Notify
}

func (l *notifyLog) add(n *protocol.Notify) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, n)
}

func (l *notifyLog) all() []*protocol.Notify {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*protocol.Notify(nil), l.got...)
}

// loginNotified logs name in on device, collecting its NOTIFYs in log.
func loginNotified(t *testing.T, addr, name, device string, log *notifyLog) *user {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr, client.Options{OnNotify: log.add})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	resp, err := c.Login(ctx, client.LoginParams{Username: name, Password: "correct horse",
		DeviceID: device})
	if err != nil {
		t.Fatalf("login %s/%s: %v", name, device, err)
	}
	return &user{Client: c, id: resp.UserId, name: name}
}

// staleLaptop logs alice in on her laptop and loses the connection's route,
// so that signing the laptop out leaves this connection open.
func staleLaptop(t *testing.T, sys *System, alice *user) *user {
	t.Helper()
	laptop := login(t, sys.GatewayAddr().String(), alice.name, "laptop", false)
	loseRoute(t, sys, alice.id, "laptop")
	return laptop
}

// A connection of a signed-out device whose close was lost reads no more:
// its SYNC is answered TOKEN_INVALID, then the gateway closes it with
// SIGNED_OUT.
func TestSignedOut_LostCloseSyncClosesSignedOut(t *testing.T) {
	sys := signedOutSystem(t)
	addr := sys.GatewayAddr().String()
	suffix := time.Now().UnixNano() % 1_000_000_000
	alice := login(t, addr, fmt.Sprintf("alice%d", suffix), "phone", true)
	bob := login(t, addr, fmt.Sprintf("bob%d", suffix), "phone", true)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ack, err := bob.Send(ctx, client.SendParams{ToUserID: alice.id, Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	laptop := staleLaptop(t, sys, alice)
	if err := alice.SignOutDevice(ctx, "laptop"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Send(ctx, client.SendParams{ToUserID: alice.id, Text: "new"}); err != nil {
		t.Fatal(err)
	}

	page, err := laptop.Sync(ctx, ack.ConvId, 0, 10)
	if client.CodeOf(err) != common.ErrorCode_TOKEN_INVALID {
		t.Fatalf("SYNC of the signed-out laptop = %+v, %v, want TOKEN_INVALID", page, err)
	}
	expectSignedOut(t, laptop)
}

// The receipts of a signed-out device's connection whose close was lost
// reach no one: its DELIVERED, MARK_READ and TYPING tell neither the peer
// nor the user's other device anything.
func TestSignedOut_LostCloseReceiptsReachNoPeer(t *testing.T) {
	sys := signedOutSystem(t)
	addr := sys.GatewayAddr().String()
	suffix := time.Now().UnixNano() % 1_000_000_000
	var bobSaw, phoneSaw notifyLog
	name := fmt.Sprintf("alice%d", suffix)
	login(t, addr, name, "tablet", true)
	alice := loginNotified(t, addr, name, "phone", &phoneSaw)
	bobName := fmt.Sprintf("bob%d", suffix)
	login(t, addr, bobName, "tablet", true)
	bob := loginNotified(t, addr, bobName, "phone", &bobSaw)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ack, err := bob.Send(ctx, client.SendParams{ToUserID: alice.id, Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	receipts := []struct {
		name string
		call func(*user) error
	}{
		{"delivered", func(u *user) error {
			return u.Delivered(ctx, []*protocol.ConvPos{{ConvId: ack.ConvId, Seq: ack.Seq}})
		}},
		{"mark read", func(u *user) error {
			_, err := u.MarkRead(ctx, ack.ConvId, ack.Seq)
			return err
		}},
		{"typing", func(u *user) error { return u.Typing(ctx, ack.ConvId, true) }},
	}
	// One stale connection each: the first refusal closes it.
	for _, r := range receipts {
		laptop := staleLaptop(t, sys, alice)
		if err := alice.SignOutDevice(ctx, "laptop"); err != nil {
			t.Fatal(err)
		}
		if err := r.call(laptop); client.CodeOf(err) != common.ErrorCode_TOKEN_INVALID {
			t.Errorf("%s of the signed-out laptop = %v, want TOKEN_INVALID", r.name, err)
		}
		expectSignedOut(t, laptop)
	}

	// A typing of alice's phone marks the end of what bob is told: NOTIFYs
	// reach him in the order logic sent them.
	if err := alice.Typing(ctx, ack.ConvId, false); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(bobSaw.all()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := bobSaw.all(); len(got) != 1 || got[0].Typing == nil || got[0].Typing.Typing {
		t.Fatalf("bob was told %v, want only the phone's typing stop", got)
	}
	for _, n := range phoneSaw.all() {
		if n.Read_ != nil {
			t.Fatalf("alice's phone was told of a read by the signed-out laptop: %v", n)
		}
	}
	convs, err := alice.SyncConvs(ctx, "", 0)
	if err != nil || len(convs.Convs) != 1 || convs.Convs[0].Unread != 1 {
		t.Fatalf("alice's conversations = %+v, %v, want one with 1 unread", convs, err)
	}
}

// A Session of a signed-out device whose close was lost ends, at its next
// request, with the error a CLOSE SIGNED_OUT gives it; it does not sign the
// device in again with its password.
func TestSignedOut_LostCloseEndsSession(t *testing.T) {
	sys := signedOutSystem(t)
	addr := sys.GatewayAddr().String()
	suffix := time.Now().UnixNano() % 1_000_000_000
	alice := login(t, addr, fmt.Sprintf("alice%d", suffix), "phone", true)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sess, err := client.OpenSession(ctx, client.SessionConfig{Addr: addr,
		Login: client.LoginParams{Username: alice.name, Password: "correct horse",
			DeviceID: "laptop"},
		ResyncInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sess.Close() })
	loseRoute(t, sys, alice.id, "laptop")
	if err := alice.SignOutDevice(ctx, "laptop"); err != nil {
		t.Fatal(err)
	}

	select {
	case <-sess.Done():
	case <-ctx.Done():
		t.Fatalf("the signed-out laptop's session goes on")
	}
	ce, ok := errors.AsType[*client.CloseError](sess.Err())
	if !errors.Is(sess.Err(), client.ErrSessionEnded) || !ok ||
		ce.Reason != protocol.CloseReason_SIGNED_OUT {
		t.Fatalf("session ended with %v, want ErrSessionEnded and CLOSE SIGNED_OUT", sess.Err())
	}
}

// Logout of a Session whose device was signed out elsewhere succeeds: the
// device is signed out, which is all Logout asks. It said
// ErrLogoutUnconfirmed ("the device may still be signed in"), both when
// the sign-out's close reached the session first and when the close was
// lost and the server refused the session's final requests instead.
func TestSignedOut_LogoutOfASignedOutSessionSucceeds(t *testing.T) {
	sys := signedOutSystem(t)
	addr := sys.GatewayAddr().String()
	suffix := time.Now().UnixNano() % 1_000_000_000
	alice := login(t, addr, fmt.Sprintf("alice%d", suffix), "phone", true)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	open := func(device string) *client.Session {
		sess, err := client.OpenSession(ctx, client.SessionConfig{Addr: addr,
			Login: client.LoginParams{Username: alice.name, Password: "correct horse",
				DeviceID: device}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sess.Close() })
		return sess
	}

	closed := open("laptop")
	if err := alice.SignOutDevice(ctx, "laptop"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed.Done():
	case <-ctx.Done():
		t.Fatal("the signed-out laptop's session goes on")
	}
	if err := closed.Logout(ctx); err != nil {
		t.Errorf("Logout after the sign-out's close: %v, want nil", err)
	}

	stale := open("tablet")
	loseRoute(t, sys, alice.id, "tablet")
	if err := alice.SignOutDevice(ctx, "tablet"); err != nil {
		t.Fatal(err)
	}
	if err := stale.Logout(ctx); err != nil {
		t.Errorf("Logout of a session whose sign-out close was lost: %v, want nil", err)
	}
}
