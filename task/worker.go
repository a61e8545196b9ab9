package task

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/internal/run"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/event"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
	"github.com/resonance-im/resonance/kitex_gen/pushrpc"
)

// job is one delivered event on its way to a worker. The partition's puller
// decodes it, because the conversation id picks the worker.
type job struct {
	msg       eventMsg
	part      *partRun            // the partition it came from; settled in its inflight
	ev        *event.MessageEvent // nil when decodeErr is set
	decodeErr error
	streamSeq uint64
	delivered uint64    // delivery count, 1 on first delivery
	received  time.Time // when the puller took it; its ack timer runs since
}

// eventMsg is what task does with a delivered event: a jetstream.Msg (kicks)
// and a pulledMsg (message events) both have it.
type eventMsg interface {
	Data() []byte
	Ack() error
	Nak() error
	NakWithDelay(delay time.Duration) error
	InProgress() error
	Term() error
}

// pulledMsg is an event pulled by a puller, a plain NATS message whose
// reply subject carries the JetStream acks.
type pulledMsg struct{ m *nats.Msg }

func (p pulledMsg) Data() []byte                       { return p.m.Data }
func (p pulledMsg) Ack() error                         { return p.m.Ack() }
func (p pulledMsg) Nak() error                         { return p.m.Nak() }
func (p pulledMsg) NakWithDelay(d time.Duration) error { return p.m.NakWithDelay(d) }
func (p pulledMsg) InProgress() error                  { return p.m.InProgress() }
func (p pulledMsg) Term() error                        { return p.m.Term() }

func newJob(msg *nats.Msg, part *partRun) job {
	j := job{msg: pulledMsg{msg}, part: part, delivered: 1, received: time.Now()}
	if md, err := msg.Metadata(); err == nil {
		j.streamSeq, j.delivered = md.Sequence.Stream, md.NumDelivered
	}
	ev, err := decodeEvent(msg.Data)
	if err != nil {
		j.decodeErr = fmt.Errorf("decode event at stream seq %d: %w", j.streamSeq, err)
		return j
	}
	j.ev = ev
	return j
}

// convID returns the conversation the job belongs to; poison jobs share the
// empty id, which is fine as they cost one publish each.
func (j *job) convID() string {
	if j.ev == nil {
		return ""
	}
	return j.ev.Message.ConvId
}

// decodeEvent reads a whole Thrift-binary MessageEvent that names its
// conversation. An event that fails here will fail on every delivery, so the
// error wraps ErrPoison.
func decodeEvent(data []byte) (*event.MessageEvent, error) {
	ev := event.NewMessageEvent()
	if err := codec.ReadBody(data, ev); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPoison, err)
	}
	if len(data) == 0 || ev.Message == nil || ev.Message.ConvId == "" {
		// A missing message encodes as an empty one: both lack a conversation.
		return nil, fmt.Errorf("%w: no message or conversation", ErrPoison)
	}
	return ev, nil
}

// startWorkers starts Config.Workers workers and returns their queues;
// closing a queue stops its worker once the queue is empty.
func (t *Task) startWorkers(ctx context.Context, g *run.Group) []chan job {
	// In-flight events are finished after ctx is done: the pushes run on a
	// context that is not cancelled, each bounded by PushTimeout.
	work := context.WithoutCancel(ctx)
	queues := make([]chan job, t.cfg.Workers)
	for i := range queues {
		q := make(chan job, t.cfg.queueLen())
		queues[i] = q
		g.Go(t.log, "task-worker-"+strconv.Itoa(i), func() { t.work(work, q) })
	}
	return queues
}

// maxRun bounds the events of one conversation pushed in one batch.
const maxRun = 64

// work handles q's jobs until q is closed, in order per conversation: a
// reorderer (reorder.go) holds an event that is ahead of its conversation's
// seq for a short while, without stopping the others. Consecutive events of
// one conversation with the same recipients that are ready together go out
// as one batch (deliver): each connection gets them in one write, and the
// routes are looked up once. A lone event is not held back for company.
func (t *Task) work(ctx context.Context, q <-chan job) {
	ro := newReorderer(t.cfg.ReorderWindow, t.cfg.Workers, t.metrics)
	var ready, rest, run []job // run and rest reuse their arrays
	for open := true; open || len(ready) > 0; {
		if len(ready) == 0 {
			select {
			case j, ok := <-q:
				if !ok {
					open = false
					ready = ro.flushAll(ready) // none left in practice: see Run
					continue
				}
				ready = ro.admit(j, ready, time.Now())
			case <-ro.due():
			}
		}
	drain:
		for open && len(ready) < maxRun {
			select {
			case j, ok := <-q:
				if !ok {
					open = false
					ready = ro.flushAll(ready)
					break drain
				}
				ready = ro.admit(j, ready, time.Now())
			default:
				break drain
			}
		}
		ready = ro.expire(ready, time.Now())
		if len(ready) == 0 {
			continue
		}
		run, rest = splitRun(ready, run[:0], rest[:0])
		t.handleRun(ctx, run)
		ready, rest = rest, ready
	}
}

// handleRun delivers a run (see runLength), or hands it back when its
// partition's lease was lost, then counts its events settled in their
// partition, which may be released once all of them are.
func (t *Task) handleRun(ctx context.Context, run []job) {
	todo := run
	if run[0].part.lost.Load() {
		todo = t.handBack(run)
	}
	switch len(todo) {
	case 0:
	case 1:
		t.handle(ctx, todo[0])
	default:
		t.deliver(ctx, todo)
	}
	for _, j := range run {
		j.part.inflight.Done()
	}
}

// handBack naks the jobs of a partition whose lease was lost: another
// instance may own it by now, and pushing would race it. It returns the jobs
// on their last delivery, which a nak would drop (JetStream delivers no
// more), for the caller to push anyway.
func (t *Task) handBack(jobs []job) []job {
	var last []job
	for _, j := range jobs {
		if t.lastDelivery(j) {
			last = append(last, j)
			continue
		}
		t.nak(j.msg)
	}
	return last
}

// lastDelivery reports whether JetStream will not deliver j again.
func (t *Task) lastDelivery(j job) bool { return j.delivered >= uint64(t.cfg.MaxDeliver) }

// splitRun takes the run at the front of pending: its first job and, when
// that one decodes, the later jobs of the same conversation with the same
// recipients, up to maxRun and up to the first job of the conversation that
// differs, which waits with every later one of its conversation. It appends
// the run to run and the other jobs, in their order, to rest. Each
// conversation keeps its order; jobs of other conversations between them
// do not split a run (a worker's conversations arrive interleaved, and a
// run per event pushed a busy 1:1 conversation one event at a time).
func splitRun(pending, run, rest []job) ([]job, []job) {
	first := pending[0]
	run = append(run, first)
	if first.ev == nil {
		return run, append(rest, pending[1:]...)
	}
	conv, open := first.convID(), true
	for _, j := range pending[1:] {
		same := j.ev != nil && j.convID() == conv
		if same && open && len(run) < maxRun && slices.Equal(j.ev.Recipients, first.ev.Recipients) {
			run = append(run, j)
			continue
		}
		if same {
			open = false // the rest of the conversation waits behind j
		}
		rest = append(rest, j)
	}
	return run, rest
}

// deliver pushes a run of events (see runLength; often one) to the live
// devices of their recipients and acks them: one event as a single frame
// without its origin connection, several as one batch per gateway in which
// each frame skips only its own origin (gateways older than batches take
// single frames only). A failed route lookup retries each; a gateway that
// fails does not: the messages are stored, and a client that missed a push
// syncs on reconnect or at the next seq gap.
func (t *Task) deliver(ctx context.Context, jobs []job) {
	for _, j := range jobs {
		t.keepAlive(j)
	}
	first := jobs[0].ev
	mark := t.view.mark() // before the lookup: see gatewayView
	lookupCtx, cancel := context.WithTimeout(ctx, t.cfg.PushTimeout)
	routes, err := t.routes.Lookup(lookupCtx, first.Recipients)
	cancel()
	if err != nil {
		err = fmt.Errorf("task: route lookup for conv %s msg %d (%d events): %w",
			first.Message.ConvId, first.Message.MsgId, len(jobs), err)
		for _, j := range jobs {
			t.retry(ctx, j, err)
		}
		return
	}
	t.metrics.pushed.Add(float64(len(jobs)))
	frames := make([][]byte, len(jobs))
	for i, j := range jobs {
		frames[i] = codec.EncodeFrame(protocol.Op_PUSH, 0, 0, &protocol.PushMsg{Message: j.ev.Message})
	}
	var targets map[string][]*pushrpc.Target
	var req func(addr string, ts []*pushrpc.Target) *pushrpc.PushReq
	if len(jobs) == 1 {
		targets = groupTargets(routes, first.OriginGateway, first.OriginConnId)
		req = func(_ string, ts []*pushrpc.Target) *pushrpc.PushReq {
			return &pushrpc.PushReq{Targets: ts, Frame: frames[0]}
		}
	} else {
		targets = groupTargets(routes, "", 0) // origins are skipped per frame
		req = func(addr string, ts []*pushrpc.Target) *pushrpc.PushReq {
			r := &pushrpc.PushReq{Targets: ts, Frames: make([]*pushrpc.PushFrame, len(jobs))}
			for i, j := range jobs {
				r.Frames[i] = &pushrpc.PushFrame{Frame: frames[i]}
				if j.ev.OriginGateway == addr {
					r.Frames[i].SkipConn = j.ev.OriginConnId
				}
			}
			return r
		}
	}
	t.skipVanished(ctx, targets, mark, first.Message.MsgId)
	if len(targets) > 0 {
		for _, r := range t.gateways.pushEach(ctx, targets, req) {
			t.metrics.observePush(r, r.took)
			t.logPush(first.Message, r)
			t.lapsedCallFailed(r.gateway, r.err)
		}
	}
	for _, j := range jobs {
		if err := j.msg.Ack(); err != nil {
			t.rare.Warn().Err(err).Uint64("stream_seq", j.streamSeq).Msg("ack event")
		}
	}
	// A disabled zerolog event is nil and its calls are no-ops, so the
	// per-event debug lines cost nothing at info level.
	t.log.Debug().Str("conv", first.Message.ConvId).Int64("seq", first.Message.Seq).
		Int("events", len(jobs)).Uint64("stream_seq", jobs[0].streamSeq).
		Int("gateways", len(targets)).Int("routes", len(routes)).Msg("events pushed")
}

// handle delivers one event (deliver), or dead-letters one that cannot be
// decoded.
func (t *Task) handle(ctx context.Context, j job) {
	if j.decodeErr != nil {
		t.deadLetter(ctx, j, reasonUndecodable, j.decodeErr)
		return
	}
	t.deliver(ctx, []job{j})
}

// logPush logs the outcome of one gateway call: debug when it answered,
// a sampled warning when it did not.
func (t *Task) logPush(msg *common.Message, r pushResult) {
	if r.err != nil {
		t.rare.Warn().Err(r.err).Str("gateway", r.gateway).Str("conv", msg.ConvId).
			Int64("msg", msg.MsgId).Int("targets", r.targets).
			Msg("gateway push failed; clients will sync")
		return
	}
	t.log.Debug().Str("gateway", r.gateway).Str("conv", msg.ConvId).Int64("msg", msg.MsgId).
		Int("targets", r.targets).Int32("delivered", r.resp.GetDelivered()).
		Int("missing", len(r.resp.GetMissingConns())).Msg("gateway push")
}

// keepAlive restarts j's ack timer when j waited in its queue for a good
// part of AckWait, as happens behind a slow gateway, so that JetStream does
// not redeliver an event we are about to push.
//
// Known limit: events still in the client's buffer are not covered; after a
// long stall they are redelivered and may be pushed twice. Clients drop a
// push whose seq they already have.
func (t *Task) keepAlive(j job) {
	if time.Since(j.received) < t.cfg.AckWait/3 {
		return
	}
	if err := j.msg.InProgress(); err != nil {
		t.rare.Warn().Err(err).Uint64("stream_seq", j.streamSeq).Msg("mark event in progress")
	}
}

// retry naks j with a growing delay, or dead-letters it on its last
// delivery, since JetStream would not deliver it again.
func (t *Task) retry(ctx context.Context, j job, cause error) {
	if t.lastDelivery(j) {
		t.deadLetter(ctx, j, reasonMaxDeliver, cause)
		return
	}
	t.metrics.retried.Inc()
	delay := t.cfg.nakDelay(j.delivered)
	t.log.Debug().Err(cause).Uint64("stream_seq", j.streamSeq).Uint64("delivered", j.delivered).
		Dur("delay", delay).Msg("event nak")
	if err := j.msg.NakWithDelay(delay); err != nil {
		t.rare.Warn().Err(err).Uint64("stream_seq", j.streamSeq).Msg("nak event")
	}
}
