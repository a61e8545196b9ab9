package client_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/client/clienttest"
)

// tlsFront starts a clienttest.TLSFront for backend.
func tlsFront(t *testing.T, backend string) *clienttest.TLSFront {
	t.Helper()
	f, err := clienttest.StartTLSFront(backend)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

func TestClient_TLS(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	f := tlsFront(t, s.Addr())
	front, pool := f.Addr(), f.Pool()
	ctx := context.Background()

	// Through the front, with its certificate trusted: the whole protocol.
	c := dial(t, front, client.Options{TLS: &tls.Config{RootCAs: pool}})
	if _, err := c.Register(ctx, "tina", passwordOf("tina")); err != nil {
		t.Fatalf("Register over TLS: %v", err)
	}
	if _, err := c.Login(ctx, client.LoginParams{Username: "tina",
		Password: passwordOf("tina"), DeviceID: "d1"}); err != nil {
		t.Fatalf("Login over TLS: %v", err)
	}
	if err := c.Shutdown(ctx); err != nil && !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Shutdown over TLS: %v", err)
	}

	// A certificate the client does not trust fails the dial, naming it.
	_, err := client.Dial(ctx, front, client.Options{TLS: &tls.Config{}})
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) || !strings.Contains(err.Error(), front) {
		t.Fatalf("dial with an untrusted certificate: err = %v, want x509 unknown authority "+
			"naming %s", err, front)
	}

	// A name the certificate does not hold fails too.
	_, err = client.Dial(ctx, front, client.Options{TLS: &tls.Config{RootCAs: pool,
		ServerName: "other.test"}})
	var hostErr x509.HostnameError
	if !errors.As(err, &hostErr) {
		t.Fatalf("dial for another name: err = %v, want a hostname error", err)
	}
}

// TestClient_TLSToPlainServer: a TLS dial of a plain server (a gateway
// reached without the balancer in front) says so, whether the server
// closes the connection or answers in its own protocol.
func TestClient_TLSToPlainServer(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	notTLS := func(t *testing.T, addr string) {
		t.Helper()
		_, err := client.Dial(context.Background(), addr, client.Options{TLS: &tls.Config{}})
		if !errors.Is(err, client.ErrNotTLS) || !strings.Contains(err.Error(), addr) {
			t.Fatalf("TLS dial of the plain server at %s: err = %v, want ErrNotTLS naming it",
				addr, err)
		}
	}
	notTLS(t, s.Addr()) // the fake closes at the ClientHello's bad magic

	// A server that answers a ClientHello with a frame of its own, as the
	// gateway does with its CLOSE.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Write([]byte("RS\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
		_, _ = io.Copy(io.Discard, c)
	}()
	notTLS(t, ln.Addr().String())
}
