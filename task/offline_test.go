package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudwego/kitex/client/callopt"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/internal/route"
	"github.com/resonance-im/resonance/internal/syncbuf"
	"github.com/resonance-im/resonance/internal/testwait"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

const testWebhookSecret = "webhook-test-secret"

// fakeLogic answers OfflineTargets from a table of push tokens, as logic
// does: devices with a token that are not online, the sender left out.
type fakeLogic struct {
	mu     sync.Mutex
	tokens map[deviceKey]string
	muted  map[int64]bool // user muted every conversation
	dnd    map[int64]bool
	calls  int
}

func newFakeLogic() *fakeLogic {
	return &fakeLogic{tokens: map[deviceKey]string{}, muted: map[int64]bool{},
		dnd: map[int64]bool{}}
}

// badgeOf is the fake's unread count: the seq of newEvent's message, read
// back from its send time, as if nothing had been read.
func badgeOf(req *logicrpc.OfflineTargetsReq) int32 {
	return int32(req.AtMs - 1700000000000)
}

func (f *fakeLogic) setToken(user int64, device, token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens[deviceKey{user, device}] = token
}

func (f *fakeLogic) OfflineTargets(_ context.Context, req *logicrpc.OfflineTargetsReq,
	_ ...callopt.Option) (*logicrpc.OfflineTargetsResp, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	online := map[deviceKey]bool{}
	for _, d := range req.Online {
		online[deviceKey{d.UserId, d.DeviceId}] = true
	}
	resp := &logicrpc.OfflineTargetsResp{SenderName: fmt.Sprintf("user %d", req.SenderId)}
	for _, u := range req.Recipients {
		if u == req.SenderId {
			continue
		}
		for k, tok := range f.tokens {
			if k.user != u || online[k] {
				continue
			}
			resp.Targets = append(resp.Targets, &logicrpc.OfflineTarget{UserId: u,
				DeviceId: k.device, Platform: protocol.PushPlatform_FCM, Token: tok,
				Badge: badgeOf(req), Muted: f.muted[u], Dnd: f.dnd[u],
				Mentioned: slices.Contains(req.Mentioned, u)})
		}
	}
	return resp, nil
}

// receiver is a webhook endpoint started by the test. It checks every
// call's signature and records the notifications.
type receiver struct {
	url      string
	calls    atomic.Int64  // every call, failed ones included
	fail     atomic.Int64  // answer 500 to this many more calls
	hang     chan struct{} // when set, calls wait on it (a hung receiver)
	badSigns atomic.Int64

	mu    sync.Mutex
	notes []Notification
}

func startReceiver(t *testing.T, hang bool) *receiver {
	t.Helper()
	r := &receiver{}
	if hang {
		r.hang = make(chan struct{})
	}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(func() {
		if r.hang != nil {
			close(r.hang)
		}
		srv.Close()
	})
	r.url = srv.URL + "/notify"
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	r.calls.Add(1)
	if r.hang != nil {
		select {
		case <-r.hang:
		case <-req.Context().Done():
		}
		return
	}
	body, _ := io.ReadAll(req.Body)
	if !Verify([]byte(testWebhookSecret), req.Header.Get(HeaderTimestamp), body,
		req.Header.Get(HeaderSignature)) {
		r.badSigns.Add(1)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if r.fail.Add(-1) >= 0 {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	var n Notification
	if err := json.Unmarshal(body, &n); err != nil || n.ID != req.Header.Get(HeaderID) {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.notes = append(r.notes, n)
	r.mu.Unlock()
}

func (r *receiver) got() []Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.notes)
}

// notifyConfig is testConfig with notifications to rcv.
func notifyConfig(rcv *receiver, window time.Duration) Config {
	cfg := testConfig()
	cfg.Notify = NotifyConfig{WebhookURL: rcv.url, Secret: testWebhookSecret,
		Timeout: 500 * time.Millisecond, Attempts: 3, RetryBase: 20 * time.Millisecond,
		RetryMax: 50 * time.Millisecond, Window: window}
	return cfg
}

// startNotifyTask starts a task with notifications answered by lg, and
// removes the notified bucket at cleanup.
func startNotifyTask(t *testing.T, en *env, cfg Config, lg OfflineLister) *runningTask {
	t.Helper()
	t.Cleanup(func() {
		err := en.js.DeleteKeyValue(context.Background(), notifiedBucket(en.names))
		if err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
			t.Errorf("delete notified bucket: %v", err)
		}
	})
	return startTaskDeps(t, cfg, Deps{Log: zerolog.Nop(), JS: en.js, MQ: en.names,
		Routes: en.routes, Logic: lg})
}

// notifySettled reports whether the notification consumer acked everything.
func (en *env) notifySettled(t *testing.T) func() bool {
	return func() bool {
		return en.durableSettled(t, NotifyConsumer(en.names.Consumer)) && en.consumerSettled(t)
	}
}

// twoUsers sets up alice (1, online on her phone, sending) and bob (2)
// with an online laptop and an offline phone; both of bob's devices have a
// push token.
func twoUsers(t *testing.T, en *env, gw *stubGateway) (route.Route, *fakeLogic) {
	t.Helper()
	alice := route.Route{UserID: 1, DeviceID: "phone", Gateway: gw.addr, ConnID: 1}
	en.putRoute(t, alice)
	en.putRoute(t, route.Route{UserID: 2, DeviceID: "laptop", Gateway: gw.addr, ConnID: 2})
	lg := newFakeLogic()
	lg.setToken(1, "phone", "alice-phone")
	lg.setToken(2, "phone", "bob-phone")
	lg.setToken(2, "laptop", "bob-laptop")
	return alice, lg
}

func TestNotify_OfflineDeviceOncePerMessage(t *testing.T) {
	en := newEnv(t)
	gw := startGateway(t, gatewayMode{})
	rcv := startReceiver(t, false)
	alice, lg := twoUsers(t, en, gw)
	tk := startNotifyTask(t, en, notifyConfig(rcv, -1), lg)

	for seq := int64(1); seq <= 3; seq++ {
		en.publish(t, newEvent("p2p:1:2", seq, []int64{1, 2}, alice))
	}
	testwait.For(t, 5*time.Second, "three notifications", func() bool { return len(rcv.got()) == 3 })
	testwait.For(t, 5*time.Second, "events acked", en.notifySettled(t))

	notes := rcv.got()
	slices.SortFunc(notes, func(a, b Notification) int { return int(a.MsgID - b.MsgID) })
	for i, n := range notes {
		seq := int64(i + 1)
		want := Notification{ID: fmt.Sprintf("%d-2-phone", 1000+seq), UserID: 2,
			DeviceID: "phone", Platform: "fcm", Token: "bob-phone", ConvID: "p2p:1:2",
			SenderID: 1, SenderName: "user 1", MsgID: 1000 + seq, Seq: seq, SentAtMs: 1700000000000 + seq,
			Preview: fmt.Sprintf("hello %d", seq), Count: 1, Badge: int32(seq)}
		if n != want {
			t.Errorf("notification %d = %+v, want %+v", i, n, want)
		}
	}
	if n := len(gw.framesOf(2)); n != 3 {
		t.Errorf("online laptop got %d pushes, want 3", n)
	}
	if rcv.badSigns.Load() != 0 || rcv.calls.Load() != 3 {
		t.Errorf("receiver saw %d calls, %d bad signatures; want 3 and 0",
			rcv.calls.Load(), rcv.badSigns.Load())
	}
	if v := testutil.ToFloat64(tk.task.notify.metrics.sent); v != 3 {
		t.Errorf("sent metric %v, want 3", v)
	}
}

func TestNotify_CoalescesBurst(t *testing.T) {
	en := newEnv(t)
	gw := startGateway(t, gatewayMode{})
	rcv := startReceiver(t, false)
	alice, lg := twoUsers(t, en, gw)
	tk := startNotifyTask(t, en, notifyConfig(rcv, 500*time.Millisecond), lg)

	for seq := int64(1); seq <= 5; seq++ {
		en.publish(t, newEvent("p2p:1:2", seq, []int64{1, 2}, alice))
	}
	testwait.For(t, 5*time.Second, "events acked", en.notifySettled(t))
	notes := rcv.got()
	if len(notes) != 1 {
		t.Fatalf("got %d notifications, want 1 for the burst: %+v", len(notes), notes)
	}
	if n := notes[0]; n.Count != 5 || n.MsgID != 1005 || n.Badge != 5 || n.ID != "1005-2-phone" {
		t.Errorf("coalesced notification %+v, want count 5, newest msg 1005, badge 5", n)
	}
	m := tk.task.notify.metrics
	if testutil.ToFloat64(m.coalesced) != 4 || testutil.ToFloat64(m.sent) != 1 {
		t.Errorf("coalesced %v sent %v, want 4 and 1",
			testutil.ToFloat64(m.coalesced), testutil.ToFloat64(m.sent))
	}
}

func TestNotify_SkipsMutedAndDND(t *testing.T) {
	tests := []struct {
		name   string
		set    func(*fakeLogic)
		metric func(*notifyMetrics) float64
	}{
		{name: "muted", set: func(f *fakeLogic) { f.muted[2] = true },
			metric: func(m *notifyMetrics) float64 { return testutil.ToFloat64(m.muted) }},
		{name: "do not disturb", set: func(f *fakeLogic) { f.dnd[2] = true },
			metric: func(m *notifyMetrics) float64 { return testutil.ToFloat64(m.dnd) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			en := newEnv(t)
			gw := startGateway(t, gatewayMode{})
			rcv := startReceiver(t, false)
			alice, lg := twoUsers(t, en, gw)
			tc.set(lg)
			tk := startNotifyTask(t, en, notifyConfig(rcv, -1), lg)
			en.publish(t, newEvent("p2p:1:2", 1, []int64{1, 2}, alice))
			testwait.For(t, 5*time.Second, "event acked", en.notifySettled(t))
			if rcv.calls.Load() != 0 {
				t.Errorf("receiver got %d calls, want none", rcv.calls.Load())
			}
			if v := tc.metric(tk.task.notify.metrics); v != 1 {
				t.Errorf("skip metric %v, want 1", v)
			}
		})
	}
}

func TestNotify_FailingReceiverRetriedThenFailed(t *testing.T) {
	en := newEnv(t)
	gw := startGateway(t, gatewayMode{})
	rcv := startReceiver(t, false)
	rcv.fail.Store(1 << 30)
	alice, lg := twoUsers(t, en, gw)
	tk := startNotifyTask(t, en, notifyConfig(rcv, -1), lg)

	en.publish(t, newEvent("p2p:1:2", 1, []int64{1, 2}, alice))
	testwait.For(t, 5*time.Second, "event acked", en.notifySettled(t))
	m := tk.task.notify.metrics
	if rcv.calls.Load() != 3 || testutil.ToFloat64(m.retried) != 2 ||
		testutil.ToFloat64(m.failed) != 1 || testutil.ToFloat64(m.sent) != 0 {
		t.Errorf("calls %d retried %v failed %v sent %v, want 3, 2, 1, 0", rcv.calls.Load(),
			testutil.ToFloat64(m.retried), testutil.ToFloat64(m.failed), testutil.ToFloat64(m.sent))
	}

	// A receiver that recovers gets the next message at once, after one
	// failed attempt.
	rcv.fail.Store(1)
	en.publish(t, newEvent("p2p:1:2", 2, []int64{1, 2}, alice))
	testwait.For(t, 5*time.Second, "notification after a retry", func() bool {
		return len(rcv.got()) == 1
	})
	if got := rcv.got()[0].MsgID; got != 1002 {
		t.Errorf("notified msg %d, want 1002", got)
	}
}

func TestNotify_HungReceiverDoesNotDelayOnlinePush(t *testing.T) {
	en := newEnv(t)
	gw := startGateway(t, gatewayMode{})
	rcv := startReceiver(t, true)
	alice, lg := twoUsers(t, en, gw)
	cfg := notifyConfig(rcv, -1)
	cfg.Notify.Timeout = 3 * time.Second
	startNotifyTask(t, en, cfg, lg)

	for seq := int64(1); seq <= 20; seq++ {
		start := time.Now()
		en.publish(t, newEvent("p2p:1:2", seq, []int64{1, 2}, alice))
		testwait.For(t, 2*time.Second, "online push", func() bool {
			return len(gw.framesOf(2)) == int(seq)
		})
		if took := time.Since(start); took > 500*time.Millisecond {
			t.Errorf("online push %d took %v while the webhook hangs", seq, took)
		}
	}
	if rcv.calls.Load() == 0 {
		t.Error("the webhook was never called; the test proves nothing")
	}
	testwait.For(t, 5*time.Second, "push consumer acked", en.settled(t))
}

func TestNotify_RestartAndRedeliveryDoNotNotifyTwice(t *testing.T) {
	en := newEnv(t)
	gw := startGateway(t, gatewayMode{})
	rcv := startReceiver(t, false)
	alice, lg := twoUsers(t, en, gw)
	cfg := notifyConfig(rcv, -1)
	first := startNotifyTask(t, en, cfg, lg)
	ev := newEvent("p2p:1:2", 1, []int64{1, 2}, alice)
	en.publish(t, ev)
	testwait.For(t, 5*time.Second, "notification", func() bool { return len(rcv.got()) == 1 })
	testwait.For(t, 5*time.Second, "event acked", en.notifySettled(t))
	first.stop()

	second := startNotifyTask(t, en, cfg, lg)
	// The same message again, as an outbox relay republishes it after the
	// stream's duplicate window; and a new one, to know when the second
	// task has caught up.
	buf := make([]byte, ev.BLength())
	ev.FastWriteNocopy(buf, nil)
	en.publishRaw(t, buf, "republished-1001")
	en.publish(t, newEvent("p2p:1:2", 2, []int64{1, 2}, alice))
	testwait.For(t, 5*time.Second, "events acked", en.notifySettled(t))
	ids := []string{}
	for _, n := range rcv.got() {
		ids = append(ids, n.ID)
	}
	if !slices.Equal(ids, []string{"1001-2-phone", "1002-2-phone"}) {
		t.Errorf("notifications %v, want 1001 once then 1002", ids)
	}
	if v := testutil.ToFloat64(second.task.notify.metrics.duplicate); v != 1 {
		t.Errorf("duplicate metric %v, want 1", v)
	}
}

func TestWebhook_SignatureAndBackoff(t *testing.T) {
	body := []byte(`{"id":"1-2-phone"}`)
	sig := Sign([]byte("k"), "1700000000", body)
	if !Verify([]byte("k"), "1700000000", body, sig) {
		t.Error("own signature does not verify")
	}
	for name, tamper := range map[string]func() bool{
		"body":      func() bool { return Verify([]byte("k"), "1700000000", []byte(`{}`), sig) },
		"timestamp": func() bool { return Verify([]byte("k"), "1700000001", body, sig) },
		"key":       func() bool { return Verify([]byte("x"), "1700000000", body, sig) },
	} {
		if tamper() {
			t.Errorf("signature verifies with another %s", name)
		}
	}
	cfg := NotifyConfig{RetryBase: 100 * time.Millisecond, RetryMax: time.Second}
	w := newWebhook(cfg, func() {})
	for retry, top := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		top *= time.Millisecond
		for range 20 {
			if d := w.backoff(retry + 1); d < top/2 || d > top {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", retry+1, d, top/2, top)
			}
		}
	}
}

func TestPreview_CutsOnRunes(t *testing.T) {
	long := make([]rune, previewRunes+5)
	for i := range long {
		long[i] = 'é'
	}
	if got := preview([]byte(string(long))); got != string(long[:previewRunes])+"…" {
		t.Errorf("preview of a long text = %q", got)
	}
	if got := preview([]byte{0xff, 'a'}); got != "" {
		t.Errorf("preview of invalid UTF-8 = %q, want none", got)
	}
}

func TestNotify_StopGivesBackUnsentBatches(t *testing.T) {
	en := newEnv(t)
	gw := startGateway(t, gatewayMode{})
	rcv := startReceiver(t, false)
	alice, lg := twoUsers(t, en, gw)
	first := startNotifyTask(t, en, notifyConfig(rcv, time.Minute), lg)
	en.publish(t, newEvent("p2p:1:2", 1, []int64{1, 2}, alice))
	testwait.For(t, 5*time.Second, "event resolved into a batch", func() bool {
		lg.mu.Lock()
		defer lg.mu.Unlock()
		return lg.calls == 1
	})
	first.stop() // inside the window: nothing sent, the event goes back
	if rcv.calls.Load() != 0 {
		t.Fatalf("receiver called %d times before the window ended", rcv.calls.Load())
	}

	startNotifyTask(t, en, notifyConfig(rcv, -1), lg)
	testwait.For(t, 5*time.Second, "notification after the restart", func() bool {
		return len(rcv.got()) == 1
	})
	testwait.For(t, 5*time.Second, "event acked", en.notifySettled(t))
	if got := rcv.got(); len(got) != 1 || got[0].ID != "1001-2-phone" {
		t.Errorf("notifications %+v, want 1001 once", got)
	}
}

func TestNew_NotifyConfig(t *testing.T) {
	base := Deps{Log: zerolog.Nop(), JS: fakeJS{}, MQ: newNamesForTest(),
		Routes: route.NewMemory(time.Minute)}
	withLogic := base
	withLogic.Logic = newFakeLogic()
	tests := []struct {
		name   string
		notify NotifyConfig
		deps   Deps
		want   error
	}{
		{name: "off by default", deps: base},
		{name: "on", notify: NotifyConfig{WebhookURL: "http://127.0.0.1:1/n", Secret: "s"},
			deps: withLogic},
		{name: "no logic", notify: NotifyConfig{WebhookURL: "http://127.0.0.1:1/n", Secret: "s"},
			deps: base, want: ErrMissingDeps},
		{name: "no secret", notify: NotifyConfig{WebhookURL: "http://127.0.0.1:1/n"},
			deps: withLogic, want: ErrBadConfig},
		{name: "secret without a webhook", notify: NotifyConfig{Secret: "s"}, deps: withLogic,
			want: ErrBadConfig},
		{name: "not http", notify: NotifyConfig{WebhookURL: "ftp://127.0.0.1/n", Secret: "s"},
			deps: withLogic, want: ErrBadConfig},
		{name: "retry max below base", notify: NotifyConfig{WebhookURL: "http://127.0.0.1:1/n",
			Secret: "s", RetryBase: time.Second, RetryMax: time.Millisecond},
			deps: withLogic, want: ErrBadConfig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Notify = tc.notify
			_, err := New(cfg, tc.deps)
			if !errors.Is(err, tc.want) {
				t.Errorf("New = %v, want %v", err, tc.want)
			}
		})
	}
}

// An operator reads from the start log that notifications are on and where
// they go; neither the secret nor the URL's query, which may hold a key, is
// written there.
func TestNotify_StartLogNamesWebhook(t *testing.T) {
	en := newEnv(t)
	rcv := startReceiver(t, false)
	cfg := notifyConfig(rcv, -1)
	cfg.Notify.WebhookURL += "/path-secret?key=query-secret"
	var logs syncbuf.Buffer
	t.Cleanup(func() {
		err := en.js.DeleteKeyValue(context.Background(), notifiedBucket(en.names))
		if err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
			t.Errorf("delete notified bucket: %v", err)
		}
	})
	rt := startTaskDeps(t, cfg, Deps{Log: zerolog.New(&logs), JS: en.js, MQ: en.names,
		Routes: en.routes, Logic: newFakeLogic()})
	rt.stop()

	u, err := url.Parse(rcv.url)
	if err != nil {
		t.Fatal(err)
	}
	var line string
	for l := range strings.Lines(logs.String()) {
		if strings.Contains(l, "offline notifications on") {
			line = l
		}
	}
	if line == "" {
		t.Fatalf("no start line for notifications in:\n%s", logs.String())
	}
	for _, want := range []string{`"level":"info"`, `"http://` + u.Host + `"`} {
		if !strings.Contains(line, want) {
			t.Errorf("start line %s does not say %s", line, want)
		}
	}
	for _, secret := range []string{testWebhookSecret, "path-secret", "query-secret"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("logs hold %q:\n%s", secret, logs.String())
		}
	}
}

func TestNotify_DeviceBackOnlineInWindowIsNotWoken(t *testing.T) {
	en := newEnv(t)
	gw := startGateway(t, gatewayMode{})
	rcv := startReceiver(t, false)
	alice, lg := twoUsers(t, en, gw)
	tk := startNotifyTask(t, en, notifyConfig(rcv, 300*time.Millisecond), lg)
	en.publish(t, newEvent("p2p:1:2", 1, []int64{1, 2}, alice))
	testwait.For(t, 5*time.Second, "event resolved into a batch", func() bool {
		lg.mu.Lock()
		defer lg.mu.Unlock()
		return lg.calls == 1
	})
	en.putRoute(t, route.Route{UserID: 2, DeviceID: "phone", Gateway: gw.addr, ConnID: 3})
	testwait.For(t, 5*time.Second, "event acked", en.notifySettled(t))
	if n := rcv.calls.Load(); n != 0 {
		t.Errorf("receiver called %d times for a device that came back", n)
	}
	if v := testutil.ToFloat64(tk.task.notify.metrics.online); v != 1 {
		t.Errorf("online skip metric %v, want 1", v)
	}
}

// A reaction is an event in the conversation, pushed to online devices like
// any message but waking no offline one: only the message after it does.
func TestNotify_ReactionNotifiesNobody(t *testing.T) {
	en := newEnv(t)
	gw := startGateway(t, gatewayMode{})
	rcv := startReceiver(t, false)
	alice, lg := twoUsers(t, en, gw)
	startNotifyTask(t, en, notifyConfig(rcv, -1), lg)

	reaction := newEvent("p2p:1:2", 1, []int64{1, 2}, alice)
	reaction.Message.ContentType = common.ContentType_REACTION
	body := &common.ReactionEvent{Seq: 1, MsgId: 999, Emoji: "👍"}
	reaction.Message.Content = make([]byte, body.BLength())
	body.FastWrite(reaction.Message.Content)
	en.publish(t, reaction)
	en.publish(t, newEvent("p2p:1:2", 2, []int64{1, 2}, alice))
	testwait.For(t, 5*time.Second, "the message's notification",
		func() bool { return len(rcv.got()) >= 1 })
	testwait.For(t, 5*time.Second, "events acked", en.notifySettled(t))

	if notes := rcv.got(); len(notes) != 1 || notes[0].Seq != 2 {
		t.Fatalf("notifications %+v, want only the message at seq 2", notes)
	}
	if n := len(gw.framesOf(2)); n != 2 {
		t.Errorf("online laptop got %d pushes, want the reaction and the message", n)
	}
}

// A FILE message wakes devices like text, and previews as its name, or as
// "Photo" for an image, never as the bytes of its FileRef.
func TestPreview_FileMessages(t *testing.T) {
	fileMsg := func(name, mime string) *common.Message {
		ref := &common.FileRef{FileId: "0123456789abcdef0123456789abcdef", Name: name,
			Mime: mime, Size: 10, Sha256: make([]byte, 32)}
		b := make([]byte, ref.BLength())
		ref.FastWriteNocopy(b, nil)
		return &common.Message{ContentType: common.ContentType_FILE, Content: b}
	}
	for _, tc := range []struct {
		name string
		m    *common.Message
		want string
	}{
		{name: "text", m: &common.Message{ContentType: common.ContentType_TEXT,
			Content: []byte("hi")}, want: "hi"},
		{name: "document", m: fileMsg("report.pdf", "application/pdf"), want: "report.pdf"},
		{name: "image", m: fileMsg("IMG_0001.jpg", "image/jpeg"), want: "Photo"},
		{name: "binary", m: &common.Message{ContentType: common.ContentType_BINARY,
			Content: []byte{1, 2}}, want: ""},
		{name: "broken ref", m: &common.Message{ContentType: common.ContentType_FILE,
			Content: []byte{0xff}}, want: ""},
	} {
		if got := messagePreview(tc.m); got != tc.want {
			t.Errorf("%s: preview %q, want %q", tc.name, got, tc.want)
		}
	}
	if !notifiable(fileMsg("a", "a/b")) {
		t.Error("a FILE message is not notifiable")
	}
}

// A pin is an event too: pushed to online devices, waking no offline one.
func TestNotify_PinNotifiesNobody(t *testing.T) {
	en := newEnv(t)
	gw := startGateway(t, gatewayMode{})
	rcv := startReceiver(t, false)
	alice, lg := twoUsers(t, en, gw)
	startNotifyTask(t, en, notifyConfig(rcv, -1), lg)

	pin := newEvent("p2p:1:2", 1, []int64{1, 2}, alice)
	pin.Message.ContentType = common.ContentType_PIN
	body := &common.PinEvent{Seq: 1, MsgId: 999}
	pin.Message.Content = make([]byte, body.BLength())
	body.FastWrite(pin.Message.Content)
	en.publish(t, pin)
	en.publish(t, newEvent("p2p:1:2", 2, []int64{1, 2}, alice))
	testwait.For(t, 5*time.Second, "the message's notification",
		func() bool { return len(rcv.got()) >= 1 })
	testwait.For(t, 5*time.Second, "events acked", en.notifySettled(t))

	if notes := rcv.got(); len(notes) != 1 || notes[0].Seq != 2 {
		t.Fatalf("notifications %+v, want only the message at seq 2", notes)
	}
	if n := len(gw.framesOf(2)); n != 2 {
		t.Errorf("online laptop got %d pushes, want the pin and the message", n)
	}
}
