package task

import (
	"context"
	"time"

	"github.com/resonance-im/resonance/internal/registry"
	"github.com/resonance-im/resonance/kitex_gen/pushrpc"
)

// watchRegistry reads the registry now and every RegistryRefresh until ctx
// is done, dropping the clients of vanished gateways. Without a registry it
// returns at once.
func (t *Task) watchRegistry(ctx context.Context) {
	if t.view == nil {
		return
	}
	tick := time.NewTicker(t.cfg.RegistryRefresh)
	defer tick.Stop()
	for {
		t.readRegistry(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// registryWarnEvery is how often a registry that keeps failing is warned
// of again: reads come every RegistryRefresh (2 s), and one line each
// would fill the log through an outage.
const registryWarnEvery = time.Minute

func (t *Task) readRegistry(ctx context.Context) {
	cur, err := t.view.refresh(ctx)
	if err != nil {
		if ctx.Err() == nil {
			t.registryFailed(err, time.Now())
		}
		return
	}
	t.registryRead(time.Now())
	t.metrics.registry.WithLabelValues("live").Set(float64(len(cur.snap.Live)))
	t.metrics.registry.WithLabelValues("vanished").Set(float64(len(cur.snap.Gone)))
	for addr, gone := range cur.snap.Gone {
		lapsed := t.view.lapsed(addr)
		if lapsed && t.lapsed.busy(addr) {
			continue // its probe or its pushes use the client
		}
		// Not if a read completed since saw it live again.
		dropped := false
		t.view.unlessLiveSince(addr, cur.n, func() { dropped = t.gateways.drop(addr) })
		if dropped {
			// A lapsed gateway already tracked had its vanishing said, or its
			// changes since (lapsed.go): its client, made again by a probe
			// that answers, is dropped once each push to it fails.
			e := t.log.Info()
			if lapsed && t.lapsed.tracked(addr) {
				e = t.log.Debug()
			}
			e.Str("gateway", addr).Time("gone_at", gone).Bool("lapsed", lapsed).
				Msg("gateway vanished; its push client dropped")
		}
		if lapsed {
			t.probeLapsed(ctx, addr)
		}
	}
	// retain, like a probe's outcome and a failed call, sets lapsed_answering.
	t.lapsed.retain(t.view.lapsed)
}

// skipVanished removes from targets the gateways the registry says are
// gone, judged by a registry read begun after mark (see gatewayView). Their
// connections closed with them: the message is stored and those devices
// catch up when they reconnect elsewhere, whereas a call would wait for a
// connect timeout. A gateway the registry never heard of stays: it may be
// one that does not register. So does one whose registration lapsed but
// that answers its probes (see lapsedGateways).
func (t *Task) skipVanished(ctx context.Context, targets map[string][]*pushrpc.Target,
	mark uint64, msgID int64) {
	for addr, ts := range targets {
		if !t.skipGateway(ctx, addr, mark) {
			continue
		}
		delete(targets, addr)
		t.metrics.skipped.Inc()
		t.log.Debug().Str("gateway", addr).Int64("msg", msgID).Int("targets", len(ts)).
			Msg("push skipped: gateway vanished")
	}
}

// skipGateway reports whether a call to addr is to be skipped: it vanished
// by a registry read begun after mark, and it is not a lapsed gateway that
// answers. The latter is asked before the read, which it spares each push.
func (t *Task) skipGateway(ctx context.Context, addr string, mark uint64) bool {
	if t.view.settledState(ctx, addr) != registry.Vanished {
		return false // live, unknown, or no registry: the common case
	}
	return !t.lapsed.answering(addr) && t.view.vanished(ctx, addr, mark)
}

// registryFailed warns of a failed registry read at now: at the first
// failure, then every registryWarnEvery while they go on.
func (t *Task) registryFailed(err error, now time.Time) {
	t.regMu.Lock()
	defer t.regMu.Unlock()
	if t.regDown.IsZero() {
		t.regDown = now
	}
	if now.Sub(t.regWarned) < registryWarnEvery {
		return
	}
	t.regWarned = now
	t.log.Warn().Err(err).Dur("down_for", now.Sub(t.regDown)).
		Msg("gateway registry read failed; keeping the last one")
}

// registryRead says, after failures, that a registry read at now succeeded.
func (t *Task) registryRead(now time.Time) {
	t.regMu.Lock()
	defer t.regMu.Unlock()
	if t.regDown.IsZero() {
		return
	}
	t.log.Info().Dur("down_for", now.Sub(t.regDown)).Msg("gateway registry read again")
	t.regDown, t.regWarned = time.Time{}, time.Time{}
}
