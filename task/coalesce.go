package task

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/internal/route"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

const (
	// maxBatch sends a device's batch at once when it holds this many
	// messages, so one notification never waits on an endless storm.
	maxBatch = 100
	// previewRunes bounds a preview: a lock screen shows less.
	previewRunes = 120
	// releaseTimeout bounds giving back the claims of an unsent batch.
	releaseTimeout = 2 * time.Second
)

// notifyMetrics are the notification series; labels are bounded.
type notifyMetrics struct {
	sent, failed, coalesced, retried prometheus.Counter
	muted, dnd, duplicate, online    prometheus.Counter
}

func newNotifyMetrics(reg prometheus.Registerer) *notifyMetrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	outcomes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "resonance_task_notifications_total",
		Help: "Offline notifications, by outcome: sent, or failed after the last attempt.",
	}, []string{"outcome"})
	skipped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "resonance_task_notify_skipped_total",
		Help: "Device notifications not sent, by reason: muted, dnd, duplicate, online.",
	}, []string{"reason"})
	coalesced := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "resonance_task_notify_coalesced_total",
		Help: "Messages folded into the notification of an earlier one to the same device.",
	})
	retried := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "resonance_task_notify_retries_total",
		Help: "Webhook calls retried after a failed attempt.",
	})
	reg.MustRegister(outcomes, skipped, coalesced, retried)
	return &notifyMetrics{
		sent: outcomes.WithLabelValues("sent"), failed: outcomes.WithLabelValues("failed"),
		coalesced: coalesced, retried: retried,
		muted: skipped.WithLabelValues("muted"), dnd: skipped.WithLabelValues("dnd"),
		duplicate: skipped.WithLabelValues("duplicate"), online: skipped.WithLabelValues("online"),
	}
}

// deviceKey names one device of one user.
type deviceKey struct {
	user   int64
	device string
}

// batchItem is one message waiting to be notified to a device.
type batchItem struct {
	msg        *common.Message
	senderName string
	ev         *pendingEvent
	mentioned  bool // the message mentions the device's user
}

// batch is what waits for one device during the coalescing window.
type batch struct {
	key    deviceKey
	target *logicrpc.OfflineTarget // as read for the newest message
	newest int64                   // its msg id
	items  []batchItem
	timer  *time.Timer // nil once taken out of notifier.batches
}

// notifier coalesces and sends the notifications of one Task.
type notifier struct {
	cfg     NotifyConfig
	logic   OfflineLister
	routes  route.Table
	marks   *notifiedMarks // set by setupNotify
	hook    *webhook
	metrics *notifyMetrics
	log     zerolog.Logger
	rare    zerolog.Logger
	slots   chan struct{} // webhook calls in flight
	// sendCtx is cancelled at shutdown: sends stop between attempts.
	sendCtx    context.Context
	cancelSend context.CancelFunc
	// inFlight counts batches created and not finished, so that shutdown
	// can wait for them.
	inFlight sync.WaitGroup

	mu      sync.Mutex
	batches map[deviceKey]*batch
	closed  bool
}

func newNotifier(cfg NotifyConfig, logic OfflineLister, routes route.Table,
	reg prometheus.Registerer, log, rare zerolog.Logger) *notifier {
	m := newNotifyMetrics(reg)
	ctx, cancel := context.WithCancel(context.Background())
	return &notifier{
		cfg: cfg, logic: logic, routes: routes, metrics: m, log: log, rare: rare,
		hook:    newWebhook(cfg, m.retried.Inc),
		slots:   make(chan struct{}, cfg.Concurrency),
		sendCtx: ctx, cancelSend: cancel,
		batches: make(map[deviceKey]*batch),
	}
}

// unmuted drops (and counts) the targets that muted the conversation, unless
// the message mentions them, or are in do-not-disturb, mentioned or not. DND
// drops rather than holds back: the app shows what it missed when it is
// opened, and the next notification after the window carries the right
// badge.
func (n *notifier) unmuted(targets []*logicrpc.OfflineTarget) []*logicrpc.OfflineTarget {
	out := targets[:0]
	for _, tg := range targets {
		switch {
		case tg.Dnd:
			n.metrics.dnd.Inc()
		case tg.Muted && !tg.Mentioned:
			n.metrics.muted.Inc()
		default:
			out = append(out, tg)
		}
	}
	return out
}

// add queues it for tg's device; it.ev is settled once the device's batch
// is.
func (n *notifier) add(tg *logicrpc.OfflineTarget, it batchItem) {
	key := deviceKey{user: tg.UserId, device: tg.DeviceId}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		it.ev.done(true)
		return
	}
	b := n.batches[key]
	if b == nil {
		b = &batch{key: key}
		n.inFlight.Add(1)
		if n.cfg.Window > 0 {
			n.batches[key] = b
			b.timer = time.AfterFunc(n.cfg.Window, func() { n.flush(b) })
		}
	}
	if b.target == nil || it.msg.MsgId > b.newest {
		// The newest message speaks for the batch, with the token and badge
		// read for it.
		b.target, b.newest = tg, it.msg.MsgId
	}
	b.items = append(b.items, it)
	now := b.timer == nil || len(b.items) >= maxBatch && b.timer.Stop()
	if now {
		n.take(b)
	}
	n.mu.Unlock()
	if now {
		go n.flush(b)
	}
}

// take removes b from the batches; n.mu is held.
func (n *notifier) take(b *batch) {
	if n.batches[b.key] == b {
		delete(n.batches, b.key)
	}
}

// flush sends b once a webhook slot is free.
func (n *notifier) flush(b *batch) {
	defer n.inFlight.Done()
	n.mu.Lock()
	n.take(b)
	n.mu.Unlock()
	n.slots <- struct{}{}
	defer func() { <-n.slots }()
	n.deliver(n.sendCtx, b)
}

// deliver claims b's messages for its device, sends one notification for
// those it won and settles every item.
//
// Guarantee: a device is notified at most once per message. The claim
// (notifiedMarks) is made before the call, so redelivery, a second task
// instance or a restart finds it and skips the message. If task dies
// between the claim and a successful call, that notification is lost; a
// lost notification costs little (the app syncs when opened, and the next
// one carries the right badge) while a duplicate buzz is what users notice.
// At a graceful stop, claims of calls not yet made are released and the
// event comes back. A receiver that saw a call time out may get it again
// after such a release: it deduplicates on Notification.ID.
func (n *notifier) deliver(ctx context.Context, b *batch) {
	tg := b.target
	if ctx.Err() != nil || n.cameOnline(ctx, b) {
		// Stopping: nothing claimed yet, the events come back as they are.
		// Online: the device syncs, nothing to wake.
		retry := ctx.Err() != nil
		for _, it := range b.items {
			it.ev.done(retry)
		}
		return
	}
	won, keys := n.claim(ctx, b)
	if len(won) == 0 {
		return
	}
	note := n.notification(tg, won)
	attempts, err := n.hook.send(ctx, note)
	retry := false
	switch {
	case err == nil:
		n.metrics.sent.Inc()
		n.metrics.coalesced.Add(float64(len(won) - 1))
		n.log.Debug().Str("id", note.ID).Int64("user", tg.UserId).Int("count", note.Count).
			Int("attempts", attempts).Msg("notification sent")
	case ctx.Err() != nil:
		retry = true
		n.release(keys)
	default:
		n.metrics.failed.Inc()
		n.rare.Warn().Err(err).Str("id", note.ID).Int64("user", tg.UserId).
			Str("device", tg.DeviceId).Str("conv", note.ConvID).Int64("msg", note.MsgID).
			Int("count", note.Count).Int("attempts", attempts).Msg("notification failed")
	}
	for _, it := range won {
		it.ev.done(retry)
	}
}

// claim claims each of b's messages for its device and returns the items
// it won with their keys; it settles the others: already notified (done),
// or the marks unreachable (retried).
func (n *notifier) claim(ctx context.Context, b *batch) ([]batchItem, []string) {
	tg := b.target
	won := make([]batchItem, 0, len(b.items))
	keys := make([]string, 0, len(b.items))
	for _, it := range b.items {
		key := markKey(it.msg.MsgId, tg.UserId, tg.DeviceId)
		ok, err := n.marks.claim(ctx, key)
		switch {
		case err != nil:
			n.rare.Warn().Err(err).Int64("user", tg.UserId).Int64("msg", it.msg.MsgId).
				Msg("notified mark unavailable; event retried")
			it.ev.done(true)
		case !ok:
			n.metrics.duplicate.Inc()
			it.ev.done(false)
		default:
			won = append(won, it)
			keys = append(keys, key)
		}
	}
	return won, keys
}

// cameOnline reports whether b's device connected during the window; a
// failed lookup says no, as a needless notification beats a missing one.
func (n *notifier) cameOnline(ctx context.Context, b *batch) bool {
	if n.cfg.Window <= 0 {
		return false // just looked up
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	routes, err := n.routes.Lookup(ctx, []int64{b.key.user})
	if err != nil {
		return false
	}
	for _, r := range routes {
		if r.DeviceID == b.key.device {
			n.metrics.online.Add(float64(len(b.items)))
			return true
		}
	}
	return false
}

// release gives back the claims of a notification that was not sent.
func (n *notifier) release(keys []string) {
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	for _, k := range keys {
		if err := n.marks.release(ctx, k); err != nil {
			n.rare.Warn().Err(err).Msg("release notified mark; that notification is lost")
		}
	}
}

// notification builds the webhook body of items for tg: the newest message
// (highest id) speaks for the batch, which is mentioned when any of its
// messages mentions the user, so a burst does not hide a mention.
func (n *notifier) notification(tg *logicrpc.OfflineTarget, items []batchItem) *Notification {
	top := items[0]
	for _, it := range items[1:] {
		if it.msg.MsgId > top.msg.MsgId {
			top = it
		}
	}
	newest := top.msg
	mentioned := false
	for _, it := range items {
		mentioned = mentioned || it.mentioned
	}
	note := &Notification{
		ID:         notificationID(newest.MsgId, tg.UserId, tg.DeviceId),
		UserID:     tg.UserId,
		DeviceID:   tg.DeviceId,
		Platform:   platformName(tg.Platform),
		Token:      tg.Token,
		AppID:      tg.AppId,
		ConvID:     newest.ConvId,
		SenderID:   newest.SenderId,
		SenderName: top.senderName,
		MsgID:      newest.MsgId,
		Seq:        newest.Seq,
		SentAtMs:   newest.SendTimeMs,
		Count:      len(items),
		Badge:      tg.Badge,
		Mentioned:  mentioned,
	}
	if !n.cfg.NoPreview {
		note.Preview = messagePreview(newest)
	}
	return note
}

// notificationID is Notification.ID: "<msg_id>-<user_id>-<device_id>".
func notificationID(msgID, user int64, device string) string {
	return strconv.FormatInt(msgID, 10) + "-" + strconv.FormatInt(user, 10) + "-" + device
}

// platformName is the JSON name of a push platform.
func platformName(p protocol.PushPlatform) string {
	switch p {
	case protocol.PushPlatform_APNS:
		return "apns"
	case protocol.PushPlatform_FCM:
		return "fcm"
	}
	return "other"
}

// messagePreview is the preview of m: the start of a text, a file's name
// ("Photo" for an image, whose name says little), nothing for binary
// content.
func messagePreview(m *common.Message) string {
	switch m.ContentType {
	case common.ContentType_TEXT:
		return preview(m.Content)
	case common.ContentType_FILE:
		ref := common.NewFileRef()
		if err := codec.ReadBody(m.Content, ref); err != nil {
			return ""
		}
		if strings.HasPrefix(ref.Mime, "image/") {
			return "Photo"
		}
		return preview([]byte(ref.Name))
	}
	return ""
}

// preview returns the first previewRunes characters of a text message,
// marked with an ellipsis when cut; invalid UTF-8 gives none.
func preview(content []byte) string {
	if !utf8.Valid(content) {
		return ""
	}
	s := string(content)
	runes := 0
	for i := range s {
		if runes == previewRunes {
			return s[:i] + "…"
		}
		runes++
	}
	return s
}

// shutdown stops taking batches: those still in their window are not sent
// and their events come back (naked); sends in flight stop between
// attempts. It returns once every batch is settled.
func (n *notifier) shutdown() {
	n.mu.Lock()
	n.closed = true
	var unsent []*batch
	for _, b := range n.batches {
		if b.timer.Stop() {
			unsent = append(unsent, b)
		}
		n.take(b)
	}
	n.mu.Unlock()
	for _, b := range unsent {
		for _, it := range b.items {
			it.ev.done(true)
		}
		n.inFlight.Done()
	}
	n.cancelSend()
	n.inFlight.Wait()
	n.hook.close()
}
