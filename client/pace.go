package client

import (
	"context"
	"sync"
	"time"
)

// Pacer spaces requests below the gateway's frame rate: Burst go at once,
// then one every Every. A connection's requests that could come faster
// than their answers (a file's chunks, a long paste's lines) wait on one,
// since the gateway closes a connection over its rate (RATE_LIMITED). The
// zero value lets everything through; a Pacer is safe for concurrent use,
// so that everything paced on one connection shares its budget.
type Pacer struct {
	Every time.Duration
	Burst int

	mu  sync.Mutex
	due time.Time // when the requests so far would have ended at one per Every
}

// Wait returns when the next request may go, or with ctx's error.
func (p *Pacer) Wait(ctx context.Context) error {
	p.mu.Lock()
	now := time.Now()
	if p.due.Before(now) {
		p.due = now
	}
	p.due = p.due.Add(p.Every)
	early := p.due.Sub(now) - time.Duration(p.Burst)*p.Every
	p.mu.Unlock()
	if early <= 0 {
		return ctx.Err()
	}
	return sleep(ctx, early)
}

// HalfFrameRate paces at half the gateway's default frame rate (200 a
// second, bursts of 400), which leaves the other half to heartbeats,
// acknowledgements and read receipts.
func HalfFrameRate() *Pacer { return &Pacer{Every: 10 * time.Millisecond, Burst: 100} }
