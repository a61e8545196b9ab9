package mq

import (
	"errors"
	"net/url"
	"testing"

	"github.com/nats-io/nats.go"
)

// The embedded server listens on loopback only, and only a client that
// holds its token gets in.
func TestEmbedded_LoopbackAndItsTokenOnly(t *testing.T) {
	e, err := StartEmbedded(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	u, err := url.Parse(e.srv.ClientURL())
	if err != nil || u.Hostname() != "127.0.0.1" || u.Port() == "" || u.Port() == "4222" {
		t.Fatalf("client URL %q (%v), want 127.0.0.1 on a port picked at start", u, err)
	}
	for name, opts := range map[string][]nats.Option{
		"no token":    nil,
		"wrong token": {nats.Token(e.token + "x")},
	} {
		nc, err := nats.Connect(u.String(), opts...)
		if err == nil {
			nc.Close()
			t.Fatalf("%s: connected", name)
		}
		if !errors.Is(err, nats.ErrAuthorization) {
			t.Fatalf("%s: %v, want an authorization error", name, err)
		}
	}
	nc, err := e.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.Publish("probe", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("flush over the embedded connection: %v", err)
	}
}
