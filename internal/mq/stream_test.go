package mq_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/resonance-im/resonance/internal/mq"
	"github.com/resonance-im/resonance/internal/mqtest"
)

// A stream made by an earlier release, with its 10-minute duplicate window,
// gets this release's shorter one at the next start: the window's ids are
// held in the NATS server's memory.
func TestEnsureStream_ShortensAnEarlierDuplicateWindow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	js, names := mqtest.JetStream(t, "mqtest")
	old := jetstream.StreamConfig{Name: names.Stream, Subjects: []string{names.Subject + ".>"},
		Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
		MaxAge: 24 * time.Hour, Duplicates: 10 * time.Minute}
	if _, err := js.CreateStream(ctx, old); err != nil {
		t.Fatal(err)
	}

	s, err := mq.EnsureStream(ctx, js, names)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Config.Duplicates; got != mq.DuplicateWindow {
		t.Fatalf("duplicate window %v after EnsureStream, want %v", got, mq.DuplicateWindow)
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

// storeRace is a JetStream whose first CreateOrUpdateStream calls fail as a
// NATS server does when another client deleted the account's last stream
// at that moment (it removes the directory the new stream's store goes in).
type storeRace struct {
	jetstream.JetStream
	fails int
	calls int
}

func (r *storeRace) CreateOrUpdateStream(ctx context.Context,
	cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	r.calls++
	if r.calls <= r.fails {
		return nil, &jetstream.APIError{Code: 500, ErrorCode: 10049,
			Description: "error creating store for stream"}
	}
	return r.JetStream.CreateOrUpdateStream(ctx, cfg)
}

func TestEnsureStream_RetriesAStoreTheServerFailedToCreate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	js, names := mqtest.JetStream(t, "mqtest")
	race := &storeRace{JetStream: js, fails: 2}
	if _, err := mq.EnsureStream(ctx, race, names); err != nil {
		t.Fatalf("EnsureStream after %d store failures: %v", race.fails, err)
	}
	always := &storeRace{JetStream: js, fails: 1 << 30}
	if _, err := mq.EnsureStream(ctx, always, names); err == nil {
		t.Fatal("EnsureStream succeeded though every create failed")
	}
	if always.calls > 5 {
		t.Fatalf("%d creates for a store that never comes, want a few", always.calls)
	}
}
