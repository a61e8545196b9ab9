package mq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A stream made by an earlier release, with its 10-minute duplicate window,
// gets this release's shorter one at the next start: the window's ids are
// held in the NATS server's memory.
func TestEnsureStream_ShortensAnEarlierDuplicateWindow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	js, names := testJetStream(t)
	old := jetstream.StreamConfig{Name: names.Stream, Subjects: []string{names.Subject + ".>"},
		Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
		MaxAge: 24 * time.Hour, Duplicates: 10 * time.Minute}
	if _, err := js.CreateStream(ctx, old); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), names.Stream) })

	s, err := EnsureStream(ctx, js, names)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Config.Duplicates; got != DuplicateWindow {
		t.Fatalf("duplicate window %v after EnsureStream, want %v", got, DuplicateWindow)
	}

	// Inside the window a republished event is still dropped.
	for range 2 {
		if _, err := js.Publish(ctx, names.Subject+".p.0", []byte("e"),
			jetstream.WithMsgID("msg-1")); err != nil {
			t.Fatal(err)
		}
	}
	if info, err = s.Info(ctx); err != nil || info.State.Msgs != 1 {
		t.Fatalf("%v messages after publishing one id twice (%v), want 1", info.State.Msgs, err)
	}
}

// testJetStream returns JetStream on the NATS of RESONANCE_TEST_NATS_URL, or
// on an embedded server, and names of this test's own.
func testJetStream(t *testing.T) (jetstream.JetStream, Names) {
	t.Helper()
	var nc *nats.Conn
	var err error
	if url := os.Getenv("RESONANCE_TEST_NATS_URL"); url != "" {
		nc, err = nats.Connect(url)
	} else {
		var e *Embedded
		if e, err = StartEmbedded(t.TempDir()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.Shutdown)
		nc, err = e.Connect("test")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	return js, NewNames("mqtest" + hex.EncodeToString(suffix))
}
