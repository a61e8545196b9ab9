package task

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/event"
	"github.com/resonance-im/resonance/kitex_gen/pushrpc"
)

// Kick events have a durable consumer of their own (mq.Names.KickConsumer),
// not a second filter subject on the message consumer: a kick must not wait
// behind a backlog of message events, it needs no per-conversation order,
// and a gateway that is slow to kick must not hold up pushes.
const (
	// kickConcurrency bounds the kicks in flight per task instance, so a
	// dead gateway (each call waiting PushTimeout) does not hold up the
	// kicks of other gateways.
	kickConcurrency = 16
	// kickMaxAge drops kicks older than this unsent: the connection they
	// name has closed by itself long since (heartbeat), and after a gateway
	// restart its connection id may belong to a new connection.
	kickMaxAge = 2 * time.Minute
)

// setupKicks creates or updates the durable consumer of kick events.
func (t *Task) setupKicks(ctx context.Context) (jetstream.Consumer, error) {
	cc := jetstream.ConsumerConfig{
		Durable:       t.names.KickConsumer(),
		FilterSubject: t.names.KickSubject(),
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       t.cfg.AckWait,
		BackOff:       t.cfg.backoffSchedule(),
		MaxDeliver:    t.cfg.MaxDeliver,
		MaxAckPending: kickConcurrency * 4,
	}
	cons, err := t.js.CreateOrUpdateConsumer(ctx, t.names.Stream, cc)
	if err != nil {
		return nil, fmt.Errorf("task: consumer %s on %s: %w",
			t.names.KickConsumer(), t.names.Stream, err)
	}
	return cons, nil
}

// consumeKicks handles kick events until ctx is done, up to kickConcurrency
// at once, and returns once the kicks in flight have finished. Events left
// unhandled are redelivered after their ack wait.
func (t *Task) consumeKicks(ctx context.Context, cons jetstream.Consumer) {
	iter, err := cons.Messages(jetstream.PullMaxMessages(kickConcurrency))
	if err != nil {
		t.log.Error().Err(err).Str("consumer", t.names.KickConsumer()).Msg("consume kicks")
		return
	}
	stop := context.AfterFunc(ctx, iter.Stop)
	defer stop()
	work := context.WithoutCancel(ctx)
	slots := make(chan struct{}, kickConcurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		msg, err := iter.Next()
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			return
		}
		if err != nil {
			t.rare.Warn().Err(err).Str("consumer", t.names.KickConsumer()).Msg("consume error")
			pause(ctx, errPause)
			continue
		}
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			t.handleKick(work, msg)
		})
	}
}

// handleKick asks the gateway named by a kick event to close the
// connection, and settles the event: ack once the gateway answered (a
// connection it no longer has counts as done), retry with backoff when it did
// not, dead-letter an undecodable event or one out of deliveries. A kick
// for a vanished gateway is dropped, unless its registration lapsed and no
// probe has told yet whether it still serves (see lapsedGateways): that one
// is retried until a probe answers or fails.
func (t *Task) handleKick(ctx context.Context, msg jetstream.Msg) {
	j := job{msg: msg, delivered: 1, received: time.Now()}
	mark := t.view.mark()
	md, err := msg.Metadata()
	if err == nil {
		j.streamSeq, j.delivered = md.Sequence.Stream, md.NumDelivered
	}
	ev, err := decodeKick(msg.Data())
	if err != nil {
		t.deadLetter(ctx, j, reasonUndecodable, fmt.Errorf("kick at stream seq %d: %w",
			j.streamSeq, err))
		return
	}
	if md != nil && time.Since(md.Timestamp) > kickMaxAge {
		t.log.Debug().Int64("user", ev.UserId).Int64("conn", ev.ConnId).
			Msg("stale kick dropped")
		t.ack(j)
		return
	}
	if t.skipGateway(ctx, ev.Gateway, mark) {
		// skipGateway asked whether it answers before its registry read,
		// which a probe may have outrun.
		answering, undecided := t.lapsed.verdict(ev.Gateway)
		lapsed := t.view.lapsed(ev.Gateway)
		switch {
		case lapsed && answering:
			// Sent as to any lapsed gateway that answers.
		case lapsed && undecided && !t.lastDelivery(j):
			// It may still hold the connection: its probe will tell, and a
			// kick dropped would leave a replaced connection open for good.
			t.retry(ctx, j, fmt.Errorf("kick user %d conn %d: gateway %s lapsed, not probed yet",
				ev.UserId, ev.ConnId, ev.Gateway))
			return
		default:
			// The connection closed with its gateway; ids are never reused
			// by a later life at the same address.
			t.metrics.skipped.Inc()
			t.log.Debug().Str("gateway", ev.Gateway).Int64("conn", ev.ConnId).
				Msg("kick skipped: gateway vanished")
			t.ack(j)
			return
		}
	}
	req := &pushrpc.KickReq{
		Targets: []*pushrpc.Target{{ConnId: ev.ConnId, UserId: ev.UserId}},
		Reason:  ev.Reason,
		Message: ev.Message,
	}
	if _, err := t.gateways.kick(ctx, ev.Gateway, req); err != nil {
		t.lapsedCallFailed(ev.Gateway, err)
		t.retry(ctx, j, fmt.Errorf("kick user %d conn %d: %w", ev.UserId, ev.ConnId, err))
		return
	}
	t.ack(j)
	t.log.Debug().Str("gateway", ev.Gateway).Int64("user", ev.UserId).
		Int64("conn", ev.ConnId).Stringer("reason", ev.Reason).Msg("connection kicked")
}

// ack acks j, logging a failure (the event is then redelivered).
func (t *Task) ack(j job) {
	if err := j.msg.Ack(); err != nil {
		t.rare.Warn().Err(err).Uint64("stream_seq", j.streamSeq).Msg("ack event")
	}
}

// decodeKick reads a whole Thrift-binary KickEvent that names a gateway and
// a connection; anything else wraps ErrPoison.
func decodeKick(data []byte) (*event.KickEvent, error) {
	ev := event.NewKickEvent()
	if err := codec.ReadBody(data, ev); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPoison, err)
	}
	if ev.Gateway == "" || ev.ConnId == 0 {
		return nil, fmt.Errorf("%w: kick names no gateway or connection", ErrPoison)
	}
	return ev, nil
}
