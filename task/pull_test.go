package task

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/resonance-im/resonance/internal/mq"
)

// A pull whose whole batch arrives while its caller is held (a worker
// queue full) loses none of it: the puller's channel holds what the
// consumer may have out, where nats.go would drop what overflows as a slow
// consumer's, to come back only after its ack wait.
func TestPuller_BatchArrivingWhileHeldIsKept(t *testing.T) {
	en := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream, err := mq.EnsureStream(ctx, en.js, en.names)
	if err != nil {
		t.Fatal(err)
	}
	const pending = 100
	subject := en.names.PartitionSubject(0)
	if _, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: "held", FilterSubject: subject, AckPolicy: jetstream.AckExplicitPolicy,
		MaxAckPending: pending,
	}); err != nil {
		t.Fatal(err)
	}
	for i := range pending {
		if _, err := en.js.Publish(ctx, subject, fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	pl, err := newPuller(en.js, en.names.Stream, "held", pending, pending)
	if err != nil {
		t.Fatal(err)
	}
	defer pl.close()
	var got []string
	err = pl.pull(func(m *nats.Msg) {
		if len(got) == 0 {
			// Held until the rest of the batch is here, as a dispatch
			// blocked on a full worker queue would be.
			deadline := time.Now().Add(10 * time.Second)
			for len(pl.msgs) < pending-1 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
		}
		got = append(got, string(m.Data))
		_ = m.Ack()
	})
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	if n, _ := pl.sub.Dropped(); n != 0 {
		t.Errorf("subscription dropped %d events as a slow consumer's", n)
	}
	if len(got) != pending {
		t.Fatalf("pulled %d events, want %d", len(got), pending)
	}
	for i, d := range got {
		if d != fmt.Sprint(i) {
			t.Fatalf("event %d = %q, want %q (in stream order)", i, d, fmt.Sprint(i))
		}
	}
}
