package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/resonance-im/resonance/internal/rpcerr"
	"github.com/resonance-im/resonance/internal/run"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
)

const (
	// disconnectQueue bounds the closed connections waiting for their route
	// to be removed: a mass disconnect (a network blip, a load balancer
	// restart) closes tens of thousands at once, and each waits its turn
	// here rather than being dropped. A pointer each: 512 KiB when full.
	disconnectQueue = 1 << 16
	// disconnectWorkers is how many Disconnect calls run at once. They
	// have goroutines of their own, so a burst of them never takes the
	// request pool's place, and requests never starve them.
	disconnectWorkers = 16
)

// disconnects removes the routes of closed connections through
// logic.Disconnect. Removal is best effort: a route not removed (the queue
// full, logic unreachable, shutdown past its deadline) lapses with its TTL,
// since nothing renews it any more; until then a push to it finds no
// connection and presence shows the device online.
type disconnects struct {
	queue    chan *logicrpc.Session
	quit     chan struct{}   // closed by stop: drain, then return
	ctx      context.Context // the calls' parent; cancelled at the drain deadline
	cancel   context.CancelFunc
	stopOnce sync.Once
}

// start launches the workers in grp. Run calls it before any connection
// can close.
func (d *disconnects) start(g *Gateway, grp *run.Group) {
	d.queue = make(chan *logicrpc.Session, disconnectQueue)
	d.quit = make(chan struct{})
	d.ctx, d.cancel = context.WithCancel(g.rpcCtx)
	for range disconnectWorkers {
		grp.Go(g.log, "disconnect", func() { d.work(g) })
	}
}

// submit queues sess without blocking: it runs on an event loop.
func (d *disconnects) submit(g *Gateway, sess *logicrpc.Session) {
	select {
	case d.queue <- sess:
	default:
		g.warn.Warn().Int64("conn", sess.ConnId).Int64("user", sess.UserId).
			Int("queued", len(d.queue)).Msg("disconnect queue full, route will expire")
	}
}

// stop lets the workers finish the queue and return; calls still running
// after deadline are cancelled, so a dead logic cannot hold the shutdown.
// Call it once every connection is closed: a session queued later may be
// left to its TTL.
func (d *disconnects) stop(deadline time.Duration) {
	d.stopOnce.Do(func() {
		if d.quit == nil {
			return // never started
		}
		close(d.quit)
		time.AfterFunc(deadline, d.cancel)
	})
}

// work calls logic for the queued sessions until quit, then for what is
// left: each call takes the sessions queued at that moment, up to
// logicrpc.MaxDisconnectBatch, so a mass disconnect costs a call per batch
// rather than per connection.
func (d *disconnects) work(g *Gateway) {
	batch := make([]*logicrpc.Session, 0, logicrpc.MaxDisconnectBatch)
	for {
		select {
		case sess := <-d.queue:
			d.disconnect(g, d.fill(append(batch[:0], sess)))
		case <-d.quit:
			for {
				select {
				case sess := <-d.queue:
					d.disconnect(g, d.fill(append(batch[:0], sess)))
				default:
					return
				}
			}
		}
	}
}

// fill appends to batch the sessions queued now, up to
// logicrpc.MaxDisconnectBatch in all, without waiting.
func (d *disconnects) fill(batch []*logicrpc.Session) []*logicrpc.Session {
	for len(batch) < logicrpc.MaxDisconnectBatch {
		select {
		case sess := <-d.queue:
			batch = append(batch, sess)
		default:
			return batch
		}
	}
	return batch
}

// disconnect removes the routes of sessions: one Disconnect call for one, a
// DisconnectBatch for more, or a Disconnect each to a logic older than
// DisconnectBatch (g.disconnectsOld).
func (d *disconnects) disconnect(g *Gateway, sessions []*logicrpc.Session) {
	if d.ctx.Err() != nil {
		return // past the shutdown deadline: the routes expire
	}
	if len(sessions) > 1 && !g.disconnectsOld.active() {
		ctx, cancel := context.WithTimeout(d.ctx, g.cfg.RequestTimeout)
		failed, err := g.logic.DisconnectBatch(ctx, sessions)
		cancel()
		switch {
		case rpcerr.UnknownMethod(err):
			g.disconnectsOld.refused(g.log)
		case err != nil:
			g.warn.Warn().Err(err).Int("sessions", len(sessions)).
				Int64("first_conn", sessions[0].ConnId).Msg("disconnect batch failed, routes will expire")
			return
		default:
			if failed > 0 {
				g.warn.Warn().Int32("failed", failed).Int("sessions", len(sessions)).
					Msg("disconnects failed in logic, routes will expire")
			}
			return
		}
	}
	for _, sess := range sessions {
		// A RequestTimeout per call, as each bounds one logic call.
		ctx, cancel := context.WithTimeout(d.ctx, g.cfg.RequestTimeout)
		err := g.logic.Disconnect(ctx, sess)
		cancel()
		if err != nil {
			g.warn.Warn().Err(err).Int64("conn", sess.ConnId).Int64("user", sess.UserId).
				Msg("disconnect failed, route will expire")
		}
	}
}
