package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/internal/testwait"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// netSwitch forwards TCP connections to a gateway while on. Turned off, it
// drops every connection it forwards and closes new ones at once, as a
// network a device lost; the device's client sees its connection end and
// its reconnects fail until the switch is on again.
type netSwitch struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	off   bool
	conns map[net.Conn]struct{}
}

// startNetSwitch listens on a port of its own and forwards to target.
func startNetSwitch(t *testing.T, target string) *netSwitch {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sw := &netSwitch{ln: ln, target: target, conns: make(map[net.Conn]struct{})}
	t.Cleanup(func() {
		_ = ln.Close()
		sw.set(true)
	})
	go sw.accept()
	return sw
}

func (sw *netSwitch) addr() string { return sw.ln.Addr().String() }

func (sw *netSwitch) accept() {
	for {
		in, err := sw.ln.Accept()
		if err != nil {
			return
		}
		go sw.forward(in)
	}
}

// forward pipes in to a new connection to the target, both tracked so
// that turning the switch off drops them.
func (sw *netSwitch) forward(in net.Conn) {
	out, err := net.Dial("tcp", sw.target)
	if err != nil {
		_ = in.Close()
		return
	}
	sw.mu.Lock()
	if sw.off {
		sw.mu.Unlock()
		_ = in.Close()
		_ = out.Close()
		return
	}
	sw.conns[in], sw.conns[out] = struct{}{}, struct{}{}
	sw.mu.Unlock()
	go func() { _, _ = io.Copy(out, in); _ = out.Close() }()
	_, _ = io.Copy(in, out)
	_ = in.Close()
}

// set turns the switch off (dropping what it forwards) or on.
func (sw *netSwitch) set(off bool) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	sw.off = off
	if !off {
		return
	}
	for c := range sw.conns {
		_ = c.Close()
	}
	clear(sw.conns)
}

// A laptop whose client was offline when the phone signed it out stays
// signed out: at its reconnect the gateway refuses its token as a
// signed-out device's and closes the connection with SIGNED_OUT, and the
// Session ends without logging in with the password it keeps. An expired
// token is no sign-out: TestSignedOut_ExpiredTokenLogsInByRefresh.
func TestSignedOut_OfflineDeviceStaysSignedOut(t *testing.T) {
	sys := signedOutSystem(t)
	addr := sys.GatewayAddr().String()
	name := fmt.Sprintf("alice%d", time.Now().UnixNano()%1_000_000_000)
	phone := login(t, addr, name, "phone", true)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	sw := startNetSwitch(t, addr)
	var mu sync.Mutex
	var away bool
	sess, err := client.OpenSession(ctx, client.SessionConfig{Addr: sw.addr(),
		Login: client.LoginParams{Username: name, Password: "correct horse",
			DeviceID: "laptop"},
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		OnEvent: func(e client.Event) {
			if e.Kind == client.EventDisconnected {
				mu.Lock()
				away = true
				mu.Unlock()
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sess.Close() })

	sw.set(true)
	testwait.For(t, 10*time.Second, "the laptop offline", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return away && !laptopOf(t, phone).Online
	})
	if err := phone.SignOutDevice(ctx, "laptop"); err != nil {
		t.Fatal(err)
	}
	sw.set(false)

	select {
	case <-sess.Done():
	case <-ctx.Done():
		t.Fatal("the signed-out laptop's session goes on")
	}
	ce, ok := errors.AsType[*client.CloseError](sess.Err())
	if !errors.Is(sess.Err(), client.ErrSessionEnded) || !ok ||
		ce.Reason != protocol.CloseReason_SIGNED_OUT {
		t.Fatalf("session ended with %v, want ErrSessionEnded and CLOSE SIGNED_OUT", sess.Err())
	}
	// Signed out, the laptop is left out of the list; its reconnect did
	// not bring it back.
	devs, err := phone.ListDevices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(devs, func(d *protocol.Device) bool {
		return d.DeviceId == "laptop"
	}); i >= 0 {
		t.Fatalf("signed-out laptop after its reconnect listed as %+v", devs[i])
	}
}

// A Session whose access token expired while it was offline logs in again
// by its refresh token: the gateway closes nothing for an expired token.
// The Session keeps no password, so only the refresh token can log it in.
func TestSignedOut_ExpiredTokenLogsInByRefresh(t *testing.T) {
	cfg := baseConfig(t, RoleAll)
	cfg.Logic.TokenTTL = 2 * time.Second
	sys := startSystem(t, cfg)
	addr := sys.GatewayAddr().String()
	name := fmt.Sprintf("alice%d", time.Now().UnixNano()%1_000_000_000)
	login(t, addr, name, "phone", true) // registers
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Login(ctx, client.LoginParams{Username: name, Password: "correct horse",
		DeviceID: "laptop"})
	_ = c.Close()
	if err != nil {
		t.Fatal(err)
	}

	sw := startNetSwitch(t, addr)
	var mu sync.Mutex
	var connects, drops int
	sess, err := client.OpenSession(ctx, client.SessionConfig{Addr: sw.addr(),
		Login:      client.LoginParams{Token: resp.RefreshToken, DeviceID: "laptop"},
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		OnEvent: func(e client.Event) {
			mu.Lock()
			defer mu.Unlock()
			switch e.Kind {
			case client.EventConnected:
				connects++
			case client.EventDisconnected:
				drops++
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sess.Close() })
	count := func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		return connects, drops
	}

	sw.set(true)
	testwait.For(t, 10*time.Second, "the laptop offline", func() bool {
		_, d := count()
		return d > 0
	})
	time.Sleep(cfg.Logic.TokenTTL + time.Second) // the access token expires offline
	sw.set(false)
	testwait.For(t, 15*time.Second, "the laptop back, or its session ended", func() bool {
		n, _ := count()
		return n >= 2 || sess.Err() != nil
	})
	if err := sess.Err(); err != nil {
		t.Fatalf("the session with an expired access token ended: %v", err)
	}
}

// laptopOf returns the laptop of phone's user as LIST_DEVICES shows it.
func laptopOf(t *testing.T, phone *user) *protocol.Device {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	devs, err := phone.ListDevices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		if d.DeviceId == "laptop" {
			return d
		}
	}
	t.Fatalf("no laptop among %v", devs)
	return nil
}
