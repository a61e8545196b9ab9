// Package mqtest gives tests a NATS JetStream: the server that
// RESONANCE_TEST_NATS_URL names (make test-integration sets it), or else an
// embedded one of the test's own.
package mqtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/resonance-im/resonance/internal/mq"
)

// EnvURL names the variable holding the URL of an external NATS for
// integration tests.
const EnvURL = "RESONANCE_TEST_NATS_URL"

// Dialer returns how the test connects to its NATS: the server of EnvURL, or
// an embedded one started now under t.TempDir and shut down at cleanup.
// Connections it opens are the caller's to close.
func Dialer(t testing.TB) func(name string) (*nats.Conn, error) {
	t.Helper()
	if url := os.Getenv(EnvURL); url != "" {
		return func(name string) (*nats.Conn, error) { return mq.Dial(url, name) }
	}
	e, err := mq.StartEmbedded(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	return e.Connect
}

// JetStream connects to the test's NATS (Dialer) and returns JetStream on
// that connection, closed at cleanup, and names unique to the test, made of
// prefix and random hex: on a shared server, runs never meet. The names'
// stream is deleted at cleanup.
func JetStream(t testing.TB, prefix string) (jetstream.JetStream, mq.Names) {
	t.Helper()
	js := Connect(t, Dialer(t), prefix+"-test")
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		t.Fatal(err)
	}
	names := mq.NewNames(prefix + hex.EncodeToString(suffix))
	t.Cleanup(func() { DeleteStream(t, js, names.Stream) })
	return js, names
}

// Connect opens a connection named name with dial, closed at cleanup, and
// returns JetStream on it.
func Connect(t testing.TB, dial func(name string) (*nats.Conn, error),
	name string) jetstream.JetStream {
	t.Helper()
	nc, err := dial(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// DeleteStream deletes stream, if it exists, failing t on any other error.
func DeleteStream(t testing.TB, js jetstream.JetStream, stream string) {
	t.Helper()
	err := js.DeleteStream(context.Background(), stream)
	if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("delete stream %s: %v", stream, err)
	}
}
