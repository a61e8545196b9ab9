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
