package task

import (
	"context"
	"sync"
	"time"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
	"github.com/resonance-im/resonance/kitex_gen/pushrpc"
)

// lapsedProbeInterval is how often a gateway whose registration lapsed (see
// gatewayView.lapsed) is probed while it does not answer. A probe runs
// beside the pushes, which never wait for it, so a dead gateway costs one
// call every interval until the registry forgets it, not a timeout per
// push.
const lapsedProbeInterval = 5 * time.Second

// lapsedGateways tracks the gateways whose registration lapsed: a gateway
// that cannot reach the registry lapses while it still serves its devices,
// which would otherwise get their messages only at their next seq gap or
// resync. Each is probed with a Push to no connection, and pushed to like a
// live one while it answers. It is safe for concurrent use.
//
// Its lock is taken before the view's, which is taken before the gateway
// clients': a probe's outcome is recorded, and a dead gateway's client
// dropped, with no registry read completing meanwhile (see probed).
type lapsedGateways struct {
	view *gatewayView // nil without a registry

	mu sync.Mutex
	m  map[string]*lapsedGateway // by push address
}

type lapsedGateway struct {
	answering bool      // its last probe answered and no push or kick failed since
	probing   bool      // a probe is out
	dead      bool      // its last probe failed
	next      time.Time // no probe before
}

// probeClaim is a probe claimed by claimProbe.
type probeClaim struct {
	lg   *lapsedGateway // the entry it was claimed on
	read uint64         // the newest registry read then (gatewayView.newest)
}

func newLapsedGateways(view *gatewayView) *lapsedGateways {
	return &lapsedGateways{view: view, m: make(map[string]*lapsedGateway)}
}

// answering reports whether pushes go to addr although its registration
// lapsed.
func (l *lapsedGateways) answering(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	lg, ok := l.m[addr]
	return ok && lg.answering
}

// undecided reports whether no probe of addr answered or failed since it
// lapsed or since a call to it failed: a kick for it waits for one (see
// handleKick).
func (l *lapsedGateways) undecided(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	lg, ok := l.m[addr]
	return !ok || !lg.answering && !lg.dead
}

// busy reports whether a probe of addr is out or addr answers: its client is
// in use.
func (l *lapsedGateways) busy(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	lg, ok := l.m[addr]
	return ok && (lg.answering || lg.probing)
}

// claimProbe reports whether a probe of addr is due at now, and if so marks
// it out, sets the next one lapsedProbeInterval later, and returns the
// claim its outcome is recorded with.
func (l *lapsedGateways) claimProbe(addr string, now time.Time) (probeClaim, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lg, ok := l.m[addr]
	if !ok {
		lg = &lapsedGateway{}
		l.m[addr] = lg
	}
	if lg.answering || lg.probing || now.Before(lg.next) {
		return probeClaim{}, false
	}
	lg.probing, lg.next = true, now.Add(lapsedProbeInterval)
	return probeClaim{lg: lg, read: l.view.newest()}, true
}

// probed records the outcome of the probe of addr claimed as p, calling
// dead when it failed, and reports whether it recorded it. The outcome
// tells nothing of the gateway now when addr was forgotten since the claim
// (it registered again, or the registry forgot it) or a registry read since
// saw it live (the claim's own read included): it then only ends the
// probe. Recorded, the failure of a probe begun before the gateway
// registered again would drop the client of a live gateway. dead runs
// under l's lock and the view's; it must not block.
func (l *lapsedGateways) probed(addr string, p probeClaim, answered bool, dead func()) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m[addr] != p.lg {
		return false
	}
	p.lg.probing = false
	return l.view.unlessLiveSince(addr, p.read, func() {
		p.lg.answering, p.lg.dead = answered, !answered
		if !answered {
			dead()
		}
	})
}

// failed records a failed push or kick to addr and reports whether addr had
// been answering; it is probed again no sooner than lapsedProbeInterval
// later.
func (l *lapsedGateways) failed(addr string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	lg, ok := l.m[addr]
	if !ok || !lg.answering {
		return false
	}
	lg.answering, lg.next = false, now.Add(lapsedProbeInterval)
	return true
}

// answeringCount is how many lapsed gateways answer, and get pushes.
func (l *lapsedGateways) answeringCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, lg := range l.m {
		if lg.answering {
			n++
		}
	}
	return n
}

// retain forgets the addresses keep rejects: those no longer lapsed.
func (l *lapsedGateways) retain(keep func(addr string) bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for addr := range l.m {
		if !keep(addr) {
			delete(l.m, addr)
		}
	}
}

// probeLapsed starts a probe of addr, whose registration lapsed, unless one
// is out, addr answers, or the last one was less than lapsedProbeInterval
// ago. The probe runs with the batch calls of the gateway clients, which
// closeAll waits for.
func (t *Task) probeLapsed(ctx context.Context, addr string) {
	claim, ok := t.lapsed.claimProbe(addr, time.Now())
	if !ok {
		return
	}
	t.gateways.calls.Go(t.log, "task-probe-gateway", func() {
		err := t.probe(ctx, addr)
		// A failed probe drops the client without a word: readRegistry spoke
		// when the gateway vanished.
		dead := func() { t.gateways.drop(addr) }
		switch {
		case !t.lapsed.probed(addr, claim, err == nil, dead):
			t.log.Debug().Err(err).Str("gateway", addr).
				Msg("lapsed gateway probe outdated by a registry read; its result ignored")
		case err == nil:
			t.log.Info().Str("gateway", addr).
				Msg("gateway registration lapsed but it answers; pushing to it")
		default:
			t.log.Debug().Err(err).Str("gateway", addr).Msg("lapsed gateway probe failed")
		}
	})
}

// probe makes a Push call to no connection on addr, bounded by PushTimeout.
func (t *Task) probe(ctx context.Context, addr string) error {
	c, err := t.gateways.get(addr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, t.cfg.PushTimeout)
	defer cancel()
	frame := codec.EncodeFrame(protocol.Op_PUSH, 0, 0, &protocol.PushMsg{})
	_, err = c.push.Push(ctx, &pushrpc.PushReq{Frame: frame})
	return err
}

// lapsedCallFailed stops pushes and kicks to a lapsed gateway whose call (a
// push or a kick) failed with err, until a probe finds it answering again.
func (t *Task) lapsedCallFailed(addr string, err error) {
	if err != nil && t.lapsed.failed(addr, time.Now()) {
		t.log.Info().Err(err).Str("gateway", addr).
			Msg("lapsed gateway stopped answering; skipping it")
	}
}
