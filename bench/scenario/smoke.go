package scenario

import (
	"context"
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
		return c, fmt.Errorf("%w: smoke needs an address", ErrBadConfig)
	}
	if err := refuseNegative("smoke", map[string]float64{"Users": float64(c.Users),
		"Messages": float64(c.Messages), "Concurrency": float64(c.Concurrency),
		"Timeout": float64(c.Timeout)}); err != nil {
		return c, err
	}
	if c.Users == 0 {
		c.Users = 20
	}
	if c.Messages == 0 {
		c.Messages = 50
	}
	if c.Users < 2 {
		return c, fmt.Errorf("%w: smoke needs at least 2 users", ErrBadConfig)
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
	// Elapsed runs from the first send to the last delivery (or the timeout).
	Elapsed time.Duration
}

// String is the one-line summary the bench tool prints.
func (r SmokeResult) String() string {
	return fmt.Sprintf("smoke: users=%d messages=%d acked=%d delivered=%d lost=%d "+
		"duplicated=%d reordered=%d elapsed=%.1fs", r.Users, r.Messages, r.Acked,
		r.Delivered, r.Lost, r.Duplicated, r.Reordered, r.Elapsed.Seconds())
}

// OK reports whether every send was acked and delivered once, in order.
func (r SmokeResult) OK() bool {
	return r.Failed == 0 && r.Lost == 0 && r.Duplicated == 0 && r.Reordered == 0
}

// Smoke registers cfg.Users users, has each send cfg.Messages 1:1 messages
// round-robin to the others (each send waits for its ack), collects pushes on
// every connection and waits until every acked message reached its
// recipient. It returns an error wrapping ErrCheckFailed when the result is
// not OK, with the result filled in; other errors mean setup failed.
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
	defer func() {
		closeUsers(users)
		collectors.Wait()
	}()

	start := time.Now()
	acked, failed, firstErr := sendAll(ctx, cfg, users, tr)
	waitDelivered(ctx, tr, cfg.Timeout)
	elapsed := time.Since(start)
	settle(ctx)

	res := SmokeResult{Users: cfg.Users, Messages: cfg.Users * cfg.Messages,
		Acked: acked, Failed: failed, Elapsed: elapsed}
	res.Delivered, res.Lost, res.Duplicated, res.Reordered = tr.tally()
	if !res.OK() {
		return res, fmt.Errorf("%w: %d failed sends (first: %v), %d lost, %d duplicated, "+
			"%d reordered", ErrCheckFailed, failed, firstErr,
			res.Lost, res.Duplicated, res.Reordered)
	}
	return res, nil
}

// collect starts one goroutine per user that records its pushes until its
// connection closes.
func collect(users []*user, tr *tracker) *sync.WaitGroup {
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range u.c.Messages() {
				tr.delivered(i, m.MsgId, m.ConvId, m.Seq)
			}
		}()
	}
	return &wg
}

// sendAll runs each user's sends in order on its own goroutine, with at most
// cfg.Concurrency sends in flight overall.
func sendAll(ctx context.Context, cfg SmokeConfig, users []*user, tr *tracker) (
	acked, failed int, firstErr error) {
	var nAcked, nFailed atomic.Int64
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
	return int(nAcked.Load()), int(nFailed.Load()), firstErr
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
