package task

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudwego/kitex/client/callopt"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/event"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
)

// Offline notifications have a durable consumer of their own
// (NotifyConsumer) on the message events: it reads the same events as the
// push consumer but acks them separately, so a slow or dead webhook holds
// up only notifications, never online delivery. For each message it looks
// up the recipients' routes, asks logic (OfflineTargets) for the push
// tokens of their devices that have none, with badge, mute and
// do-not-disturb, and queues one entry per device in the coalescer
// (coalesce.go), which sends them through the webhook (webhook.go).
//
// An event is acked once every device it named was settled: notified,
// found already notified, skipped, or recorded as failed after the last
// attempt. It is naked, to come back, only when something transient failed
// before the webhook was tried (route lookup, logic, the marks bucket) or
// task stopped first.

// notifyIntake bounds the events being resolved (route lookup and logic
// call) at once per task instance.
const notifyIntake = 16

// notifyMaxAckPending bounds the events read but not yet acked: a hung
// webhook stops the consumer here instead of growing the batches.
//
// Known limit: with many devices behind a hung webhook, a batch may wait
// for a free call longer than the consumer's ack wait; its event is then
// redelivered and queued a second time. The notified marks keep the device
// from a second notification; the cost is the repeated lookup.
const notifyMaxAckPending = 1024

// NotifyConsumer returns the durable consumer name of offline notifications
// for the push consumer named consumer.
func NotifyConsumer(consumer string) string { return consumer + "_notify" }

// OfflineLister is what task needs of logic for notifications: the Kitex
// Logic client satisfies it.
type OfflineLister interface {
	OfflineTargets(ctx context.Context, req *logicrpc.OfflineTargetsReq,
		callOptions ...callopt.Option) (*logicrpc.OfflineTargetsResp, error)
}

// setupNotify creates or updates the notification consumer and the bucket
// of notified marks.
func (t *Task) setupNotify(ctx context.Context) (jetstream.Consumer, error) {
	n := t.notify
	marks, err := openNotifiedMarks(ctx, t.js, t.names, n.cfg.DedupeTTL)
	if err != nil {
		return nil, err
	}
	n.marks = marks
	cc := jetstream.ConsumerConfig{
		Durable: NotifyConsumer(t.names.Consumer),
		// Every partition: notifications need no order, so one consumer
		// shared by the instances takes them all.
		FilterSubject: t.names.MessageSubjects(),
		AckPolicy:     jetstream.AckExplicitPolicy,
		// A new deployment notifies from now on, not for the stream's day
		// of history.
		DeliverPolicy: jetstream.DeliverNewPolicy,
		AckWait:       n.cfg.ackWait(t.cfg.AckWait),
		MaxDeliver:    t.cfg.MaxDeliver,
		MaxAckPending: notifyMaxAckPending,
	}
	cons, err := t.js.CreateOrUpdateConsumer(ctx, t.names.Stream, cc)
	if err != nil {
		return nil, fmt.Errorf("task: consumer %s on %s: %w", cc.Durable, t.names.Stream, err)
	}
	return cons, nil
}

// consumeNotify resolves message events into notifications until ctx is
// done, then stops the coalescer and waits for the sends in flight.
func (t *Task) consumeNotify(ctx context.Context, cons jetstream.Consumer) {
	name := NotifyConsumer(t.names.Consumer)
	iter, err := cons.Messages(jetstream.PullMaxMessages(notifyIntake))
	if err != nil {
		t.log.Error().Err(err).Str("consumer", name).Msg("consume notifications")
		return
	}
	stop := context.AfterFunc(ctx, iter.Stop)
	defer stop()
	work := context.WithoutCancel(ctx)
	slots := make(chan struct{}, notifyIntake)
	var wg sync.WaitGroup
	for {
		msg, err := iter.Next()
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			break
		}
		if err != nil {
			t.rare.Warn().Err(err).Str("consumer", name).Msg("consume error")
			pause(ctx, errPause)
			continue
		}
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			t.resolveNotify(work, msg)
		})
	}
	wg.Wait()
	t.notify.shutdown()
}

// pendingEvent is a message event whose devices are being notified; it is
// settled when the last of them is.
type pendingEvent struct {
	msg       jetstream.Msg
	streamSeq uint64
	delivered uint64
	nakDelay  time.Duration
	left      atomic.Int32
	redo      atomic.Bool // some device must be tried again: nak
}

// done settles one device of p; retry asks for the event back.
func (p *pendingEvent) done(retry bool) {
	if retry {
		p.redo.Store(true)
	}
	if p.left.Add(-1) != 0 {
		return
	}
	if p.redo.Load() {
		_ = p.msg.NakWithDelay(p.nakDelay)
		return
	}
	_ = p.msg.Ack()
}

// resolveNotify turns one message event into coalescer entries, one per
// offline device to notify, and settles the event when it has none.
func (t *Task) resolveNotify(ctx context.Context, msg jetstream.Msg) {
	p := &pendingEvent{msg: msg, delivered: 1}
	if md, err := msg.Metadata(); err == nil {
		p.streamSeq, p.delivered = md.Sequence.Stream, md.NumDelivered
	}
	p.nakDelay = t.cfg.nakDelay(p.delivered)
	ev, err := decodeEvent(msg.Data())
	if err != nil || !notifiable(ev.Message) {
		// Poison events are dead-lettered by the push consumer.
		_ = msg.Ack()
		return
	}
	targets, sender, err := t.offlineTargets(ctx, ev)
	if err != nil {
		t.notifyRetry(p, ev.Message, err)
		return
	}
	targets = t.notify.unmuted(targets)
	if len(targets) == 0 {
		_ = msg.Ack()
		return
	}
	p.left.Store(int32(len(targets)))
	for _, tg := range targets {
		t.notify.add(tg, batchItem{msg: ev.Message, senderName: sender, ev: p,
			mentioned: tg.Mentioned})
	}
}

// notifiable reports whether a message wakes devices: what users send does,
// the events stored in a conversation (group changes, recalls, edits) do
// not.
func notifiable(m *common.Message) bool {
	return m.ContentType == common.ContentType_TEXT || m.ContentType == common.ContentType_BINARY ||
		m.ContentType == common.ContentType_FILE
}

// offlineChunkUsers bounds the recipients of one route lookup and one
// OfflineTargets call: a big group's message is resolved in several.
const offlineChunkUsers = 1000

// offlineTargets returns the devices of ev's recipients, the sender left
// out, that have a push token and no live route, and the sender's name.
func (t *Task) offlineTargets(ctx context.Context,
	ev *event.MessageEvent) ([]*logicrpc.OfflineTarget, string, error) {
	m := ev.Message
	users := make([]int64, 0, len(ev.Recipients))
	for _, u := range ev.Recipients {
		if u != m.SenderId {
			users = append(users, u)
		}
	}
	var out []*logicrpc.OfflineTarget
	var sender string
	for chunk := range slices.Chunk(users, offlineChunkUsers) {
		resp, err := t.offlineChunk(ctx, m, chunk)
		if err != nil {
			return nil, "", err
		}
		out = append(out, resp.GetTargets()...)
		sender = cmp.Or(sender, resp.GetSenderName())
	}
	return out, sender, nil
}

// offlineChunk is offlineTargets for some of the recipients.
func (t *Task) offlineChunk(ctx context.Context, m *common.Message,
	users []int64) (*logicrpc.OfflineTargetsResp, error) {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.PushTimeout)
	defer cancel()
	routes, err := t.routes.Lookup(ctx, users)
	if err != nil {
		return nil, fmt.Errorf("route lookup: %w", err)
	}
	online := make([]*logicrpc.DeviceRef, len(routes))
	for i, r := range routes {
		online[i] = &logicrpc.DeviceRef{UserId: r.UserID, DeviceId: r.DeviceID}
	}
	resp, err := t.notify.logic.OfflineTargets(ctx, &logicrpc.OfflineTargetsReq{
		ConvId: m.ConvId, SenderId: m.SenderId, Recipients: users, Online: online,
		AtMs: m.SendTimeMs, Mentioned: mentionedOf(m, users)})
	if err != nil {
		return nil, fmt.Errorf("logic offline targets: %w", err)
	}
	return resp, nil
}

// mentionedOf returns the users of the chunk users that m mentions: all of
// them for @all.
func mentionedOf(m *common.Message, users []int64) []int64 {
	if m.GetMentionAll() {
		return users
	}
	if len(m.Mentions) == 0 {
		return nil
	}
	var out []int64
	for _, u := range users {
		if slices.Contains(m.Mentions, u) {
			out = append(out, u)
		}
	}
	return out
}

// notifyRetry naks an event that could not be resolved, or gives up on it
// at its last delivery.
func (t *Task) notifyRetry(p *pendingEvent, m *common.Message, cause error) {
	if p.delivered >= uint64(t.cfg.MaxDeliver) {
		t.notify.metrics.failed.Inc()
		t.rare.Warn().Err(cause).Str("conv", m.ConvId).Int64("msg", m.MsgId).
			Uint64("stream_seq", p.streamSeq).Msg("notification dropped after last delivery")
		_ = p.msg.Ack()
		return
	}
	t.log.Debug().Err(cause).Int64("msg", m.MsgId).Uint64("delivered", p.delivered).
		Msg("notification event nak")
	_ = p.msg.NakWithDelay(p.nakDelay)
}
