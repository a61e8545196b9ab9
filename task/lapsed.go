package task

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

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

// lapsedLogQuiet is how long after a lapsed gateway's change to answering
// (or from it) was logged at info its next of that kind is logged at
// debug. A gateway that flaps, answering each probe and then failing a
// push, changes both ways every lapsedProbeInterval.
const lapsedLogQuiet = time.Minute

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
	now  func() time.Time
	// answeringGauge counts the gateways answering, set under mu at each
	// change, so that no older count overwrites a newer one; nil: none.
	answeringGauge prometheus.Gauge

	mu sync.Mutex
	m  map[string]*lapsedGateway // by push address
}

type lapsedGateway struct {
	answering bool      // its last probe answered and no push or kick failed since
	probing   bool      // a probe is out
	dead      bool      // its last probe failed
	next      time.Time // no probe before
	// decided is the read of the claim (probeClaim.read) whose outcome set
	// answering or dead: a read from it on that saw the gateway live makes
	// dead tell of an earlier life (see undecided).
	decided uint64

	// The logging of its changes to answering and from it (see noteChange):
	said          bool      // the last logged at info was to answering
	saidAnswering time.Time // when one to answering last was logged at info
	saidStopped   time.Time // when one from answering last was
	muted         int       // changes logged at debug since the last at info
}

// lapsedChange says how to log a lapsed gateway's change to answering or
// from it.
type lapsedChange struct {
	loud  bool // at info; at debug otherwise
	muted int  // the changes logged at debug since the last at info
}

// noteChange records a change of lg to answering (or from it) at now and
// returns how to log it: at info unless the last change logged at info was
// of its kind (those between were not), or one of its kind was logged at
// info less than lapsedLogQuiet ago. The last line at info of a flapping
// gateway may name a state it has left since; the lapsed_answering gauge
// counts those answering now. l.mu is held.
func (lg *lapsedGateway) noteChange(answering bool, now time.Time) lapsedChange {
	at := &lg.saidStopped
	if answering {
		at = &lg.saidAnswering
	}
	if lg.said == answering || now.Sub(*at) < lapsedLogQuiet {
		lg.muted++
		return lapsedChange{}
	}
	c := lapsedChange{loud: true, muted: lg.muted}
	lg.said, *at, lg.muted = answering, now, 0
	return c
}

// probeClaim is a probe claimed by claimProbe.
type probeClaim struct {
	lg   *lapsedGateway // the entry it was claimed on
	read uint64         // the newest registry read then (gatewayView.newest)
}

// newLapsedGateways tracks the lapsed gateways of view, counting those
// answering in answering (nil: not counted). Without a registry none lapse,
// and the gauge is left unset, as are the registry's others.
func newLapsedGateways(view *gatewayView, answering prometheus.Gauge) *lapsedGateways {
	if answering != nil && view != nil {
		answering.Set(0)
	}
	return &lapsedGateways{view: view, now: time.Now, answeringGauge: answering,
		m: make(map[string]*lapsedGateway)}
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
// handleKick). A failed probe no longer decides once a registry read has
// seen addr live since: the gateway registered again, and this lapse is
// another. The entry outlives that life when only reads made for pushes saw
// it (readRegistry forgets the entries of live gateways).
func (l *lapsedGateways) undecided(addr string) bool {
	_, undecided := l.verdict(addr)
	return undecided
}

// verdict reports together whether addr answers (see answering) and whether
// it is undecided: a probe may answer between two calls.
func (l *lapsedGateways) verdict(addr string) (answering, undecided bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lg, ok := l.m[addr]
	switch {
	case !ok:
		return false, true
	case lg.answering:
		return true, false
	}
	return false, !lg.dead || l.view.liveSince(addr, lg.decided)
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

// probed records the outcome at now of the probe of addr claimed as p,
// calling dead when it failed; it reports whether it recorded it, and how
// to log a change to answering. The outcome tells nothing of the gateway
// now when addr was forgotten since the claim (it registered again, or the
// registry forgot it) or a registry read since saw it live (the claim's own
// read included): it then only ends the probe. Recorded, the failure of a
// probe begun before the gateway registered again would drop the client of
// a live gateway. dead runs under l's lock and the view's; it must not
// block.
func (l *lapsedGateways) probed(addr string, p probeClaim, answered bool, now time.Time,
	dead func()) (bool, lapsedChange) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m[addr] != p.lg {
		return false, lapsedChange{}
	}
	p.lg.probing = false
	var c lapsedChange
	recorded := l.view.unlessLiveSince(addr, p.read, func() {
		p.lg.answering, p.lg.dead, p.lg.decided = answered, !answered, p.read
		if answered {
			c = p.lg.noteChange(true, now)
		} else {
			dead()
		}
	})
	l.countAnsweringLocked()
	return recorded, c
}

// failed records a failed push or kick to addr at now and reports whether
// addr had been answering, and how to log its change from answering; it is
// probed again no sooner than lapsedProbeInterval later.
func (l *lapsedGateways) failed(addr string, now time.Time) (lapsedChange, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lg, ok := l.m[addr]
	if !ok || !lg.answering {
		return lapsedChange{}, false
	}
	lg.answering, lg.next = false, now.Add(lapsedProbeInterval)
	l.countAnsweringLocked()
	return lg.noteChange(false, now), true
}

// tracked reports whether addr is tracked as lapsed.
func (l *lapsedGateways) tracked(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.m[addr]
	return ok
}

// countAnsweringLocked sets the gauge of the gateways answering. l.mu is
// held.
func (l *lapsedGateways) countAnsweringLocked() {
	if l.answeringGauge != nil {
		l.answeringGauge.Set(float64(l.answeringLocked()))
	}
}

// answeringLocked is how many lapsed gateways answer, and get pushes. l.mu
// is held.
func (l *lapsedGateways) answeringLocked() int {
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
	l.countAnsweringLocked()
}

// probeLapsed starts a probe of addr, whose registration lapsed, unless one
// is out, addr answers, or the last one was less than lapsedProbeInterval
// ago. The probe runs with the batch calls of the gateway clients, which
// closeAll waits for.
func (t *Task) probeLapsed(ctx context.Context, addr string) {
	claim, ok := t.lapsed.claimProbe(addr, t.lapsed.now())
	if !ok {
		return
	}
	t.gateways.calls.Go(t.log, "task-probe-gateway", func() {
		err := t.probe(ctx, addr)
		// A failed probe drops the client without a word: readRegistry spoke
		// when the gateway vanished.
		dead := func() { t.gateways.drop(addr) }
		recorded, c := t.lapsed.probed(addr, claim, err == nil, t.lapsed.now(), dead)
		switch {
		case !recorded:
			t.log.Debug().Err(err).Str("gateway", addr).
				Msg("lapsed gateway probe outdated by a registry read; its result ignored")
		case err == nil:
			t.lapsedLog(c).Str("gateway", addr).
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
	if err == nil {
		return
	}
	if c, ok := t.lapsed.failed(addr, t.lapsed.now()); ok {
		t.lapsedLog(c).Err(err).Str("gateway", addr).
			Msg("lapsed gateway stopped answering; skipping it")
	}
}

// lapsedLog starts the log line of a lapsed gateway's change c.
func (t *Task) lapsedLog(c lapsedChange) *zerolog.Event {
	if !c.loud {
		return t.log.Debug()
	}
	e := t.log.Info()
	if c.muted > 0 {
		e = e.Int("changes_unlogged", c.muted)
	}
	return e
}
