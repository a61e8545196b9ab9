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
const (
	// maxPendingPresence bounds the users with a check pending; events for
	// more users are dropped and counted.
	maxPendingPresence = 100000
	// maxTrackedOnline bounds the users this instance announced online and
	// re-checks (see PresenceRecheck).
	maxTrackedOnline = 100000
	// presenceBatch is how many users one route lookup checks.
	presenceBatch = 500
)

// presenceTracker holds the pending checks. It is safe for concurrent use.
type presenceTracker struct {
	window  time.Duration
	watches route.Watches

	// mu guards the maps below.
	mu      sync.Mutex
	pending map[int64]time.Time // user -> when its check is due
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
		pending: make(map[int64]time.Time),
		online:  make(map[int64]struct{}),
	}
}

// observe schedules a check of user one window after now, unless one is
// pending, and returns the outcome for the metrics.
func (p *presenceTracker) observe(user int64, now time.Time) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.pending[user]; ok {
		return "coalesced"
	}
	if len(p.pending) >= maxPendingPresence {
		return "dropped"
	}
	p.pending[user] = now.Add(p.window)
	return "received"
}

// due removes and returns the users whose check is due at now.
func (p *presenceTracker) due(now time.Time) []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []int64
	for u, at := range p.pending {
		if !at.After(now) {
			out = append(out, u)
			delete(p.pending, u)
		}
	}
	return out
}

// recheckOnline schedules a check of every user announced online.
func (p *presenceTracker) recheckOnline(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for u := range p.online {
		if _, ok := p.pending[u]; !ok && len(p.pending) < maxPendingPresence {
			p.pending[u] = now
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
	t.ephMetrics.presenceOutcome(t.presence.observe(ev.UserId, time.Now()), 1)
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
			users := t.presence.due(now)
			for len(users) > 0 {
				n := min(len(users), presenceBatch)
				t.checkPresence(work, users[:n])
				users = users[n:]
			}
		}
	}
}

// checkPresence reads the presence of users and tells the watchers of those
// whose presence differs from the one last announced.
func (t *Task) checkPresence(ctx context.Context, users []int64) {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.PushTimeout)
	defer cancel()
	routes, err := t.routes.Lookup(ctx, users)
	if err != nil {
		t.ephMetrics.presenceOutcome("error", len(users))
		t.rare.Warn().Err(err).Int("users", len(users)).Msg("presence lookup failed")
		return
	}
	online := make(map[int64]bool, len(users))
	for _, u := range users {
		online[u] = false
	}
	for _, r := range routes {
		online[r.UserID] = true
	}
	changed, err := t.presence.watches.SwapAnnounced(ctx, online)
	if err != nil {
		t.ephMetrics.presenceOutcome("error", len(users))
		t.rare.Warn().Err(err).Int("users", len(users)).Msg("presence swap failed")
		return
	}
	t.presence.track(online)
	t.ephMetrics.presenceOutcome("unchanged", len(users)-len(changed))
	t.ephMetrics.presenceOutcome("announced", len(changed))
	at := time.Now().UnixMilli()
	for _, u := range changed {
		t.announce(ctx, &protocol.Presence{UserId: u, Online: online[u], SinceMs: at})
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
