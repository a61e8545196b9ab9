package scenario

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resonance-im/resonance/client"
)

// SmokeConfig configures Smoke. Zero fields take their defaults.
type SmokeConfig struct {
	// Addr is the gateway's host:port. Required.
	Addr string
	// Users is how many users take part, each on its own connection;
	// default 20, at least 2.
	Users int
	// Messages is how many messages each user sends; default 50.
	Messages int
	// Concurrency bounds the sends (and logins) in flight across all users;
	// default 16.
	Concurrency int
	// Timeout bounds the wait for delivery after the last ack; default 60s.
	Timeout time.Duration
	// Prefix is the username prefix; default a fresh random one per run.
	Prefix string
	// Client configures every connection.
	Client client.Options
}

func (c SmokeConfig) withDefaults() (SmokeConfig, error) {
	if c.Addr == "" {
		return c, fmt.Errorf("%w: smoke needs --addr", ErrBadConfig)
	}
	if err := refuseNegative("smoke", c); err != nil {
		return c, err
	}
	if c.Users == 0 {
		c.Users = 20
	}
	if c.Messages == 0 {
		c.Messages = 50
	}
	if c.Users < 2 {
		return c, fmt.Errorf("%w: smoke: --users must be at least 2, got %d", ErrBadConfig,
			c.Users)
	}
	if c.Concurrency == 0 {
		c.Concurrency = 16
	}
	if c.Timeout == 0 {
		c.Timeout = 60 * time.Second
	}
	if c.Prefix == "" {
		c.Prefix = uniquePrefix("smoke")
	}
	return c, checkPrefix(c.Prefix, c.Users)
}

// SmokeResult is the outcome of Smoke. Messages counts the sends attempted;
// Delivered, Lost and Duplicated concern acked messages at their recipient;
// Reordered counts pushes whose seq did not exceed the previous one of the
// same conversation at the same receiver.
type SmokeResult struct {
	Users      int
	Messages   int
	Acked      int
	Failed     int
	Delivered  int
	Lost       int
	Duplicated int
	Reordered  int
	// ClosedByServer names the connections the server closed with a CLOSE,
	// by reason ("1 connection (SLOW_CONSUMER: 1)"); empty when none.
	ClosedByServer string
	// Undeliverable counts, per close reason, the acked messages not
	// delivered because the server closed their receiver after their ack
	// or within closeGrace of it; they are not Lost.
	Undeliverable map[string]int
	// Unacked counts the sends of users the server closed that got no ack:
	// refused once the CLOSE came, or waiting for their ack then. They are
	// not Failed.
	Unacked int
	// Elapsed runs from the first send to the last delivery (or the timeout).
	Elapsed time.Duration
}

// String is the one-line summary the bench tool prints.
func (r SmokeResult) String() string {
	line := fmt.Sprintf("smoke: users=%d messages=%d acked=%d delivered=%d lost=%d "+
		"duplicated=%d reordered=%d elapsed=%.1fs", r.Users, r.Messages, r.Acked,
		r.Delivered, r.Lost, r.Duplicated, r.Reordered, r.Elapsed.Seconds())
	if r.ClosedByServer == "" {
		return line
	}
	undeliverable := 0
	for _, n := range r.Undeliverable {
		undeliverable += n
	}
	return fmt.Sprintf("%s closed_by_server=%q undeliverable=%d unacked=%d", line,
		r.ClosedByServer, undeliverable, r.Unacked)
}

// OK reports whether every send was acked and delivered once, in order, and
// the server closed no connection: what a closed user was sent or sent
// itself went unchecked.
func (r SmokeResult) OK() bool {
	return r.Failed == 0 && r.Lost == 0 && r.Duplicated == 0 && r.Reordered == 0 &&
		r.ClosedByServer == ""
}

// Smoke registers cfg.Users users, has each send cfg.Messages 1:1 messages
// round-robin to the others (each send waits for its ack), collects pushes on
// every connection and waits until every acked message reached its
// recipient. It returns an error wrapping ErrCheckFailed when the result is
// not OK, with the result filled in; other errors mean setup failed. A
// connection the server closes with a CLOSE (a slow consumer, say) fails
// the run, named with its reason, as in Chat: what was acked to it near or
// after the close and not delivered is undeliverable, not lost, and its
// sends that got no ack are unacked, not failed.
func Smoke(ctx context.Context, cfg SmokeConfig) (SmokeResult, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return SmokeResult{}, err
	}
	users, err := connectUsers(ctx, cfg.Addr, cfg.Prefix, cfg.Users, cfg.Concurrency, cfg.Client)
	if err != nil {
		return SmokeResult{}, fmt.Errorf("smoke: connect users: %w", err)
	}
	tr := newTracker(len(users))
	collectors := collect(users, tr)
	// end ends the connections (shutdownUsers) and waits for the
	// collectors. The result counts after it, so that a CLOSE a collector
	// records cannot land between two of its counts, as in chatRun.report:
	// recorded after the result had named the closes and before its tally,
	// it made a message its receiver never got undeliverable in a result
	// that named no close, and that passed.
	end := func() {
		shutdownUsers(users)
		collectors.Wait()
	}
	defer end()

	start := time.Now()
	sends := sendAll(ctx, cfg, users, tr)
	waitDelivered(ctx, tr, cfg.Timeout)
	elapsed := time.Since(start)
	settle(ctx)
	end()

	res := SmokeResult{Users: cfg.Users, Messages: cfg.Users * cfg.Messages,
		Acked: sends.acked, Failed: sends.failed, Unacked: sends.unacked, Elapsed: elapsed,
		ClosedByServer: tr.closed.String(), Undeliverable: tr.undeliverable()}
	res.Delivered, res.Lost, res.Duplicated, res.Reordered = tr.tally()
	switch {
	case res.OK():
		return res, nil
	case res.ClosedByServer == "":
		return res, fmt.Errorf("%w: %d failed sends (first: %v), %d lost, %d duplicated, "+
			"%d reordered", ErrCheckFailed, sends.failed, sends.firstErr,
			res.Lost, res.Duplicated, res.Reordered)
	default:
		return res, fmt.Errorf("%w: the server closed %s; %d failed sends (first: %v), "+
			"%d lost, %d duplicated, %d reordered", ErrCheckFailed, res.ClosedByServer,
			sends.failed, sends.firstErr, res.Lost, res.Duplicated, res.Reordered)
	}
}

// collect starts one goroutine per user that records its pushes until its
// connection closes, and then, when the server closed it with a CLOSE,
// that close: nothing more is due to that user (tracker.serverClosed).
// The Messages channel closes after the pushes read before the CLOSE, so
// those count as delivered first.
func collect(users []*user, tr *tracker) *sync.WaitGroup {
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range u.c.Messages() {
				tr.delivered(i, m.MsgId, m.ConvId, m.Seq)
			}
			if ce := serverClose(u.c); ce != nil {
				tr.serverClosed(i, ce.Reason.String(), time.Now())
			}
		}()
	}
	return &wg
}

// serverClose returns the CLOSE that ended c, or nil while c is open or
// when something else ended it.
func serverClose(c *client.Client) *client.CloseError {
	var ce *client.CloseError
	if errors.As(c.Err(), &ce) {
		return ce
	}
	return nil
}

// smokeSends counts the outcome of sendAll.
type smokeSends struct {
	acked, failed int
	// unacked counts the sends of users the server closed that got no ack.
	unacked  int
	firstErr error // of the failed
}

// sendAll runs each user's sends in order on its own goroutine, with at most
// cfg.Concurrency sends in flight overall. A send that fails because the
// server closed its sender is unacked, not failed.
func sendAll(ctx context.Context, cfg SmokeConfig, users []*user, tr *tracker) smokeSends {
	var nAcked, nFailed, nUnacked atomic.Int64
	var firstErr error
	var errOnce sync.Once
	sem := make(chan struct{}, cfg.Concurrency)
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range cfg.Messages {
				// Round-robin over the other users: i+1, i+2, ... skipping i.
				to := (i + 1 + j%(len(users)-1)) % len(users)
				sem <- struct{}{}
				ack, err := u.c.Send(ctx, client.SendParams{
					ToUserID: users[to].id, Text: fmt.Sprintf("smoke %d/%d", i, j),
				})
				<-sem
				if err != nil && serverClose(u.c) != nil {
					nUnacked.Add(1)
					continue
				}
				if err != nil {
					nFailed.Add(1)
					errOnce.Do(func() { firstErr = err })
					continue
				}
				tr.acked(ack.MsgId, to, time.Now())
				nAcked.Add(1)
			}
		}()
	}
	wg.Wait()
	return smokeSends{acked: int(nAcked.Load()), failed: int(nFailed.Load()),
		unacked: int(nUnacked.Load()), firstErr: firstErr}
}

// waitDelivered polls the tracker until every acked message arrived, the
// timeout passes or ctx is done.
func waitDelivered(ctx context.Context, tr *tracker, timeout time.Duration) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !tr.complete() {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		case <-tick.C:
		}
	}
}

// settleTime is how long Smoke keeps listening after the last expected push,
// so that a duplicate sent right behind it is still counted.
const settleTime = 200 * time.Millisecond

func settle(ctx context.Context) {
	t := time.NewTimer(settleTime)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
