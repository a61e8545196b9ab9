package scenario

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client/clienttest"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

func startServer(t *testing.T) *clienttest.Server {
	t.Helper()
	s, err := clienttest.Start(clienttest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestSmoke_PassesAgainstFakeAndRepeats(t *testing.T) {
	s := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Two runs on one server: the per-run prefix keeps names apart.
	for run := range 2 {
		res, err := Smoke(ctx, SmokeConfig{Addr: s.Addr(), Users: 20, Messages: 50,
			Concurrency: 4, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatalf("run %d: %v (%s)", run, err, res)
		}
		if res.Messages != 1000 || res.Acked != 1000 || res.Delivered != 1000 || !res.OK() {
			t.Fatalf("run %d: %s", run, res)
		}
		line := regexp.MustCompile(`^smoke: users=20 messages=1000 acked=1000 delivered=1000 lost=0 ` +
			`duplicated=0 reordered=0 elapsed=\d+\.\ds$`)
		t.Log(res)
		if !line.MatchString(res.String()) {
			t.Fatalf("summary %q", res.String())
		}
	}
}

func TestSmoke_ReportsFailedSends(t *testing.T) {
	s := startServer(t)
	// Fail more sends than the SDK retries: some sends fail for good.
	s.FailSends(1000)
	res, err := Smoke(context.Background(), SmokeConfig{Addr: s.Addr(), Users: 2, Messages: 1,
		Timeout: time.Second})
	if !errors.Is(err, ErrCheckFailed) || res.Failed != 2 || res.Acked != 0 {
		t.Fatalf("Smoke = %s, %v; want 2 failed sends", res, err)
	}
}

// A user the server closes (here as a slow consumer) during smoke is
// reported as chat reports it: the run fails naming the close and its
// reason; what was acked to that user near or after the close is
// undeliverable, not lost, and its own sends that got no ack are unacked,
// not failed. Smoke used to miss the close: every message due to the user
// counted as lost and each of its sends as failed, with no reason shown.
func TestSmoke_ReceiverClosedByServerIsNamedNotLoss(t *testing.T) {
	s := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go func() {
		// Once the run sends, the server closes user 1, to whom the others
		// go on sending in turn.
		for ctx.Err() == nil && s.SendCount() < 20 {
			time.Sleep(time.Millisecond)
		}
		names := s.Usernames()
		if len(names) == 4 {
			s.CloseUser(names[1], protocol.CloseReason_SLOW_CONSUMER, -1)
		}
	}()
	res, err := Smoke(ctx, SmokeConfig{Addr: s.Addr(), Users: 4, Messages: 250,
		Concurrency: 2, Timeout: 3 * time.Second})
	const why = "the server closed 1 connection (SLOW_CONSUMER: 1); 0 failed sends"
	if !errors.Is(err, ErrCheckFailed) || !strings.Contains(err.Error(), why) || res.OK() {
		t.Fatalf("Smoke = %v (%s), want %q", err, res, why)
	}
	undeliverable := res.Undeliverable["SLOW_CONSUMER"]
	if res.Lost != 0 || res.Failed != 0 || undeliverable == 0 || res.Unacked == 0 {
		t.Fatalf("want no loss nor failure, some undeliverable and unacked: %s", res)
	}
	if res.Acked != res.Delivered+undeliverable || res.Acked+res.Unacked != res.Messages {
		t.Fatalf("sends not all acked or unacked, acked not all delivered or "+
			"undeliverable: %s", res)
	}
	if !strings.Contains(res.String(),
		`closed_by_server="1 connection (SLOW_CONSUMER: 1)"`) {
		t.Fatalf("summary %q does not name the close", res)
	}
}

func TestSmoke_RejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  SmokeConfig
	}{
		{name: "no address", cfg: SmokeConfig{Users: 2}},
		{name: "one user", cfg: SmokeConfig{Addr: "127.0.0.1:1", Users: 1}},
		{name: "negative messages", cfg: SmokeConfig{Addr: "127.0.0.1:1", Messages: -1}},
		// User names are the prefix and an index: "r0" is too short for
		// the server, and so on.
		{name: "prefix too short", cfg: SmokeConfig{Addr: "127.0.0.1:1", Prefix: "r"}},
		{name: "prefix too long", cfg: SmokeConfig{Addr: "127.0.0.1:1", Users: 20,
			Prefix: strings.Repeat("x", 31)}},
		{name: "prefix with a space", cfg: SmokeConfig{Addr: "127.0.0.1:1", Prefix: "my run"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Smoke(context.Background(), tt.cfg); !errors.Is(err, ErrBadConfig) {
				t.Fatalf("err = %v, want ErrBadConfig", err)
			}
		})
	}
}

type push struct {
	receiver int
	msgID    int64
	conv     string
	seq      int64
}

func TestTracker_Tally(t *testing.T) {
	tests := []struct {
		name                                   string
		acks                                   map[int64]int // msg id -> receiver
		pushes                                 []push
		delivered, lost, duplicated, reordered int
		complete                               bool
	}{
		{
			name:      "all in order",
			acks:      map[int64]int{1: 1, 2: 1},
			pushes:    []push{{1, 1, "c", 1}, {1, 2, "c", 2}},
			delivered: 2, complete: true,
		},
		{
			name:      "one lost",
			acks:      map[int64]int{1: 1, 2: 1},
			pushes:    []push{{1, 1, "c", 1}},
			delivered: 1, lost: 1,
		},
		{
			name:      "duplicate counted once",
			acks:      map[int64]int{1: 1},
			pushes:    []push{{1, 1, "c", 1}, {1, 1, "c", 1}},
			delivered: 1, duplicated: 1, complete: true,
		},
		{
			name:      "reordered",
			acks:      map[int64]int{1: 1, 2: 1},
			pushes:    []push{{1, 2, "c", 2}, {1, 1, "c", 1}},
			delivered: 2, reordered: 1, complete: true,
		},
		{
			name:      "separate conversations are independent",
			acks:      map[int64]int{1: 1, 2: 1},
			pushes:    []push{{1, 1, "c", 5}, {1, 2, "d", 1}},
			delivered: 2, complete: true,
		},
		{
			name:   "at the wrong receiver is lost",
			acks:   map[int64]int{1: 1},
			pushes: []push{{0, 1, "c", 1}},
			lost:   1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker(2)
			// Pushes first for half the cases' messages: a push may beat its ack.
			for _, p := range tt.pushes {
				tr.delivered(p.receiver, p.msgID, p.conv, p.seq)
			}
			for id, to := range tt.acks {
				tr.acked(id, to, time.Time{})
			}
			d, l, dup, r := tr.tally()
			if d != tt.delivered || l != tt.lost || dup != tt.duplicated || r != tt.reordered {
				t.Fatalf("tally = %d delivered %d lost %d duplicated %d reordered", d, l, dup, r)
			}
			if tr.complete() != tt.complete {
				t.Fatalf("complete = %v, want %v", tr.complete(), tt.complete)
			}
		})
	}
}

// A receiver the server closed is owed nothing more: what was acked to it
// and not delivered is undeliverable, under the close's reason, and nobody
// waits for it; a message missing at a live receiver is still lost.
func TestTracker_ClosedReceiver(t *testing.T) {
	closedAt := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	tr := newTracker(3)
	tr.acked(1, 1, closedAt.Add(-time.Second))
	tr.delivered(1, 1, "c", 1)
	tr.acked(2, 1, closedAt.Add(-time.Second)) // just before the close, never delivered
	tr.acked(3, 2, closedAt.Add(-time.Second)) // to a live receiver, never delivered
	tr.serverClosed(1, "SLOW_CONSUMER", closedAt)
	tr.acked(4, 1, closedAt.Add(time.Second)) // acked after the close
	if tr.complete() {
		t.Fatal("complete with message 3 missing at a live receiver")
	}
	d, l, dup, r := tr.tally()
	if d != 1 || l != 1 || dup != 0 || r != 0 {
		t.Fatalf("tally = %d delivered %d lost %d duplicated %d reordered, want 1 1 0 0",
			d, l, dup, r)
	}
	if u := tr.undeliverable(); len(u) != 1 || u["SLOW_CONSUMER"] != 2 {
		t.Fatalf("undeliverable = %v, want 2 for SLOW_CONSUMER", u)
	}
	tr.delivered(2, 3, "d", 1)
	if !tr.complete() {
		t.Fatal("not complete with only the closed receiver's messages missing")
	}
}

// A message acked to a receiver more than closeGrace before the server
// closed it had time to arrive: missing, it is lost, not undeliverable. One
// acked within closeGrace of the close, or after it, was cut off by the
// close. Every such message used to count as undeliverable, however early
// it was acked.
func TestTracker_ClosedReceiverLosesWhatWasAckedLongBefore(t *testing.T) {
	closedAt := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name          string
		ackedAt       time.Time
		delivered     bool
		lost          int
		undeliverable int
	}{
		{name: "long before, delivered", ackedAt: closedAt.Add(-time.Hour), delivered: true},
		{name: "long before", ackedAt: closedAt.Add(-time.Hour), lost: 1},
		{name: "just past the grace", ackedAt: closedAt.Add(-closeGrace - time.Millisecond),
			lost: 1},
		{name: "at the grace", ackedAt: closedAt.Add(-closeGrace), undeliverable: 1},
		{name: "just before", ackedAt: closedAt.Add(-time.Millisecond), undeliverable: 1},
		{name: "after", ackedAt: closedAt.Add(time.Second), undeliverable: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker(2)
			tr.acked(1, 1, tt.ackedAt)
			if tt.delivered {
				tr.delivered(1, 1, "c", 1)
			}
			tr.serverClosed(1, "SLOW_CONSUMER", closedAt)
			_, lost, _, _ := tr.tally()
			undeliverable := tr.undeliverable()["SLOW_CONSUMER"]
			if lost != tt.lost || undeliverable != tt.undeliverable {
				t.Fatalf("lost %d, undeliverable %d; want %d, %d", lost, undeliverable,
					tt.lost, tt.undeliverable)
			}
			// Lost or cut off, nothing more reaches a closed receiver.
			if !tr.complete() {
				t.Fatal("the run waits for a closed receiver")
			}
		})
	}
}

// The closes a run reports are counted per reason, a receiver's first
// close only, and named in the reasons' order.
func TestClosures_NamesClosesByReason(t *testing.T) {
	c := newClosures()
	if got := c.String(); got != "" {
		t.Fatalf("no close named %q", got)
	}
	at := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	c.add(3, "SLOW_CONSUMER", at)
	if got, want := c.String(), "1 connection (SLOW_CONSUMER: 1)"; got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
	c.add(1, "SLOW_CONSUMER", at)
	c.add(2, "RATE_LIMITED", at)
	if c.add(2, "KICKED", at) {
		t.Fatal("a second close of receiver 2 counted")
	}
	want := "3 connections (RATE_LIMITED: 1, SLOW_CONSUMER: 2)"
	if got := c.String(); got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
}
