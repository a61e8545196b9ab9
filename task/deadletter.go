package task

import (
	"context"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Headers of a dead-lettered event; its body is the event's raw bytes.
const (
	HeaderDeadReason     = "Resonance-Dead-Reason"     // reasonUndecodable or reasonMaxDeliver
	HeaderDeadError      = "Resonance-Dead-Error"      // the last error, for the operator
	HeaderDeadStreamSeq  = "Resonance-Dead-Stream-Seq" // stream sequence of the original
	HeaderDeadDeliveries = "Resonance-Dead-Deliveries" // deliveries it had
)

// Dead-letter reasons, the values of HeaderDeadReason.
const (
	reasonUndecodable = "undecodable"
	reasonMaxDeliver  = "max-deliver"
)

// deadLetter republishes j's raw bytes on the dead-letter subject and then
// terminates j, so JetStream never delivers it again. If the publish fails,
// j is nak'd instead and dead-lettering is tried on its next delivery.
func (t *Task) deadLetter(ctx context.Context, j job, reason string, cause error) {
	t.metrics.deadLettered.Inc()
	seq := strconv.FormatUint(j.streamSeq, 10)
	m := nats.NewMsg(deadLetterSubject(t.names))
	m.Data = j.msg.Data()
	m.Header.Set(HeaderDeadReason, reason)
	m.Header.Set(HeaderDeadError, cause.Error())
	m.Header.Set(HeaderDeadStreamSeq, seq)
	m.Header.Set(HeaderDeadDeliveries, strconv.FormatUint(j.delivered, 10))

	pubCtx, cancel := context.WithTimeout(ctx, t.cfg.PushTimeout)
	defer cancel()
	// The message id makes a second dead-lettering of the same event (the
	// Term below lost) a duplicate that the stream drops.
	_, err := t.js.PublishMsg(pubCtx, m, jetstream.WithMsgID("dlq-"+t.names.Stream+"-"+seq))
	if err != nil {
		t.rare.Warn().Err(err).Uint64("stream_seq", j.streamSeq).Msg("dead-letter publish failed")
		_ = j.msg.NakWithDelay(t.cfg.nakDelay(j.delivered))
		return
	}
	// Term without a reason: NATS servers before 2.10 do not parse
	// "+TERM <reason>" and leave the event pending; the reason is in the
	// dead letter's headers.
	if err := j.msg.Term(); err != nil {
		t.rare.Warn().Err(err).Uint64("stream_seq", j.streamSeq).Msg("term event")
	}
	// Rare by nature and sampled: an operator needs to see poison events.
	t.rare.Warn().Err(cause).Uint64("stream_seq", j.streamSeq).Str("reason", reason).
		Str("subject", m.Subject).Msg("event dead-lettered")
}
