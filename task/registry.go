package task

import (
	"context"
	"time"

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

func (t *Task) readRegistry(ctx context.Context) {
	snap, err := t.view.refresh(ctx)
	if err != nil {
		if ctx.Err() == nil {
			t.rare.Warn().Err(err).Msg("gateway registry read failed; keeping the last one")
		}
		return
	}
	t.metrics.registry.WithLabelValues("live").Set(float64(len(snap.Live)))
	t.metrics.registry.WithLabelValues("vanished").Set(float64(len(snap.Gone)))
	for addr, gone := range snap.Gone {
		if t.gateways.drop(addr) {
			t.log.Info().Str("gateway", addr).Time("gone_at", gone).
				Msg("gateway vanished; its push client dropped")
		}
	}
}

// skipVanished removes from targets the gateways the registry says are
// gone, judged by a registry read begun after mark (see gatewayView). Their
// connections closed with them: the message is stored and those devices
// catch up when they reconnect elsewhere, whereas a call would wait for a
// connect timeout. A gateway the registry never heard of stays: it may be
// one that does not register.
//
// TODO: a gateway that is alive but could not refresh its registration for
// its TTL (registry unreachable from it) is skipped too, and its devices get
// those messages only at their next seq gap or resync (a minute); trying a
// lapsed gateway once with a short timeout would close that window.
func (t *Task) skipVanished(ctx context.Context, targets map[string][]*pushrpc.Target,
	mark uint64, msgID int64) {
	for addr, ts := range targets {
		if !t.view.vanished(ctx, addr, mark) {
			continue
		}
		delete(targets, addr)
		t.metrics.skipped.Inc()
		t.log.Debug().Str("gateway", addr).Int64("msg", msgID).Int("targets", len(ts)).
			Msg("push skipped: gateway vanished")
	}
}
