package task

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/internal/route"
	"github.com/resonance-im/resonance/internal/testwait"
	"github.com/resonance-im/resonance/kitex_gen/event"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// publishCore sends ev on subject over core NATS, as logic does.
func (en *env) publishCore(t *testing.T, subject string, ev interface {
	BLength() int
	FastWrite([]byte) int
}) {
	t.Helper()
	buf := make([]byte, ev.BLength())
	buf = buf[:ev.FastWrite(buf)]
	if err := en.js.Conn().Publish(subject, buf); err != nil {
		t.Fatal(err)
	}
	if err := en.js.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
}

// decodeNotify decodes a pushed frame back to its Notify.
func decodeNotify(t *testing.T, frame []byte) *protocol.Notify {
	t.Helper()
	h, body, n, err := codec.Decoder{}.Decode(frame)
	if err != nil || n != len(frame) {
		t.Fatalf("decode frame: n=%d of %d, err=%v", n, len(frame), err)
	}
	if h.Op != protocol.Op_NOTIFY || h.RequestID != 0 {
		t.Fatalf("header = %+v, want NOTIFY with request id 0", h)
	}
	msg := protocol.NewNotify()
	if err := codec.ReadBody(body, msg); err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestNotify_FanOutOneCallPerGateway(t *testing.T) {
	en := newEnv(t)
	a, b := startGateway(t, gatewayMode{}), startGateway(t, gatewayMode{})
	origin := route.Route{UserID: 1, DeviceID: "phone", Gateway: a.addr, ConnID: 1}
	en.putRoute(t, origin)
	en.putRoute(t, route.Route{UserID: 1, DeviceID: "laptop", Gateway: a.addr, ConnID: 2})
	en.putRoute(t, route.Route{UserID: 2, DeviceID: "phone", Gateway: a.addr, ConnID: 3})
	en.putRoute(t, route.Route{UserID: 2, DeviceID: "laptop", Gateway: b.addr, ConnID: 4})
	startTask(t, en, testConfig(), nil)

	read := &protocol.ReadUpdate{ConvId: "p2p:1:2", UserId: 1, ReadSeq: 7}
	en.publishCore(t, en.names.NotifySubject(), &event.NotifyEvent{
		Notify: &protocol.Notify{Read_: read}, Recipients: []int64{1, 2},
		OriginGateway: origin.Gateway, OriginConnId: origin.ConnID,
	})

	testwait.For(t, 5*time.Second, "both gateways pushed", func() bool {
		return len(a.callsCopy()) == 1 && len(b.callsCopy()) == 1
	})
	callA, callB := a.callsCopy()[0], b.callsCopy()[0]
	slices.Sort(callA.conns)
	if !slices.Equal(callA.conns, []int64{2, 3}) || !slices.Equal(callB.conns, []int64{4}) {
		t.Fatalf("targets = %v and %v, want [2 3] and [4] (origin conn 1 left out)",
			callA.conns, callB.conns)
	}
	if got := decodeNotify(t, callB.frame).Read_; got == nil || *got != *read {
		t.Fatalf("notify read = %+v, want %+v", got, read)
	}
	stream, err := en.js.Stream(context.Background(), en.names.Stream)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := stream.Info(context.Background()); err != nil || info.State.Msgs != 0 {
		t.Fatalf("stream info %+v (%v), want no events: notifies use core NATS", info, err)
	}
}

func TestNotify_UndecodableDropped(t *testing.T) {
	en := newEnv(t)
	a := startGateway(t, gatewayMode{})
	en.putRoute(t, route.Route{UserID: 2, DeviceID: "phone", Gateway: a.addr, ConnID: 3})
	startTask(t, en, testConfig(), nil)
	if err := en.js.Conn().Publish(en.names.NotifySubject(), []byte{0xff, 0x01}); err != nil {
		t.Fatal(err)
	}
	en.publishCore(t, en.names.NotifySubject(), &event.NotifyEvent{
		Notify: &protocol.Notify{Typing: &protocol.TypingUpdate{ConvId: "p2p:1:2", UserId: 1,
			Typing: true}}, Recipients: []int64{2},
	})
	testwait.For(t, 5*time.Second, "the good event pushed", func() bool {
		return len(a.callsCopy()) == 1
	})
}

// presenceEnv is a task with a watch store where user 10 watches user 20,
// whose only connection is conn 10 of one stub gateway.
type presenceEnv struct {
	*env
	gw      *stubGateway
	watches *route.MemoryWatches
	task    *Task
}

func startPresence(t *testing.T, cfg Config, routes *route.Memory) *presenceEnv {
	t.Helper()
	return startPresenceWith(t, cfg, routes, nil)
}

// startPresenceWith is startPresence with task's watch store wrapped by
// wrap (nil: the memory store as is).
func startPresenceWith(t *testing.T, cfg Config, routes *route.Memory,
	wrap func(route.Watches) route.Watches) *presenceEnv {
	t.Helper()
	en := newEnv(t)
	if routes != nil {
		en.routes = routes
	}
	pe := &presenceEnv{env: en, gw: startGateway(t, gatewayMode{}),
		watches: route.NewMemoryWatches(0)}
	en.putRoute(t, route.Route{UserID: 10, DeviceID: "phone", Gateway: pe.gw.addr, ConnID: 10})
	if err := pe.watches.SetWatched(context.Background(), 10, []int64{20}); err != nil {
		t.Fatal(err)
	}
	var watches route.Watches = pe.watches
	if wrap != nil {
		watches = wrap(watches)
	}
	pe.task = startTaskDeps(t, cfg, Deps{Log: zerolog.Nop(), JS: en.js, MQ: en.names,
		Routes: en.routes, Watches: watches}).task
	return pe
}

// settle waits until task has taken in events presence events in all,
// checked every user they made due, and the watcher has the notice of each
// change announced: nothing more shows without another event or a
// recheck (tests that call it switch rechecks off).
func (pe *presenceEnv) settle(t *testing.T, events int) {
	t.Helper()
	m := pe.task.ephMetrics.presence
	count := func(outcome string) int {
		return int(testutil.ToFloat64(m.WithLabelValues(outcome)))
	}
	testwait.For(t, 10*time.Second, fmt.Sprintf("%d presence events checked", events),
		func() bool {
			// Each received event began a check of one user, which ends in
			// one of the three outcomes; notices are pushed after.
			received := count("received")
			return received+count("coalesced") == events &&
				count("announced")+count("unchanged")+count("error") == received &&
				len(pe.gw.framesOf(10)) >= count("announced")
		})
}

// set puts or deletes user 20's route and publishes the event logic would.
func (pe *presenceEnv) set(t *testing.T, online bool) {
	t.Helper()
	pe.setDevice(t, "phone", online, time.Now().UnixMilli())
}

// setDevice puts or deletes the route of user 20's device and publishes the
// event logic would, stamped atMs.
func (pe *presenceEnv) setDevice(t *testing.T, device string, online bool, atMs int64) {
	t.Helper()
	conn := int64(20)
	if device != "phone" {
		conn = 21
	}
	r := route.Route{UserID: 20, DeviceID: device, Gateway: pe.gw.addr, ConnID: conn}
	if online {
		pe.putRoute(t, r)
	} else if err := pe.routes.Delete(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	pe.publishCore(t, pe.names.PresenceSubject(), &event.PresenceEvent{UserId: 20, AtMs: atMs})
}

// notices returns the presence notifications the watcher received.
func (pe *presenceEnv) notices(t *testing.T) []*protocol.Presence {
	t.Helper()
	var out []*protocol.Presence
	for _, f := range pe.gw.framesOf(10) {
		p := decodeNotify(t, f).Presence
		if p == nil || p.UserId != 20 || p.SinceMs == 0 {
			t.Fatalf("notify presence = %+v, want user 20 with a time", p)
		}
		out = append(out, p)
	}
	return out
}

// announced returns the states of the presence notifications the watcher
// received.
func (pe *presenceEnv) announced(t *testing.T) []bool {
	t.Helper()
	var out []bool
	for _, p := range pe.notices(t) {
		out = append(out, p.Online)
	}
	return out
}

// A notice's since_ms is the time logic saw the change, carried by its
// event, not the time task checked at the end of the window.
func TestPresence_SinceIsTheChangeTime(t *testing.T) {
	cfg := testConfig()
	cfg.PresenceWindow = 50 * time.Millisecond
	cfg.PresenceRecheck = -1
	pe := startPresence(t, cfg, nil)
	// Times in the past, so that no check time can pass for them, but
	// within maxPresenceLag of their receipt.
	base := time.Now().Add(-maxPresenceLag / 2).UnixMilli()

	pe.setDevice(t, "phone", true, base)
	testwait.For(t, 5*time.Second, "online announced", func() bool {
		return len(pe.gw.framesOf(10)) >= 1
	})
	pe.setDevice(t, "laptop", true, base+1000)
	// Offline once both devices are gone: since the last disconnect,
	// whether or not both events fall in one window.
	pe.setDevice(t, "laptop", false, base+2000)
	pe.setDevice(t, "phone", false, base+3000)
	testwait.For(t, 5*time.Second, "offline announced", func() bool {
		return len(pe.gw.framesOf(10)) >= 2
	})

	got := pe.notices(t)
	want := []*protocol.Presence{{UserId: 20, Online: true, SinceMs: base},
		{UserId: 20, Online: false, SinceMs: base + 3000}}
	if len(got) != len(want) {
		t.Fatalf("notices %v, want %v", got, want)
	}
	for i := range want {
		if *got[i] != *want[i] {
			t.Errorf("notice %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestPresence_SinceFromEventTimes(t *testing.T) {
	p := newPresenceTracker(time.Second, route.NewMemoryWatches(0))
	now := time.Now()
	base := now.Add(-5 * time.Second).UnixMilli()
	// Out of order, as from two logic instances, and one without a time.
	for _, at := range []int64{base + 2000, base + 1000, 0, base + 3000} {
		p.observe(20, at, now)
	}
	p.observe(30, 0, now)
	p.online[40] = struct{}{}
	p.recheckOnline(now)
	// One from a logic host whose clock runs a day behind.
	p.observe(50, now.Add(-24*time.Hour).UnixMilli(), now)

	checks := p.due(now.Add(time.Second))
	checkedMs := base + 9000
	tests := []struct {
		user      int64
		online    bool
		wantSince int64
	}{
		{user: 20, online: true, wantSince: base + 1000},
		{user: 20, online: false, wantSince: base + 3000},
		{user: 30, online: true, wantSince: checkedMs},  // no event time
		{user: 40, online: false, wantSince: checkedMs}, // a recheck
		{user: 50, online: true, wantSince: now.Add(-maxPresenceLag).UnixMilli()},
	}
	if len(checks) != 4 {
		t.Fatalf("%d checks due, want 4", len(checks))
	}
	byUser := map[int64]*presenceCheck{}
	for _, c := range checks {
		byUser[c.user] = c
	}
	for _, tc := range tests {
		if got := byUser[tc.user].since(tc.online, checkedMs); got != tc.wantSince {
			t.Errorf("user %d online %v: since %d, want %d", tc.user, tc.online, got,
				tc.wantSince)
		}
	}
}

// An event stamped ahead of task's clock, as by a logic host whose clock
// runs fast, does not date a notice after the check that found the change:
// a watcher would read a user online or offline since a time to come.
func TestPresence_SinceNeverAfterTheCheck(t *testing.T) {
	cfg := testConfig()
	cfg.PresenceWindow = 50 * time.Millisecond
	cfg.PresenceRecheck = -1
	pe := startPresence(t, cfg, nil)
	ahead := time.Now().Add(time.Hour).UnixMilli()

	pe.setDevice(t, "phone", true, ahead)
	testwait.For(t, 5*time.Second, "online announced", func() bool {
		return len(pe.gw.framesOf(10)) >= 1
	})
	pe.setDevice(t, "phone", false, ahead+1000)
	testwait.For(t, 5*time.Second, "offline announced", func() bool {
		return len(pe.gw.framesOf(10)) >= 2
	})
	seen := time.Now().UnixMilli()

	for i, p := range pe.notices(t) {
		if p.SinceMs > seen {
			t.Errorf("notice %d = %+v: since %d ms after it was received", i, p, p.SinceMs-seen)
		}
	}
}

// A notice never dates its state before the one it replaces: the new state
// began after the old one did. Here the disconnect's event carries an
// earlier time than the login's, as a redelivered event or a logic host
// whose clock lags another's would; two task instances share the rule
// through the watch store.
func TestPresence_SinceNeverBeforeTheLastNotice(t *testing.T) {
	cfg := testConfig()
	cfg.PresenceWindow = 50 * time.Millisecond
	cfg.PresenceRecheck = -1
	pe := startPresence(t, cfg, nil)
	at := time.Now().Add(-2 * time.Second).UnixMilli()

	pe.setDevice(t, "phone", true, at+1000)
	testwait.For(t, 5*time.Second, "online announced", func() bool {
		return len(pe.gw.framesOf(10)) >= 1
	})
	pe.setDevice(t, "phone", false, at)
	testwait.For(t, 5*time.Second, "offline announced", func() bool {
		return len(pe.gw.framesOf(10)) >= 2
	})

	got := pe.notices(t)
	if len(got) != 2 || got[1].SinceMs < got[0].SinceMs {
		t.Fatalf("notices %v: the second dates its state before the first's", got)
	}
}

// An event stamped long before task received it, as by a logic host whose
// clock runs slow, dates a notice no earlier than maxPresenceLag before
// its receipt: a watcher would read a user offline since last year.
func TestPresence_SinceNotLongBeforeTheEvent(t *testing.T) {
	cfg := testConfig()
	cfg.PresenceWindow = 50 * time.Millisecond
	cfg.PresenceRecheck = -1
	pe := startPresence(t, cfg, nil)
	sent := time.Now()

	pe.setDevice(t, "phone", true, sent.Add(-time.Hour).UnixMilli())
	testwait.For(t, 5*time.Second, "online announced", func() bool {
		return len(pe.gw.framesOf(10)) >= 1
	})
	floor := sent.Add(-maxPresenceLag).UnixMilli()
	if p := pe.notices(t)[0]; p.SinceMs < floor {
		t.Fatalf("notice %+v: since %v before the event was sent, want %v at most", p,
			time.Duration(sent.UnixMilli()-p.SinceMs)*time.Millisecond, maxPresenceLag)
	}
}

func TestPresence_FlappingCoalescedRealChangeOnce(t *testing.T) {
	cfg := testConfig()
	// Long enough that eleven publishes fit in one window on a busy machine.
	cfg.PresenceWindow = time.Second
	cfg.PresenceRecheck = -1
	pe := startPresence(t, cfg, nil)
	events := 0
	set := func(online bool) {
		pe.set(t, online)
		events++
	}

	// Ten flaps ending online, all within one window: one announcement,
	// online.
	for i := range 10 {
		set(i%2 == 0)
	}
	set(true)
	pe.settle(t, events)
	if got := pe.announced(t); !slices.Equal(got, []bool{true}) {
		t.Fatalf("after flapping: announced %v, want [true]", got)
	}

	// Flapping that ends where it began announces nothing.
	for i := range 10 {
		set(i%2 == 1)
	}
	pe.settle(t, events)
	if got := pe.announced(t); !slices.Equal(got, []bool{true}) {
		t.Fatalf("after a net-zero flap: announced %v, want [true]", got)
	}

	// A real change: exactly one announcement.
	set(false)
	pe.settle(t, events)
	if got := pe.announced(t); !slices.Equal(got, []bool{true, false}) {
		t.Fatalf("after going offline: announced %v, want [true false]", got)
	}
}

func TestPresence_LapsedRouteAnnouncedOffline(t *testing.T) {
	cfg := testConfig()
	cfg.PresenceWindow = 50 * time.Millisecond
	cfg.PresenceRecheck = 100 * time.Millisecond
	// Routes of user 20 lapse unrenewed, as when its gateway dies; the
	// watcher's route is renewed below.
	routes := route.NewMemory(1500 * time.Millisecond)
	pe := startPresence(t, cfg, routes)
	// The watcher's route, put before task started, is put afresh: a
	// slow start (32 partition consumers, a loaded machine) could let it
	// lapse before the announcement, which then reaches no one.
	watcher := route.Route{UserID: 10, DeviceID: "phone", Gateway: pe.gw.addr, ConnID: 10}
	pe.putRoute(t, watcher)
	pe.set(t, true)
	testwait.For(t, 5*time.Second, "online announced", func() bool {
		_ = routes.Renew(context.Background(), []route.Route{watcher})
		return len(pe.gw.framesOf(10)) >= 1
	})
	testwait.For(t, 5*time.Second, "lapsed route announced offline", func() bool {
		_ = routes.Renew(context.Background(), []route.Route{watcher})
		return len(pe.gw.framesOf(10)) >= 2
	})
	if got := pe.announced(t); !slices.Equal(got, []bool{true, false}) {
		t.Fatalf("announced %v, want [true false]", got)
	}
}

// failingSwaps is a watch store whose first swaps fail: with partial set,
// after swapping every record (as a Redis pipeline whose other calls
// failed); otherwise before swapping any (as a Redis that is down).
type failingSwaps struct {
	route.Watches
	partial bool
	left    atomic.Int32 // swaps still to fail
}

func (f *failingSwaps) SwapAnnounced(ctx context.Context,
	states map[int64]route.Presence) (map[int64]int64, error) {
	if f.left.Add(-1) < 0 {
		return f.Watches.SwapAnnounced(ctx, states)
	}
	if !f.partial {
		return nil, errors.New("redis down")
	}
	changed, err := f.Watches.SwapAnnounced(ctx, states)
	if err != nil {
		return nil, err
	}
	return changed, errors.New("another user's call failed")
}

// A swap that failed is not the end of a change: the records it swapped
// are announced (no later swap would find them different), and the users
// it did not swap are checked again.
func TestPresence_AnnouncedDespiteFailedSwap(t *testing.T) {
	for _, partial := range []bool{true, false} {
		t.Run(fmt.Sprintf("partial=%v", partial), func(t *testing.T) {
			cfg := testConfig()
			cfg.PresenceWindow = 50 * time.Millisecond
			cfg.PresenceRecheck = -1 // only the failed check's own retry may announce
			f := &failingSwaps{partial: partial}
			f.left.Store(1)
			pe := startPresenceWith(t, cfg, nil, func(w route.Watches) route.Watches {
				f.Watches = w
				return f
			})
			pe.set(t, true)
			testwait.For(t, 5*time.Second, "online announced after a failed swap", func() bool {
				return len(pe.gw.framesOf(10)) >= 1
			})
			if got := pe.announced(t); !slices.Equal(got, []bool{true}) {
				t.Fatalf("announced %v, want [true]", got)
			}
		})
	}
}
