package task

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/resonance-im/resonance/internal/mq"
	"github.com/resonance-im/resonance/internal/testwait"
)

// A pull whose whole batch arrives while its caller is held (a worker
// queue full) loses none of it: the puller's channel holds what the
// consumer may have out, where nats.go would drop what overflows as a slow
// consumer's, to come back only after its ack wait.
func TestPuller_BatchArrivingWhileHeldIsKept(t *testing.T) {
	en := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const pending = 100
	pullConsumer(ctx, t, en.js, en.names, "held", pending)
	subject := en.names.PartitionSubject(0)
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

// A pull tried while NATS is away sends no request: one left in nats.go's
// reconnect buffer would reach the server with the others at reconnect,
// each ending, on its expiry, a later pull whose own request stays out, so
// that every pull after it leaves one more request out for good.
func TestPuller_NoRequestWhileDisconnected(t *testing.T) {
	dir := t.TempDir()
	srv := startRestartable(t, dir, server.RANDOM_PORT)
	port := srv.Addr().(*net.TCPAddr).Port
	nc, err := nats.Connect(srv.ClientURL(), nats.MaxReconnects(-1),
		nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	names := mq.NewNames("restart")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pullConsumer(ctx, t, js, names, "away", 0)
	subject := names.PartitionSubject(0)
	pl, err := newPuller(js, names.Stream, "away", 10, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer pl.close()

	srv.Shutdown()
	srv.WaitForShutdown()
	testwait.For(t, 10*time.Second, "connection lost", func() bool { return !nc.IsConnected() })
	before, _ := nc.Buffered()
	if err := pl.pull(func(*nats.Msg) {}); err == nil {
		t.Error("pull with NATS away returned no error")
	}
	if after, _ := nc.Buffered(); after != before {
		t.Errorf("pull with NATS away left %d bytes for the reconnect", after-before)
	}

	// Back, the next pull brings what was published.
	srv = startRestartable(t, dir, port)
	defer srv.Shutdown()
	testwait.For(t, 10*time.Second, "reconnected", nc.IsConnected)
	if _, err := js.Publish(ctx, subject, []byte("after")); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := pl.pull(func(m *nats.Msg) { got = append(got, string(m.Data)); _ = m.Ack() }); err != nil {
		t.Fatalf("pull after reconnect: %v", err)
	}
	if len(got) != 1 || got[0] != "after" {
		t.Errorf("pulled %q after reconnect, want [after]", got)
	}
}

// startRestartable starts a JetStream NATS server on port storing under dir,
// so that it can be shut down and started again with its streams.
func startRestartable(t *testing.T, dir string, port int) *server.Server {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port,
		JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		t.Fatal("nats server not ready after 10s")
	}
	return srv
}

// A pull ends on its own request's end, not on that of an older request
// still out (one given up for lost that answers after all): ended early, it
// would leave its request out, and each pull after it one more.
func TestPuller_OlderRequestsEndDoesNotEndThePull(t *testing.T) {
	en := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cons := pullConsumer(ctx, t, en.js, en.names, "stale", 0)
	pl, err := newPuller(en.js, en.names.Stream, "stale", 10, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer pl.close()

	// An older request, answered on the puller's subscription, that expires
	// well before the pull's own.
	older, err := json.Marshal(pullRequest{Batch: 10, Expires: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	nc := en.js.Conn()
	if err := nc.PublishRequest(pl.subject, strings.TrimSuffix(pl.sub.Subject, "*")+"0",
		older); err != nil {
		t.Fatal(err)
	}
	if err := pl.pull(func(*nats.Msg) {}); err != nil {
		t.Fatalf("pull: %v", err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumWaiting != 0 {
		t.Errorf("pull returned with %d requests still out", info.NumWaiting)
	}
}

// pullConsumer ensures names' stream on js and a durable consumer on its
// partition 0 with maxAckPending (0: the server's default), as task makes
// one per partition.
func pullConsumer(ctx context.Context, t *testing.T, js jetstream.JetStream, names mq.Names,
	durable string, maxAckPending int) jetstream.Consumer {
	t.Helper()
	stream, err := mq.EnsureStream(ctx, js, names)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: durable, FilterSubject: names.PartitionSubject(0),
		AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: maxAckPending,
	})
	if err != nil {
		t.Fatal(err)
	}
	return cons
}

// The events of a request the puller gave up on, should the server still
// hold it, do not count towards a later pull's batch. Counted, they ended
// that pull before its own request had brought its events, and a partition
// released then left them in the puller's channel at close: delivered, so
// held by the consumer until their ack wait ran out, then redelivered to
// the next owner behind the events it had pushed since.
func TestPuller_GivenUpRequestsEventsDoNotEndThePull(t *testing.T) {
	en := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const batch, events = 10, 15
	cons := pullConsumer(ctx, t, en.js, en.names, "lapsed", 100)
	pl, err := newPuller(en.js, en.names.Stream, "lapsed", batch, 100)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			pl.close()
		}
	}()

	// A request the server holds long after the puller gave up on it, as
	// one held in a reconnect buffer would be.
	pl.giveUp = 100 * time.Millisecond
	normal := pl.request
	pl.request, err = json.Marshal(pullRequest{Batch: batch, Expires: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := pl.pull(func(*nats.Msg) { t.Error("an event for an empty stream") }); err == nil {
		t.Fatal("pull of an empty stream ended before its request's expiry")
	}
	pl.giveUp, pl.request = pullWait+pullGrace, normal

	// The given-up request takes the first batch, the next pull's own the
	// rest.
	subject := en.names.PartitionSubject(0)
	for i := range events {
		if _, err := en.js.Publish(ctx, subject, fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	testwait.For(t, 5*time.Second, "the given-up request to take its batch", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == batch && info.NumWaiting == 0
	})
	var got []string
	take := func(m *nats.Msg) { got = append(got, string(m.Data)); _ = m.Ack() }
	if err := pl.pull(take); err != nil {
		t.Fatalf("pull: %v", err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumWaiting != 0 {
		t.Errorf("pull returned with %d requests still out", info.NumWaiting)
	}

	// The partition is released: its last pull returned, the puller closes.
	pl.close()
	closed = true
	if len(got) != events {
		t.Errorf("pulled %d events before the puller closed, want %d", len(got), events)
	}
	for i, d := range got {
		if d != fmt.Sprint(i) {
			t.Fatalf("event %d = %q, want %q (in stream order)", i, d, fmt.Sprint(i))
		}
	}
	testwait.For(t, 5*time.Second, "acks to be counted", func() bool {
		info, err = cons.Info(ctx)
		return err == nil && info.NumAckPending+int(info.NumPending) <= events-len(got)
	})
	if info.NumAckPending != 0 {
		t.Errorf("%d events delivered to the closed puller wait out their ack wait",
			info.NumAckPending)
	}
}

// The subscription kept for a request given up on is dropped when that
// request's end comes after all, and the puller subscribes no more than
// once per request given up on.
func TestPuller_DropsGivenUpRequestsSubscriptionAtItsEnd(t *testing.T) {
	en := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pullConsumer(ctx, t, en.js, en.names, "ended", 0)
	pl, err := newPuller(en.js, en.names.Stream, "ended", 10, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer pl.close()
	first := pl.sub

	pl.giveUp = 100 * time.Millisecond // well before the request's expiry
	if err := pl.pull(func(*nats.Msg) {}); err == nil {
		t.Fatal("pull of an empty stream ended before its request's expiry")
	}
	pl.giveUp = pullWait + pullGrace
	// The given-up request expires first, during this pull.
	if err := pl.pull(func(*nats.Msg) {}); err != nil {
		t.Fatalf("pull: %v", err)
	}
	if pl.sub == first {
		t.Error("the request after one given up on went out on the same subscription")
	}
	if first.IsValid() || len(pl.lapsed) != 0 {
		t.Errorf("the given-up request's subscription kept after its expiry (%d kept)",
			len(pl.lapsed))
	}
	second := pl.sub
	if err := pl.pull(func(*nats.Msg) {}); err != nil {
		t.Fatalf("pull: %v", err)
	}
	if pl.sub != second {
		t.Error("a pull after one that ended subscribed afresh")
	}
}

// A pull held by its caller past the time it gives a request up for lost
// (a worker queue full behind a slow gateway) does not give up a request
// whose answers wait in its channel: given up, its batch's rest would wait
// for the next pull, and if the partition was being released, in a closed
// puller for the ack wait, to come back behind later events.
func TestPuller_HeldPastGiveUpKeepsWaitingAnswers(t *testing.T) {
	en := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const batch = 10
	pullConsumer(ctx, t, en.js, en.names, "slow", 100)
	subject := en.names.PartitionSubject(0)
	for i := range batch {
		if _, err := en.js.Publish(ctx, subject, fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	pl, err := newPuller(en.js, en.names.Stream, "slow", batch, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer pl.close()
	pl.giveUp = 50 * time.Millisecond

	var got []string
	start := time.Now()
	err = pl.pull(func(m *nats.Msg) {
		if len(got) == 0 {
			// Held until the batch's rest is queued and the request is
			// past its give-up time.
			testwait.For(t, 10*time.Second, "the batch queued, give-up passed", func() bool {
				return len(pl.msgs) == batch-1 && time.Since(start) > 2*pl.giveUp
			})
		}
		got = append(got, string(m.Data))
		_ = m.Ack()
	})
	if err != nil {
		t.Errorf("pull: %v, with %d of its %d events handed over", err, len(got), batch)
	}
	if len(got) != batch {
		t.Errorf("pulled %d events, want %d", len(got), batch)
	}
}
