package task

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/internal/route"
	"github.com/resonance-im/resonance/kitex_gen/event"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Presence: logic publishes a PresenceEvent whenever a user's routes may have
// changed (login, disconnect). Task does not trust the event's direction:
// the first event for a user starts a check due one window later, later
// events before it are folded into it, and the check reads the user's real
// presence from the route table. Watchers are told only when it differs from
// the presence last announced (kept in the watch store, shared by task
// instances), so a connection flapping within the window tells nobody and a
// real change is told once.
//
// A notice's since_ms comes from the events' own times (their at_ms, set by
// logic when the route changed), not from the check: see presenceCheck.since.
// It is bounded by task's clock on both sides (at most maxPresenceLag before
// the event's receipt, never after the check), and never before the since_ms
// of the user's previous notice, whichever instance sent it: the watch store
// keeps it with the presence announced (route.Watches.SwapAnnounced).
const (
	// maxPendingPresence bounds the users with a check pending; events for
	// more users are dropped and counted.
	maxPendingPresence = 100000
	// maxTrackedOnline bounds the users this instance announced online and
	// re-checks (see PresenceRecheck).
	maxTrackedOnline = 100000
	// presenceBatch is how many users one route lookup checks.
	presenceBatch = 500
	// maxPresenceLag is how long before task received an event its at_ms
	// may date the change. Logic publishes as it changes the route, and
	// core NATS delivers within milliseconds or not at all, so an older
	// time is a logic host's clock running behind task's (or an event
	// replayed long after): it would tell watchers a change happened long
	// before it did.
	maxPresenceLag = 10 * time.Second
)

// presenceTracker holds the pending checks. It is safe for concurrent use.
type presenceTracker struct {
	window  time.Duration
	watches route.Watches

	// mu guards the maps below.
	mu      sync.Mutex
	pending map[int64]*presenceCheck
	// online are the users this instance last announced online: a route
	// that lapses (its gateway died) produces no event, so they are
	// checked again every PresenceRecheck.
	online map[int64]struct{}
}

func newPresenceTracker(window time.Duration, watches route.Watches) *presenceTracker {
	if watches == nil {
		return nil
	}
	return &presenceTracker{
		window:  window,
		watches: watches,
		pending: make(map[int64]*presenceCheck),
		online:  make(map[int64]struct{}),
	}
}

// presenceCheck is a pending check of one user's presence and the times of
// the events folded into it.
type presenceCheck struct {
	user int64
	due  time.Time
	// firstMs and lastMs are the earliest and latest at_ms of the events,
	// whatever order they arrived in (several logic instances publish);
	// 0 when none carried a time, as for a recheck.
	firstMs, lastMs int64
}

// add folds in an event stamped atMs and received at receivedMs; atMs <= 0
// is unknown, and one more than maxPresenceLag before receivedMs counts as
// that bound.
func (c *presenceCheck) add(atMs, receivedMs int64) {
	if atMs <= 0 {
		return
	}
	atMs = max(atMs, receivedMs-maxPresenceLag.Milliseconds())
	if c.firstMs == 0 || atMs < c.firstMs {
		c.firstMs = atMs
	}
	c.lastMs = max(c.lastMs, atMs)
}

// since returns the since_ms of a notice that the user is now online or
// not, checked at checkedMs. Each login and disconnect sends an event, so
// a user found offline went so with the last route removed: the latest
// event. A user found online came online at one of the logins of the
// window; events do not say which, and the first is taken, exact unless
// the user went off and on again within the window. Without an event time
// it is the check's. It is never after the check's: at_ms is another
// host's clock, and a change cannot have happened after task found it.
func (c *presenceCheck) since(online bool, checkedMs int64) int64 {
	switch {
	case c.firstMs == 0:
		return checkedMs
	case online:
		return min(c.firstMs, checkedMs)
	default:
		return min(c.lastMs, checkedMs)
	}
}

// observe schedules a check of user one window after now, unless one is
// pending, folds atMs into it and returns the outcome for the metrics.
func (p *presenceTracker) observe(user, atMs int64, now time.Time) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.pending[user]; ok {
		c.add(atMs, now.UnixMilli())
		return "coalesced"
	}
	if len(p.pending) >= maxPendingPresence {
		return "dropped"
	}
	c := &presenceCheck{user: user, due: now.Add(p.window)}
	c.add(atMs, now.UnixMilli())
	p.pending[user] = c
	return "received"
}

// due removes and returns the checks due at now.
func (p *presenceTracker) due(now time.Time) []*presenceCheck {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*presenceCheck
	for u, c := range p.pending {
		if !c.due.After(now) {
			out = append(out, c)
			delete(p.pending, u)
		}
	}
	return out
}

// retry schedules again, one window after now, the checks whose users are
// not in done (a lookup or swap that failed for them), keeping their events'
// times, folded into any check pending since.
func (p *presenceTracker) retry(checks []*presenceCheck, done map[int64]int64, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range checks {
		if _, ok := done[c.user]; ok {
			continue
		}
		if pc, ok := p.pending[c.user]; ok {
			pc.add(c.firstMs, now.UnixMilli())
			pc.add(c.lastMs, now.UnixMilli())
			continue
		}
		if len(p.pending) < maxPendingPresence {
			c.due = now.Add(p.window)
			p.pending[c.user] = c
		}
	}
}

// recheckOnline schedules a check of every user announced online.
func (p *presenceTracker) recheckOnline(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for u := range p.online {
		if _, ok := p.pending[u]; !ok && len(p.pending) < maxPendingPresence {
			p.pending[u] = &presenceCheck{user: u, due: now}
		}
	}
}

// track records the checked state of users for recheckOnline.
func (p *presenceTracker) track(online map[int64]bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for u, on := range online {
		if !on {
			delete(p.online, u)
		} else if len(p.online) < maxTrackedOnline {
			p.online[u] = struct{}{}
		}
	}
}

// onPresence decodes a PresenceEvent and schedules its check. It runs on the
// subscription's goroutine and never blocks.
func (t *Task) onPresence(msg *nats.Msg) {
	ev := event.NewPresenceEvent()
	if err := codec.ReadBody(msg.Data, ev); err != nil || ev.UserId <= 0 {
		t.ephMetrics.presenceOutcome("undecodable", 1)
		t.rare.Warn().Err(err).Int("bytes", len(msg.Data)).Msg("undecodable presence event")
		return
	}
	t.ephMetrics.presenceOutcome(t.presence.observe(ev.UserId, ev.AtMs, time.Now()), 1)
}

// runPresence runs the due checks until ctx is done, looking a few times
// per window, so a check runs between one and 1.25 windows after its first
// event.
func (t *Task) runPresence(ctx context.Context) {
	tick := time.NewTicker(max(t.cfg.PresenceWindow/4, 10*time.Millisecond))
	defer tick.Stop()
	var recheck <-chan time.Time
	if t.cfg.PresenceRecheck > 0 {
		r := time.NewTicker(t.cfg.PresenceRecheck)
		defer r.Stop()
		recheck = r.C
	}
	work := context.WithoutCancel(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-recheck:
			t.presence.recheckOnline(now)
		case now := <-tick.C:
			checks := t.presence.due(now)
			for len(checks) > 0 {
				n := min(len(checks), presenceBatch)
				t.checkPresence(work, checks[:n])
				checks = checks[n:]
			}
		}
	}
}

// checkPresence reads the presence of the users of checks and tells the
// watchers of those whose presence differs from the one last announced.
func (t *Task) checkPresence(ctx context.Context, checks []*presenceCheck) {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.PushTimeout)
	defer cancel()
	users := make([]int64, len(checks))
	byUser := make(map[int64]*presenceCheck, len(checks))
	for i, c := range checks {
		users[i] = c.user
		byUser[c.user] = c
	}
	routes, err := t.routes.Lookup(ctx, users)
	if err != nil {
		t.ephMetrics.presenceOutcome("error", len(users))
		t.rare.Warn().Err(err).Int("users", len(users)).Msg("presence lookup failed")
		t.presence.retry(checks, nil, time.Now())
		return
	}
	online := make(map[int64]bool, len(users))
	for _, u := range users {
		online[u] = false
	}
	for _, r := range routes {
		online[r.UserID] = true
	}
	checkedMs := time.Now().UnixMilli()
	states := make(map[int64]route.Presence, len(users))
	for u, on := range online {
		states[u] = route.Presence{Online: on, SinceMs: byUser[u].since(on, checkedMs)}
	}
	changed, err := t.presence.watches.SwapAnnounced(ctx, states)
	if err != nil {
		// The records swapped are announced all the same: no later swap
		// would find them different. The rest are checked again.
		t.ephMetrics.presenceOutcome("error", len(users)-len(changed))
		t.rare.Warn().Err(err).Int("users", len(users)).Int("swapped", len(changed)).
			Msg("presence swap failed")
		t.presence.retry(checks, changed, time.Now())
		for u, since := range changed {
			t.presence.track(map[int64]bool{u: online[u]})
			t.announce(ctx, &protocol.Presence{UserId: u, Online: online[u], SinceMs: since})
		}
		return
	}
	t.presence.track(online)
	t.ephMetrics.presenceOutcome("unchanged", len(users)-len(changed))
	t.ephMetrics.presenceOutcome("announced", len(changed))
	for u, since := range changed {
		t.announce(ctx, &protocol.Presence{UserId: u, Online: online[u], SinceMs: since})
	}
}

// announce queues NOTIFY{presence} for the watchers of p's user.
func (t *Task) announce(ctx context.Context, p *protocol.Presence) {
	watchers, err := t.presence.watches.Watchers(ctx, p.UserId)
	if err != nil {
		t.rare.Warn().Err(err).Int64("user", p.UserId).Msg("presence watchers lookup failed")
		return
	}
	t.log.Debug().Int64("user", p.UserId).Bool("online", p.Online).
		Int("watchers", len(watchers)).Msg("presence changed")
	// In slices, so a user with a crowd of watchers costs several bounded
	// route lookups spread over the workers, not one huge one.
	n := &protocol.Notify{Presence: p}
	for len(watchers) > 0 {
		k := min(len(watchers), presenceBatch)
		t.enqueueNotify(notifyJob{notify: n, recipients: watchers[:k]})
		watchers = watchers[k:]
	}
}
