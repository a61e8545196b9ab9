package scenario

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// ChatConfig configures Chat. Zero fields take the default named.
type ChatConfig struct {
	// Addr is the gateway's client address; required.
	Addr string
	// Users is the number of users, in pairs (0-1, 2-3, ...), each on its own
	// connection and sending to its partner; default 100, even.
	Users int
	// Rate is the offered load in messages per second over all users;
	// default 1000.
	Rate int
	// Duration is how long messages are offered; default 10s.
	Duration time.Duration
	// MaxInFlight bounds the sends waiting for their ack; when it is reached
	// the schedule falls behind, which shows as latency. Default 20000.
	MaxInFlight int
	// Timeout bounds the wait for deliveries after the last send; default 30s.
	Timeout time.Duration
	// ServerPID, when set, is the server process whose CPU time is measured.
	ServerPID int
	// Progress receives a status line every second; nil prints none.
	Progress io.Writer
}

func (c ChatConfig) withDefaults() (ChatConfig, error) {
	if err := refuseNegative("chat", c); err != nil {
		return c, err
	}
	c.Users, c.Rate = cmpOr(c.Users, 100), cmpOr(c.Rate, 1000)
	c.MaxInFlight = cmpOr(c.MaxInFlight, 20000)
	c.Duration, c.Timeout = cmp0(c.Duration, 10*time.Second), cmp0(c.Timeout, 30*time.Second)
	if c.Addr == "" {
		return c, fmt.Errorf("%w: chat needs --addr", ErrBadConfig)
	}
	if c.Users < 2 || c.Users%2 != 0 {
		return c, fmt.Errorf("%w: chat: --users must be even and at least 2, got %d",
			ErrBadConfig, c.Users)
	}
	return c, nil
}

// chatPayload is the content of every chat message: when it was scheduled
// (ns since the run started) and who sent it, so that the receiver measures
// end-to-end latency without a lookup.
const chatPayloadSize = 12

func encodeChatPayload(scheduled time.Duration, sender int) []byte {
	b := make([]byte, chatPayloadSize)
	binary.BigEndian.PutUint64(b, uint64(scheduled))
	binary.BigEndian.PutUint32(b[8:], uint32(sender))
	return b
}

func decodeChatPayload(b []byte) (scheduled time.Duration, sender int, ok bool) {
	if len(b) != chatPayloadSize {
		return 0, 0, false
	}
	return time.Duration(binary.BigEndian.Uint64(b)), int(binary.BigEndian.Uint32(b[8:])), true
}

// chatRun is the state of one Chat.
type chatRun struct {
	cfg    ChatConfig
	users  []*chatConn
	prefix string
	tr     *tracker
	start  time.Time
	e2e    *Recorder // scheduled send -> push at the partner
	ack    *Recorder // scheduled send -> ack
	// late is the bench's own share of both: scheduled send -> SEND
	// written. A loaded machine keeps the sender from its schedule too.
	late *Recorder
	sendTally
	acked    atomic.Int64
	failed   atomic.Int64
	lastAck  atomic.Int64 // ns since start
	lastPush atomic.Int64
	pushes   atomic.Int64
	errOnce  sync.Once
	firstErr error
	// readers are the users' readers (receive); end waits for them.
	readers sync.WaitGroup
}

// sendTally counts the sends of a run over chat connections (chat, group)
// as they are written, acked, or given up at their sender's close.
type sendTally struct {
	sent     atomic.Int64
	inFlight atomic.Int64 // written and waiting for their ack
	// unacked counts the sends of users the server closed that were not
	// acked: refused once the CLOSE came, or waiting for their ack then.
	unacked atomic.Int64
}

// writeFailed accounts for a send from from whose write failed with err,
// and reports whether that is a failure of its own: it is not when the
// server had closed the sender (not sent, not acked). One that the
// sender's CLOSE gave up while it was being written is already counted as
// not acked and out of flight (senderClosed): it is only taken off the
// sent.
func (s *sendTally) writeFailed(from *chatConn, err error) (failure bool) {
	if errors.Is(err, errSendGivenUp) {
		s.sent.Add(-1)
		return false
	}
	s.inFlight.Add(-1)
	if from.closedByServer(time.Second) {
		s.sent.Add(-1)
		s.unacked.Add(1)
		return false
	}
	return true
}

// senderClosed gives up the sends of u waiting for their ack when the
// server closed u for reason: none will get one.
func (s *sendTally) senderClosed(u *chatConn, reason string) {
	n := int64(u.serverClosed(reason))
	s.inFlight.Add(-n)
	s.unacked.Add(n)
}

// Chat registers cfg.Users users in pairs, opens each pair's conversation
// (openConversations), and offers 1:1 messages at
// cfg.Rate per second for cfg.Duration, open loop: message k is due at
// k/Rate seconds after the start whether or not earlier ones were acked, and
// its latency counts from that moment, so a stalled server shows as latency
// instead of as a slower schedule. It then waits for every acked message to
// reach its recipient and checks exactly-once, in-order delivery; the
// returned error wraps ErrCheckFailed when that fails. A connection the
// server closes with a CLOSE (a slow consumer, say) fails no check of
// delivery: what was acked to it near or after the close and not delivered
// is reported as undeliverable with the reason, and its unacked sends as
// not acked; what was acked more than closeGrace before the close and not
// delivered is lost, as a live receiver would have had it.
func Chat(ctx context.Context, cfg ChatConfig) (Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Report{}, err
	}
	prefix := uniquePrefix("chat")
	users, err := dialChatUsers(ctx, cfg.Addr, prefix, cfg.Users)
	if err != nil {
		return Report{}, fmt.Errorf("chat: connect users: %w", err)
	}
	if err := openConversations(ctx, users, prefix); err != nil {
		closeChatUsers(users)
		return Report{}, fmt.Errorf("chat: open conversations: %w", err)
	}
	r := &chatRun{cfg: cfg, users: users, prefix: prefix, tr: newTracker(len(users))}
	r.start = time.Now()
	r.e2e, r.ack, r.late = NewRecorder(r.start), NewRecorder(r.start), NewRecorder(r.start)
	r.receive()
	keepCtx, stopKeeping := context.WithCancel(ctx)
	go heartbeat(keepCtx, users)
	defer func() {
		stopKeeping()
		r.end()
	}()

	stop := make(chan struct{})
	waitProgress := progress(cfg.Progress, stop, r.status)
	cpu := startCPU(cfg.ServerPID)
	sendPhase := r.offer(ctx)
	r.waitAcks(ctx)
	waitDelivered(ctx, r.tr, cfg.Timeout)
	usage := cpu.stop()
	settle(ctx)
	close(stop)
	waitProgress()
	return r.report(sendPhase, usage)
}

// warmUpContent is the content of the message that opens a pair's
// conversation; not being a chat payload, its push is ignored by the
// readers.
var warmUpContent = []byte("open")

// openConversations has the first user of each pair send one message to its
// partner and waits for the acks, before the clock starts: a pair's first
// message creates their conversation, a slower write than the messages
// after it, and the schedule measures a steady state.
func openConversations(ctx context.Context, users []*chatConn, prefix string) error {
	return forEach(len(users)/2, 16, func(pair int) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		from, to := users[2*pair], users[2*pair+1]
		var resp protocol.SendResp
		return from.request(protocol.Op_SEND, &protocol.SendReq{
			ClientMsgId: prefix + "open" + strconv.Itoa(pair), ToUserId: to.id,
			ContentType: common.ContentType_BINARY, Content: warmUpContent}, &resp)
	})
}

// offer runs the open-loop schedule; it returns how long it took to issue
// every send.
func (r *chatRun) offer(ctx context.Context) time.Duration {
	total := int64(r.cfg.Rate) * int64(r.cfg.Duration) / int64(time.Second)
	interval := time.Second / time.Duration(r.cfg.Rate)
	for k := int64(0); k < total && ctx.Err() == nil; k++ {
		due := time.Duration(k) * interval
		if wait := due - time.Since(r.start); wait > 0 {
			// Sleep granularity batches the sends of a short wait: all that
			// are due go out at the next wake-up, their latency still
			// counted from their own due time.
			time.Sleep(wait)
		}
		for r.inFlight.Load() >= int64(r.cfg.MaxInFlight) && ctx.Err() == nil {
			time.Sleep(100 * time.Microsecond) // behind schedule: shows as latency
		}
		from := r.users[k%int64(len(r.users))]
		r.inFlight.Add(1)
		r.sent.Add(1)
		msgID := r.prefix + strconv.FormatInt(k, 10)
		if err := from.send(r.users[from.index^1], due, msgID); err != nil {
			if r.writeFailed(from, err) {
				r.fail(err)
			}
			continue
		}
		now := time.Now()
		r.late.Record(now, now.Sub(r.start)-due)
	}
	return time.Since(r.start)
}

func (r *chatRun) fail(err error) {
	r.failed.Add(1)
	r.errOnce.Do(func() { r.firstErr = err })
}

// waitAcks waits until no send waits for its ack, at most cfg.Timeout.
func (r *chatRun) waitAcks(ctx context.Context) {
	deadline := time.Now().Add(r.cfg.Timeout)
	for r.inFlight.Load() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
}

// receive starts one reader per user: acks of its sends and pushes of its
// partner's messages.
func (r *chatRun) receive() {
	for _, u := range r.users {
		r.readers.Add(1)
		go func() {
			defer r.readers.Done()
			defer close(u.readDone)
			var closed *serverCloseError
			switch err := r.readConn(u); {
			case errors.As(err, &closed):
				r.serverClosed(u, closed.reason.String())
			case err != nil && !u.endedByRun(err):
				r.fail(fmt.Errorf("user %s: %w", u.name, err))
			}
		}()
	}
}

// end ends the users' connections (chatConn.endRun), waits for their
// readers and closes the connections: after it, nothing the run counts
// changes. A CLOSE the server sent before it read the run's end is
// accounted in full; what a receiver with none misses counts as lost.
// Idempotent.
func (r *chatRun) end() {
	for _, u := range r.users {
		u.endRun()
	}
	r.readers.Wait()
	closeChatUsers(r.users)
}

// serverClosed accounts for a connection the server closed with a CLOSE
// (a slow consumer, a rate limit), seen now: what the close cut off counts
// as undeliverable, not lost (tracker.cutOff), and its sends waiting for
// an ack are given up.
func (r *chatRun) serverClosed(u *chatConn, reason string) {
	r.tr.serverClosed(u.index, reason, time.Now())
	r.senderClosed(u, reason)
}

func (r *chatRun) readConn(u *chatConn) error {
	return u.readFrames(func(h codec.Header, body []byte) { r.onAck(u, h, body) },
		func(m *common.Message) { r.pushed(u.index, m) })
}

func (r *chatRun) onAck(u *chatConn, h codec.Header, body []byte) {
	due, ok := u.acked(h.RequestID)
	if !ok {
		return
	}
	defer r.inFlight.Add(-1)
	if h.Flags&codec.FlagError != 0 {
		var e protocol.ErrorResp
		_ = codec.ReadBody(body, &e)
		r.fail(fmt.Errorf("send from %s: %v %s", u.name, e.Code, e.Message))
		return
	}
	var resp protocol.SendResp
	if err := codec.ReadBody(body, &resp); err != nil {
		r.fail(fmt.Errorf("send ack to %s: %w", u.name, err))
		return
	}
	now := time.Now()
	r.ack.Record(now, now.Sub(r.start)-due)
	r.tr.acked(resp.MsgId, u.index^1, now)
	r.acked.Add(1)
	r.lastAck.Store(int64(now.Sub(r.start)))
}

func (r *chatRun) pushed(i int, m *common.Message) {
	due, sender, ok := decodeChatPayload(m.Content)
	if !ok || sender == i {
		return // not this run's message, or its sender's own copy
	}
	now := time.Now()
	r.e2e.Record(now, now.Sub(r.start)-due)
	r.tr.delivered(i, m.MsgId, m.ConvId, m.Seq)
	r.pushes.Add(1)
	r.lastPush.Store(int64(now.Sub(r.start)))
}

// heartbeat keeps every user's connection alive at half the server's
// interval until ctx is done. The acks carry a request id no send uses, so
// the readers drop them.
func heartbeat(ctx context.Context, users []*chatConn) {
	t := time.NewTicker(users[0].interval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, u := range users {
			_ = u.write(protocol.Op_HEARTBEAT, math.MaxUint32, protocol.NewHeartbeatReq())
		}
	}
}

func (r *chatRun) status() string {
	n, p99 := r.e2e.Snapshot()
	return fmt.Sprintf("chat: %4.0fs sent=%d acked=%d delivered=%d e2e_p99=%s",
		time.Since(r.start).Seconds(), r.sent.Load(), r.acked.Load(), n, FormatDuration(p99))
}

// report ends the run (end) and counts its outcome. Counting while the
// readers ran let a CLOSE read meanwhile land between two counts: a
// message its receiver never got was then counted lost and undeliverable
// at once, or lost by a run whose figures named no close.
func (r *chatRun) report(sendPhase time.Duration, usage *CPUUsage) (Report, error) {
	r.end()
	delivered, lost, duplicated, reordered := r.tr.tally()
	// Sends still waiting for their ack at the timeout: the server never
	// answered them. Those of users the server closed are not among them
	// (r.unacked).
	unacked := r.inFlight.Load()
	rep := Report{Scenario: "chat", ServerCPU: usage,
		Params: []Metric{{Name: "users", Value: float64(len(r.users))},
			{Name: "offered", Value: float64(r.cfg.Rate), Unit: "msgs/s"},
			{Name: "duration", Value: r.cfg.Duration.Seconds(), Unit: "s"}},
		Metrics: []Metric{
			{Name: "sent msgs", Value: float64(r.sent.Load())},
			{Name: "acked msgs", Value: float64(r.acked.Load())},
			{Name: "delivered msgs", Value: float64(delivered)},
			{Name: "achieved rate", Value: perSecond(r.sent.Load(), sendPhase), Unit: "msgs/s"},
			{Name: "acked rate", Value: perSecond(r.acked.Load(), time.Duration(r.lastAck.Load())),
				Unit: "msgs/s"},
			{Name: "delivered rate", Value: perSecond(r.pushes.Load(),
				time.Duration(r.lastPush.Load())), Unit: "msgs/s"},
			{Name: "failed sends", Value: float64(r.failed.Load())},
			{Name: "unacked sends", Value: float64(unacked)},
			{Name: "lost", Value: float64(lost)},
			{Name: "duplicated", Value: float64(duplicated)},
			{Name: "reordered", Value: float64(reordered)},
		},
		Latencies: []Latency{latencyOf("end to end", r.e2e), latencyOf("ack", r.ack),
			latencyOf("sent after due", r.late)}}
	rep.Metrics = append(rep.Metrics,
		closeMetrics(r.tr.closed, r.tr.undeliverable(), r.unacked.Load())...)
	closed := r.tr.closed.String()
	rep.OK = r.failed.Load() == 0 && unacked == 0 && lost == 0 && duplicated == 0 &&
		reordered == 0 && closed == ""
	switch {
	case !rep.OK && closed == "":
		return rep, fmt.Errorf("%w: %d failed sends (first: %v), %d unacked, %d lost, "+
			"%d duplicated, %d reordered", ErrCheckFailed, r.failed.Load(), r.firstErr,
			unacked, lost, duplicated, reordered)
	case !rep.OK:
		// What the closed users were sent cannot be checked: the run fails,
		// and says why, without calling those messages lost.
		return rep, fmt.Errorf("%w: the server closed %s; %d failed sends (first: %v), "+
			"%d unacked, %d lost, %d duplicated, %d reordered", ErrCheckFailed, closed,
			r.failed.Load(), r.firstErr, unacked, lost, duplicated, reordered)
	}
	return rep, nil
}
