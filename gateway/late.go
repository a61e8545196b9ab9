package gateway

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/cloudwego/kitex/pkg/kerrors"
	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/internal/run"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

const (
	// latePositionsQueue bounds the closed connections whose positions wait
	// to be sent. Like disconnectQueue it holds one entry per connection of
	// a mass disconnect (only those that had positions queued); an entry
	// holds at most MaxPending requests. A pointer each: 512 KiB when full.
	latePositionsQueue = 1 << 16
	// latePositionsWorkers is how many closed connections' positions are
	// sent at once. They have goroutines of their own: after a mass
	// disconnect, the request pool stays free for the live connections,
	// which would be answered BUSY if late positions took its workers.
	latePositionsWorkers = 8
	// latePositionAttempts bounds the calls made for one position when
	// logic could not be reached or shed it (retryableLate), and
	// latePositionRetryWait is the wait before the second, doubled before
	// each later one: about 1.5 s in all, enough to ride out a blip (logic
	// shedding a burst, a connection being redialled), short enough that a
	// logic down for good holds a sender little longer than without them.
	latePositionAttempts  = 3
	latePositionRetryWait = 500 * time.Millisecond
)

// lateBatch is what one closed connection left to send: its DELIVERED and
// MARK_READ requests, in the order they were queued. sess is nil when the
// connection closed before a LOGIN completed: the batch is then dropped.
type lateBatch struct {
	connID int64
	sess   *logicrpc.Session
	reqs   []request
}

// latePositions sends the positions of closed connections to logic,
// unanswered (see applyLate). A connection's batch is sent by one goroutine,
// a call per request in order, so its positions reach logic in the order
// the client sent them. A request dropped (the queue full, the shutdown
// deadline passed, its call failed, no login to send it for) is counted in
// Stats.LatePositionsDropped and logged, sampled.
type latePositions struct {
	queue  chan *lateBatch
	ctx    context.Context // the calls' parent; cancelled at the drain deadline
	cancel context.CancelFunc
	// retryWait is latePositionRetryWait; a test shortens it.
	retryWait time.Duration
	// warn is sampled apart from Gateway.warn: a burst of drops must not
	// hide the gateway's other warnings, nor they the drops.
	warn       zerolog.Logger
	expireOnce sync.Once

	mu sync.Mutex
	// stopped means the queue is closed: a batch submitted later is
	// dropped, never sent on a closed channel.
	stopped bool
}

// start launches the senders in grp. Run calls it before any connection
// can close.
func (l *latePositions) start(g *Gateway, grp *run.Group) {
	l.init(g, latePositionsQueue)
	for range latePositionsWorkers {
		grp.Go(g.log, "late-positions", func() {
			for b := range l.queue {
				l.send(g, b)
			}
		})
	}
}

// init readies l, with room for queueLen batches, for start or a test that
// sends nothing.
func (l *latePositions) init(g *Gateway, queueLen int) {
	l.queue = make(chan *lateBatch, queueLen)
	l.ctx, l.cancel = context.WithCancel(g.rpcCtx)
	l.retryWait = latePositionRetryWait
	l.warn = g.log.Sample(&zerolog.BurstSampler{Burst: 10, Period: time.Second})
}

// submit queues b without blocking: it runs on an event loop or a worker.
func (l *latePositions) submit(g *Gateway, b *lateBatch) {
	cause := ""
	l.mu.Lock()
	if l.stopped {
		cause = "gateway stopped"
	} else {
		select {
		case l.queue <- b:
		default:
			cause = "queue full"
		}
	}
	l.mu.Unlock()
	if cause != "" {
		l.drop(g, b, len(b.reqs), cause, nil)
	}
}

// expire cancels, deadline from now, the calls still running and those not
// yet made, so that a dead logic cannot hold the shutdown. Shutdown calls it
// once every connection is closed, before the pool is released, so that
// the positions share the pool's wait rather than add one of their own.
func (l *latePositions) expire(deadline time.Duration) {
	l.expireOnce.Do(func() {
		if l.cancel != nil {
			time.AfterFunc(deadline, l.cancel)
		}
	})
}

// stop closes the queue: the senders finish it and return. Call it once no
// worker can hand a batch over (the pool released); one submitted later,
// by a worker that outlived the release, is dropped. It may be called more
// than once.
func (l *latePositions) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped || l.queue == nil {
		return
	}
	l.stopped = true
	close(l.queue)
}

// send makes b's calls in order, each bounded by RequestTimeout. A call
// that fails drops its request, unless logic refused it (refusedLate). What
// is left of b once the shutdown deadline has passed is dropped.
func (l *latePositions) send(g *Gateway, b *lateBatch) {
	for i, r := range b.reqs {
		if l.ctx.Err() != nil {
			l.drop(g, b, len(b.reqs)-i, "shutdown deadline passed", nil)
			return
		}
		err := l.apply(g, b.sess, r)
		switch {
		case err == nil:
		case refusedLate(err):
			g.log.Debug().Err(err).Int64("conn", b.connID).Int64("user", b.sess.UserId).
				Stringer("op", r.op).Msg("closed connection's position refused")
		case l.ctx.Err() != nil:
			l.drop(g, b, 1, "shutdown deadline passed", err)
		default:
			l.drop(g, b, 1, "logic call failed", err)
		}
	}
}

// apply sends r for sess, making up to latePositionAttempts calls while
// they fail in a way that may pass in a moment (retryableLate). It waits
// between them on a sender's goroutine, never on a loop or a pool worker,
// and no longer than the shutdown deadline.
func (l *latePositions) apply(g *Gateway, sess *logicrpc.Session, r request) error {
	wait := l.retryWait
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(l.ctx, g.cfg.RequestTimeout)
		err := g.applyPosition(ctx, sess, r)
		cancel()
		if err == nil || attempt == latePositionAttempts || !retryableLate(err) {
			return err
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-l.ctx.Done():
			timer.Stop()
			return err
		}
		wait *= 2
	}
}

// retryableLate reports whether a late position's call failed before logic
// could act on it and may succeed shortly: no connection to logic could be
// had (an instance restarting), or logic shed the call (BUSY, UNAVAILABLE).
// A timeout is not retried: the call may still run in logic, and a logic
// that hangs would hold the sender another RequestTimeout per attempt.
func retryableLate(err error) bool {
	if errors.Is(err, kerrors.ErrGetConnection) {
		return true
	}
	biz, ok := errors.AsType[*common.BizError](err)
	return ok && (biz.Code == common.ErrorCode_BUSY || biz.Code == common.ErrorCode_UNAVAILABLE)
}

// refusedLate reports whether err is logic refusing the position itself (a
// malformed one, a session it no longer accepts): an open connection would
// have been refused it too, so it is no loss of the close and is not
// counted as dropped. Any other failure, an unknown code included, is.
func refusedLate(err error) bool {
	biz, ok := errors.AsType[*common.BizError](err)
	if !ok {
		return false
	}
	switch biz.Code {
	case common.ErrorCode_BAD_REQUEST, common.ErrorCode_UNAUTHENTICATED,
		common.ErrorCode_FORBIDDEN, common.ErrorCode_NOT_FOUND, common.ErrorCode_TOO_LARGE,
		common.ErrorCode_TOKEN_INVALID: // a signed-out device's, refused as it was open
		return true
	}
	return false
}

// drop counts n requests of b as dropped, one each whatever positions a
// DELIVERED carries, and logs it with err, the failure if any, sampled; the
// total in the line tells how many the sampling hid.
func (l *latePositions) drop(g *Gateway, b *lateBatch, n int, cause string, err error) {
	total := g.stats.latePositionsDropped.Add(uint64(n))
	ev := l.warn.Warn().Err(err).Int64("conn", b.connID)
	if b.sess != nil {
		ev = ev.Int64("user", b.sess.UserId)
	}
	ev.Int("positions", n).Uint64("dropped_total", total).Str("cause", cause).
		Msg("closed connection's positions dropped")
}

// applyPosition sends r, a DELIVERED or MARK_READ, for sess.
func (g *Gateway) applyPosition(ctx context.Context, sess *logicrpc.Session, r request) error {
	var err error
	switch req := r.body.(type) {
	case *protocol.DeliveredReq:
		_, err = g.logic.Delivered(ctx, sess, req)
	case *protocol.MarkReadReq:
		_, err = g.logic.MarkRead(ctx, sess, req)
	}
	return err
}

// keepLate, as c closes, keeps of its queue only the positions to send
// late. It returns them to be sent now, unless a worker is running a request
// of c: they then stay queued for that worker to hand over when done (next),
// so that they never reach logic beside the request before them. A
// connection not logged in keeps them too: they were queued behind a LOGIN
// (dispatch refuses them otherwise), which, if it is the request running,
// may still log c in (completeLogin sends them then); else applyLate counts
// them dropped. c.mu is held.
func (c *conn) keepLate() []request {
	late := positionRequests(c.queue)
	if c.running {
		c.queue = late
		return nil
	}
	c.queue = nil
	return late
}

// positionRequests returns the DELIVERED and MARK_READ requests of queue.
func positionRequests(queue []request) []request {
	var out []request
	for _, r := range queue {
		if r.op == protocol.Op_DELIVERED || r.op == protocol.Op_MARK_READ {
			out = append(out, r)
		}
	}
	return out
}

// applyLate has late, the DELIVERED and MARK_READ requests a logged-in
// connection still had queued when it closed, sent to logic unanswered. It
// runs on the loop when the connection closed idle, else on its worker.
// The other requests of a closed connection are dropped: their client
// learns nothing of them and sends them again (under the same client ids).
// These two it need not: a client that reports its last positions and
// closes at once would otherwise leave the server an older delivered or
// read position, which its other devices, a new device and a reinstall
// start from.
//
// They are sent in their order, after the request the connection's worker
// was running: positions only move forward, so the stored ones would be
// right in any order, but logic tells the user's other devices of each read
// position it applies, and a lower one applied last would be told last.
// (Only after that request's call returned: one that timed out may still
// run in logic.)
//
// They go through latePositions, not the request pool: a mass disconnect
// would otherwise fill the pool with them, answering live connections BUSY,
// and drop them silently once it was full.
//
// sess is nil when c closed before a LOGIN completed: with no user to send
// them for, the positions are counted dropped rather than lost unseen.
func (g *Gateway) applyLate(c *conn, sess *logicrpc.Session, late []request) {
	if len(late) == 0 {
		return
	}
	b := &lateBatch{connID: c.id, sess: sess, reqs: late}
	if sess == nil {
		g.late.drop(g, b, len(late), "closed before its login completed", nil)
		return
	}
	g.late.submit(g, b)
}
