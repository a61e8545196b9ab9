// Package mq owns the NATS JetStream contract between logic and task: the
// stream, its subjects and their partitions (partition.go), the durable
// consumer names, and the embedded NATS server of the single-process mode.
// Event bodies are Thrift structs of kitex_gen/event.
package mq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Names is the set of JetStream names one deployment uses. Tests give each run
// its own prefix so runs against a shared NATS never collide.
type Names struct {
	Stream   string // stream holding message events
	Subject  string // subject prefix; message events go to Subject + ".msg.<partition>"
	Consumer string // prefix of the durable consumers shared by task instances
}

// NewNames derives the names from a prefix ("resonance" when empty).
func NewNames(prefix string) Names {
	if prefix == "" {
		prefix = "resonance"
	}
	return Names{
		Stream:   sanitize(prefix) + "_EVENTS",
		Subject:  prefix + ".evt",
		Consumer: sanitize(prefix) + "_task",
	}
}

// KickSubject is the subject kick events (event.KickEvent) are published on.
// The stream captures it with the rest of Subject + ".>".
func (n Names) KickSubject() string { return n.Subject + ".kick" }

// KickConsumer is the durable consumer of kick events, shared by task
// instances. Kicks have a consumer of their own so that a backlog of message
// events never delays closing a replaced connection.
func (n Names) KickConsumer() string { return n.Consumer + "_kick" }

// sanitize turns a prefix into a valid stream or consumer name (no dots,
// spaces or wildcards).
func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == '.' || c == ' ' || c == '*' || c == '>' || c == '/' || c == '\\' {
			b[i] = '_'
		}
	}
	return string(b)
}

// DuplicateWindow is how long the stream remembers an event's Nats-Msg-Id
// and drops a republished copy. The server holds every id of the window in
// memory, about 130 bytes each (measured on nats-server 2.15: 300,000
// publishes grew its heap by 38.7 MiB with a 10-minute window, 0.7 MiB with
// one second), so the window costs rate × window × 130 B: with 10 minutes,
// 400 MB at 5,000 events/s and 1.6 GB at 20,000. Copies come from logic's
// relay: an event whose publish timed out after the stream stored it
// (republished after relayAge, seconds), and rows a crashed logic left,
// republished when it starts again. Two minutes covers a restart; a copy
// that comes later reaches the devices with a seq they already have, and
// the clients drop it (docs/protocol.md).
const DuplicateWindow = 2 * time.Minute

// EnsureStream creates or updates the events stream. It is idempotent, so
// every logic and task instance calls it at start.
func EnsureStream(ctx context.Context, js jetstream.JetStream, n Names) (jetstream.Stream, error) {
	cfg := jetstream.StreamConfig{
		Name:     n.Stream,
		Subjects: []string{n.Subject + ".>"},
		Storage:  jetstream.FileStorage,
		// Limits retention: several consumers (push, notifications) read one log.
		Retention: jetstream.LimitsPolicy,
		MaxAge:    24 * time.Hour,
		// Publishers set Nats-Msg-Id; a republish inside this window is dropped.
		Duplicates: DuplicateWindow,
	}
	s, err := RetryStore(ctx, func() (jetstream.Stream, error) {
		return js.CreateOrUpdateStream(ctx, cfg)
	})
	if err != nil {
		return nil, fmt.Errorf("mq: ensure stream %s: %w", n.Stream, err)
	}
	return s, nil
}

// storeAttempts is how many times RetryStore asks for a stream whose store
// the server failed to create.
const storeAttempts = 4

// RetryStore calls create, which makes a stream (a key-value bucket is
// one), again when the server failed to create its store (storeFailed), a
// few times with a short pause, and returns its last result.
func RetryStore[T any](ctx context.Context, create func() (T, error)) (T, error) {
	for attempt := 1; ; attempt++ {
		v, err := create()
		if err == nil || !storeFailed(err) || attempt == storeAttempts {
			return v, err
		}
		select {
		case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
		case <-ctx.Done():
			return v, fmt.Errorf("%w (then %w)", err, ctx.Err())
		}
	}
}

// storeFailed reports whether err is the server's failure to create a
// stream's store (JetStream error 10049). A server deleting the account's
// last stream at that moment removes the directory the new store goes in
// (seen on nats-server 2.9 with test runs sharing one server: "could not
// create storage directory ... no such file or directory"); asked again, it
// makes the directory.
func storeFailed(err error) bool {
	var api *jetstream.APIError
	return errors.As(err, &api) && api.ErrorCode == jsStreamStoreFailed
}

// jsStreamStoreFailed is JetStream's "error creating store for stream".
const jsStreamStoreFailed jetstream.ErrorCode = 10049

// Embedded is a NATS server with JetStream running inside this process. Its
// clients connect over TCP to a loopback port picked at start, with a token
// made at start, so that no other process can use it. nats.go's in-process
// connection is not used: it is a net.Pipe, whose every write waits until
// the other side has read it, and with one connection carrying the
// publisher's events, their acks and task's pulls, that hand-off held 1:1
// chat's delivery near 17,000-19,000 msgs/s on 2 cores (end to end p99 4-5 s
// at 20,000/s offered; over loopback TCP, 0.3 s).
type Embedded struct {
	srv   *server.Server
	token string
}

// ErrNotLoopback means the embedded server was given an address that is not
// a loopback IP.
var ErrNotLoopback = errors.New("not a loopback IP address")

// StartEmbedded starts a JetStream-enabled NATS server storing under dir
// and listening on listen, a loopback host:port; "" or port 0 picks a free
// port.
func StartEmbedded(dir, listen string) (*Embedded, error) {
	host, port, err := embeddedHostPort(listen)
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 24)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("mq: embedded nats token: %w", err)
	}
	token := hex.EncodeToString(secret)
	opts := &server.Options{
		ServerName:             "resonance-embedded",
		Host:                   host,
		Port:                   port,
		Authorization:          token,
		JetStream:              true,
		StoreDir:               dir,
		NoSigs:                 true,
		NoLog:                  true,
		DisableJetStreamBanner: true,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("mq: embedded nats: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("mq: embedded nats on %s:%d not ready after 10s", host, port)
	}
	return &Embedded{srv: srv, token: token}, nil
}

// embeddedHostPort splits the embedded server's listen address. The host
// must be a loopback IP: only this process connects, and a name would leave
// the interface to the resolver.
func embeddedHostPort(listen string) (string, int, error) {
	if listen == "" {
		return "127.0.0.1", server.RANDOM_PORT, nil
	}
	host, portText, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, fmt.Errorf("mq: embedded nats address %q: %w", listen, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return "", 0, fmt.Errorf("mq: embedded nats address %q: %w", listen,
			ErrNotLoopback)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("mq: embedded nats address %q: port %q is not a number "+
			"from 0 to 65535", listen, portText)
	}
	if port == 0 {
		return host, server.RANDOM_PORT, nil
	}
	// The server reports a port it cannot bind only by never becoming
	// ready; trying it first says why at once. Another process may take it
	// between the two, and then the wait for readiness fails instead.
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return "", 0, fmt.Errorf("mq: embedded nats: %w", err)
	}
	ln.Close()
	return host, int(port), nil
}

// Connect opens a client connection to the embedded server. Like Dial's, it
// reconnects forever: the server cannot go away without the process, but it
// drops a connection that stops reading (a slow consumer), and the process
// must get its connection back.
func (e *Embedded) Connect(name string) (*nats.Conn, error) {
	nc, err := nats.Connect(e.srv.ClientURL(), nats.Token(e.token), nats.Name(name),
		nats.MaxReconnects(-1), nats.ReconnectWait(500*time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("mq: connect embedded nats at %s: %w", e.srv.ClientURL(), err)
	}
	return nc, nil
}

// Shutdown stops the server and waits for it.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// Dial connects to an external NATS server at url with reconnects forever, so
// a NATS restart does not take the service down.
func Dial(url, name string) (*nats.Conn, error) {
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond),
	)
	if err != nil {
		return nil, fmt.Errorf("mq: connect %s: %w", url, err)
	}
	return nc, nil
}
