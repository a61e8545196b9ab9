package scenario

import (
	"context"
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

// GroupConfig configures Group. Zero fields take the default named.
type GroupConfig struct {
	// Addr is the gateway's client address; required.
	Addr string
	// Groups is the number of groups, with no member in common; default 1.
	Groups int
	// Size is the members of each group, owner included; default 200. The
	// server caps it (logic's --max-group-members, 500 by default).
	Size int
	// Online is the share of each group's members logged in, each on one
	// connection, from the first send to the end; default 0.5, and never
	// fewer than 2 a group (a sender and a receiver).
	Online float64
	// Rate is the offered load in group messages per second over all
	// groups; default 200. Each message is pushed to the group's other
	// online members.
	Rate int
	// Duration is how long messages are offered; default 10s.
	Duration time.Duration
	// MaxInFlight bounds the sends waiting for their ack; default 20000.
	MaxInFlight int
	// Timeout bounds the wait for acks and deliveries after the last send;
	// default 30s.
	Timeout time.Duration
	// ServerPID, when set, is the server process whose CPU time is measured.
	ServerPID int
	// Progress receives a status line every second; nil prints none.
	Progress io.Writer
}

func (c GroupConfig) withDefaults() (GroupConfig, error) {
	if err := refuseNegative("group", c); err != nil {
		return c, err
	}
	c.Groups, c.Size, c.Rate = cmpOr(c.Groups, 1), cmpOr(c.Size, 200), cmpOr(c.Rate, 200)
	c.MaxInFlight = cmpOr(c.MaxInFlight, 20000)
	c.Duration, c.Timeout = cmp0(c.Duration, 10*time.Second), cmp0(c.Timeout, 30*time.Second)
	if c.Online == 0 {
		c.Online = 0.5
	}
	switch {
	case c.Addr == "":
		return c, fmt.Errorf("%w: group needs --addr", ErrBadConfig)
	case c.Size < 2:
		return c, fmt.Errorf("%w: group: --size must be at least 2 members, got %d",
			ErrBadConfig, c.Size)
	case c.Online > 1:
		return c, fmt.Errorf("%w: group: --online must be at most 1 (a share), got %g",
			ErrBadConfig, c.Online)
	}
	return c, nil
}

// onlinePerGroup is how many members of each group log in.
func (c GroupConfig) onlinePerGroup() int {
	return min(max(int(math.Round(c.Online*float64(c.Size))), 2), c.Size)
}

// benchGroup is one group of a Group run.
type benchGroup struct {
	id     string
	online []*groupMember

	// ackedN counts acked holds; the receivers' completion is polled from it.
	ackedN atomic.Int64
	mu     sync.Mutex
	acked  []ackedSeq // this run's messages the server acked
}

// ackedSeq is one acked group message: its seq, its sender and when the
// bench saw its ack.
type ackedSeq struct {
	seq     int64
	sender  *groupMember
	ackedAt time.Time
}

// groupMember is one online member: its connection, and what its reader saw.
type groupMember struct {
	*chatConn
	group *benchGroup

	// ackedOwn counts this member's own acked messages, which it is not
	// pushed.
	ackedOwn atomic.Int64
	// received counts the run's messages pushed here, each seq once.
	received atomic.Int64

	// mu guards the fields below: the reader takes it once per push, the
	// final tally once per member.
	mu         sync.Mutex
	seen       seqSet
	lastSeq    int64
	duplicated int
	reordered  int
}

// seqSet is a set of seqs, a bit each: a group's seqs are dense from 1.
type seqSet []uint64

// add adds seq and reports whether it was new.
func (s *seqSet) add(seq int64) bool {
	word, bit := int(seq/64), uint64(1)<<(seq%64)
	for word >= len(*s) {
		*s = append(*s, 0)
	}
	if (*s)[word]&bit != 0 {
		return false
	}
	(*s)[word] |= bit
	return true
}

func (s seqSet) has(seq int64) bool {
	word := int(seq / 64)
	return word < len(s) && s[word]&(uint64(1)<<(seq%64)) != 0
}

// groupRun is the state of one Group.
type groupRun struct {
	cfg     GroupConfig
	groups  []*benchGroup
	members []*groupMember // online members of every group, in index order
	prefix  string
	start   time.Time
	e2e     *Recorder // scheduled send -> push at a member
	ack     *Recorder // scheduled send -> ack
	// closed holds the members the server closed, by index: what was acked
	// to their group near or after the close and did not reach them is
	// undeliverable, not lost, and nobody waits for it.
	closed *closures

	sendTally
	acked      atomic.Int64
	failed     atomic.Int64
	deliveries atomic.Int64
	lastAck    atomic.Int64 // ns since start
	lastPush   atomic.Int64

	errMu    sync.Mutex
	firstErr error
	// readers are the members' readers (receive); end waits for them.
	readers sync.WaitGroup
}

// Group registers cfg.Groups*cfg.Size users, creates cfg.Groups groups of
// cfg.Size members, logs in the cfg.Online share of each group's members (one
// connection each) and has those members send group messages at cfg.Rate per
// second for cfg.Duration, open loop as in Chat: message k is due k/Rate
// seconds after the start and its latency counts from then. Every online
// member's connection receives the pushes of its group's messages except its
// own. It then waits for every acked message to reach every other online
// member of its group, and checks exactly-once delivery in seq order per
// group and member; the returned error wraps ErrCheckFailed when that fails.
// A member the server closes with a CLOSE is accounted as in Chat: the run
// fails naming the closes, what its group's messages acked near or after
// the close did not bring it is undeliverable, not lost, and its sends
// that got no ack are not acked, not failed.
func Group(ctx context.Context, cfg GroupConfig) (Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Report{}, err
	}
	r := &groupRun{cfg: cfg, prefix: uniquePrefix("group"), closed: newClosures()}
	if err := r.setUp(ctx); err != nil {
		r.closeAll()
		return Report{}, fmt.Errorf("group: %w", err)
	}
	conns := make([]*chatConn, len(r.members))
	for i, m := range r.members {
		conns[i] = m.chatConn
	}
	r.start = time.Now()
	r.e2e, r.ack = NewRecorder(r.start), NewRecorder(r.start)
	r.receive()
	keepCtx, stopKeeping := context.WithCancel(ctx)
	go heartbeat(keepCtx, conns)
	defer func() {
		stopKeeping()
		r.end()
	}()

	stop := make(chan struct{})
	waitProgress := progress(cfg.Progress, stop, r.status)
	cpu := startCPU(cfg.ServerPID)
	sendPhase := r.offer(ctx)
	r.waitAcks(ctx)
	r.waitDelivered(ctx)
	usage := cpu.stop()
	settle(ctx)
	close(stop)
	waitProgress()
	return r.report(sendPhase, usage)
}

// setUp registers the users, logs the online members in and creates the
// groups, each owned by its first member.
func (r *groupRun) setUp(ctx context.Context) error {
	cfg := r.cfg
	r.say("group: registering %d users, logging in %d, creating %d groups (argon2: slow)",
		cfg.Groups*cfg.Size, cfg.Groups*cfg.onlinePerGroup(), cfg.Groups)
	creds, err := registerSpread(ctx, cfg.Addr, r.prefix, cfg.Groups*cfg.Size)
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	if err := r.logIn(ctx, creds); err != nil {
		return err
	}
	for gi, g := range r.groups {
		ids := make([]int64, 0, cfg.Size-1)
		for _, c := range creds[gi*cfg.Size+1 : (gi+1)*cfg.Size] {
			ids = append(ids, c.id)
		}
		var resp protocol.GroupChangeResp
		owner := g.online[0]
		err := owner.request(protocol.Op_CREATE_GROUP, &protocol.CreateGroupReq{
			ClientMsgId: r.prefix + "create" + strconv.Itoa(gi),
			Name:        r.prefix + strconv.Itoa(gi), MemberIds: ids}, &resp)
		if err != nil {
			return fmt.Errorf("create group %d: %w", gi, err)
		}
		g.id = resp.ConvId
	}
	return nil
}

// say writes one line to cfg.Progress, if set.
func (r *groupRun) say(format string, args ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, format+"\n", args...)
	}
}

// logIn logs in the first onlinePerGroup members of every group, 16 at a
// time, each from the source address of its index.
func (r *groupRun) logIn(ctx context.Context, creds []credential) error {
	perGroup := r.cfg.onlinePerGroup()
	r.groups = make([]*benchGroup, r.cfg.Groups)
	r.members = make([]*groupMember, r.cfg.Groups*perGroup)
	for gi := range r.groups {
		g := &benchGroup{online: make([]*groupMember, perGroup)}
		r.groups[gi] = g
		for k := range perGroup {
			m := &groupMember{group: g}
			g.online[k], r.members[gi*perGroup+k] = m, m
		}
	}
	src := newSources()
	return forEach(len(r.members), 16, func(i int) error {
		m := r.members[i]
		var err error
		m.chatConn, err = loginChatConn(ctx, r.cfg.Addr, creds[i/perGroup*r.cfg.Size+i%perGroup], i, src)
		return err
	})
}

// loginChatConn logs a registered user in from the source address of index,
// retrying with a growing pause while the server asks to retry later.
func loginChatConn(ctx context.Context, addr string, cred credential, index int,
	src sources) (*chatConn, error) {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		bc, err := dialFrom(ctx, addr, src.ip(index))
		if err != nil {
			return nil, err
		}
		err = bc.login(cred, "bench")
		if err == nil {
			return &chatConn{benchConn: bc, index: index, name: cred.username,
				id: bc.userID, pending: make(map[uint32]time.Duration),
				readDone: make(chan struct{})}, nil
		}
		_ = bc.conn.Close()
		if !errors.Is(err, errRefused) || attempt == maxRefusals {
			return nil, fmt.Errorf("user %s: %w", cred.username, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
			backoff = min(2*backoff, 2*time.Second)
		}
	}
}

func (r *groupRun) closeAll() {
	for _, m := range r.members {
		if m != nil && m.chatConn != nil {
			_ = m.conn.Close()
		}
	}
}

// offer runs the open-loop schedule: message k goes to group k%Groups from
// its online members in turn. It returns how long issuing every send took.
func (r *groupRun) offer(ctx context.Context) time.Duration {
	total := int64(r.cfg.Rate) * int64(r.cfg.Duration) / int64(time.Second)
	interval := time.Second / time.Duration(r.cfg.Rate)
	groups := int64(len(r.groups))
	for k := int64(0); k < total && ctx.Err() == nil; k++ {
		due := time.Duration(k) * interval
		if wait := due - time.Since(r.start); wait > 0 {
			time.Sleep(wait) // sends due meanwhile go out together, as in Chat
		}
		for r.inFlight.Load() >= int64(r.cfg.MaxInFlight) && ctx.Err() == nil {
			time.Sleep(100 * time.Microsecond) // behind schedule: shows as latency
		}
		g := r.groups[k%groups]
		from := g.online[(k/groups)%int64(len(g.online))]
		r.inFlight.Add(1)
		r.sent.Add(1)
		err := from.sendReq(due, &protocol.SendReq{ClientMsgId: r.prefix + strconv.FormatInt(k, 10),
			ConvId: g.id, ContentType: common.ContentType_BINARY,
			Content: encodeChatPayload(due, from.index)})
		if err != nil && r.writeFailed(from.chatConn, err) {
			r.fail(err)
		}
	}
	return time.Since(r.start)
}

func (r *groupRun) fail(err error) {
	r.failed.Add(1)
	r.errMu.Lock()
	defer r.errMu.Unlock()
	if r.firstErr == nil {
		r.firstErr = err
	}
}

// firstError returns the first failure; readers may still be failing.
func (r *groupRun) firstError() error {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	return r.firstErr
}

// waitAcks waits until no send waits for its ack, at most cfg.Timeout.
func (r *groupRun) waitAcks(ctx context.Context) {
	deadline := time.Now().Add(r.cfg.Timeout)
	for r.inFlight.Load() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
}

// waitDelivered polls until every online member the server did not close
// received every acked message of its group but its own, at most
// cfg.Timeout.
func (r *groupRun) waitDelivered(ctx context.Context) {
	deadline := time.Now().Add(r.cfg.Timeout)
	for !r.complete() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *groupRun) complete() bool {
	for _, m := range r.members {
		if r.closed.has(m.index) {
			continue // owed nothing more
		}
		own := m.ackedOwn.Load()
		if m.received.Load() < m.group.ackedN.Load()-own {
			return false
		}
	}
	return true
}

// receive starts one reader per online member.
func (r *groupRun) receive() {
	for _, m := range r.members {
		r.readers.Add(1)
		go func() {
			defer r.readers.Done()
			defer close(m.readDone)
			var closed *serverCloseError
			switch err := r.readConn(m); {
			case errors.As(err, &closed):
				r.serverClosed(m, closed.reason.String())
			case err != nil && !m.endedByRun(err):
				r.fail(fmt.Errorf("member %s: %w", m.name, err))
			}
		}()
	}
}

// end ends the members' connections, waits for their readers and closes
// the connections: after it, nothing the run counts changes (see
// chatRun.end). Idempotent.
func (r *groupRun) end() {
	for _, m := range r.members {
		if m != nil && m.chatConn != nil {
			m.endRun()
		}
	}
	r.readers.Wait()
	r.closeAll()
}

// serverClosed accounts for a member the server closed with a CLOSE, seen
// now: what the close cut off counts as undeliverable (closures.cutOff),
// and its sends waiting for an ack are given up.
func (r *groupRun) serverClosed(m *groupMember, reason string) {
	r.closed.add(m.index, reason, time.Now())
	r.senderClosed(m.chatConn, reason)
}

func (r *groupRun) readConn(m *groupMember) error {
	return m.readFrames(func(h codec.Header, body []byte) { r.onAck(m, h, body) },
		func(msg *common.Message) { r.pushed(m, msg) })
}

func (r *groupRun) onAck(m *groupMember, h codec.Header, body []byte) {
	due, ok := m.acked(h.RequestID)
	if !ok {
		return
	}
	defer r.inFlight.Add(-1)
	if h.Flags&codec.FlagError != 0 {
		var e protocol.ErrorResp
		_ = codec.ReadBody(body, &e)
		r.fail(fmt.Errorf("send from %s: %v %s", m.name, e.Code, e.Message))
		return
	}
	var resp protocol.SendResp
	if err := codec.ReadBody(body, &resp); err != nil {
		r.fail(fmt.Errorf("send ack to %s: %w", m.name, err))
		return
	}
	now := time.Now()
	r.ack.Record(now, now.Sub(r.start)-due)
	g := m.group
	g.mu.Lock()
	g.acked = append(g.acked, ackedSeq{seq: resp.Seq, sender: m, ackedAt: now})
	g.mu.Unlock()
	// ackedN before ackedOwn, read in the other order by complete(): a
	// member's count of its own acks is then never ahead of its group's,
	// so the deliveries it waits for are never undercounted.
	g.ackedN.Add(1)
	m.ackedOwn.Add(1)
	r.acked.Add(1)
	r.lastAck.Store(int64(now.Sub(r.start)))
}

// pushed records one push at member m: every seq of the group counts for
// order and duplicates, the run's messages also for latency and delivery.
func (r *groupRun) pushed(m *groupMember, msg *common.Message) {
	if msg.ConvId != m.group.id {
		r.fail(fmt.Errorf("member %s pushed a message of %q", m.name, msg.ConvId))
		return
	}
	m.mu.Lock()
	fresh := m.seen.add(msg.Seq)
	switch {
	case !fresh:
		m.duplicated++
	case msg.Seq < m.lastSeq:
		m.reordered++
	}
	m.lastSeq = max(m.lastSeq, msg.Seq)
	m.mu.Unlock()

	due, _, ok := decodeChatPayload(msg.Content)
	if !ok || msg.ContentType != common.ContentType_BINARY || !fresh {
		return // a group event, or a copy already counted
	}
	now := time.Now()
	r.e2e.Record(now, now.Sub(r.start)-due)
	m.received.Add(1)
	r.deliveries.Add(1)
	r.lastPush.Store(int64(now.Sub(r.start)))
}

// tally counts, over every acked message and every other online member of
// its group, the deliveries missing: undeliverable, per close reason, when
// the member's close cut the message off (closures.cutOff), else lost. It
// sums the members' duplicates and reorders.
func (r *groupRun) tally() (lost, duplicated, reordered int, undeliverable map[string]int) {
	undeliverable = make(map[string]int)
	for _, g := range r.groups {
		g.mu.Lock()
		acked := g.acked
		g.mu.Unlock()
		for _, m := range g.online {
			m.mu.Lock()
			for _, a := range acked {
				if a.sender == m || m.seen.has(a.seq) {
					continue
				}
				if reason, cut := r.closed.cutOff(m.index, a.ackedAt); cut {
					undeliverable[reason]++
				} else {
					lost++
				}
			}
			duplicated += m.duplicated
			reordered += m.reordered
			m.mu.Unlock()
		}
	}
	return lost, duplicated, reordered, undeliverable
}

func (r *groupRun) status() string {
	n, p99 := r.e2e.Snapshot()
	took := time.Since(r.start)
	return fmt.Sprintf("group: %4.0fs sent=%d acked=%d deliveries=%d (%.0f/s) p99=%s",
		took.Seconds(), r.sent.Load(), r.acked.Load(), n, perSecond(int64(n), took),
		FormatDuration(p99))
}

// report ends the run (end) and counts its outcome, as chatRun.report.
func (r *groupRun) report(sendPhase time.Duration, usage *CPUUsage) (Report, error) {
	r.end()
	lost, duplicated, reordered, undeliverable := r.tally()
	online := r.cfg.onlinePerGroup()
	// Sends still waiting for their ack at the timeout: their ack is lost.
	// Those of members the server closed are not among them (unacked).
	unacked := r.inFlight.Load()
	rep := Report{Scenario: "group", ServerCPU: usage,
		Params: []Metric{{Name: "groups", Value: float64(r.cfg.Groups)},
			{Name: "size", Value: float64(r.cfg.Size)},
			{Name: "online", Value: float64(online)},
			{Name: "offered", Value: float64(r.cfg.Rate), Unit: "msgs/s"},
			{Name: "duration", Value: r.cfg.Duration.Seconds(), Unit: "s"}},
		Metrics: []Metric{
			{Name: "sent msgs", Value: float64(r.sent.Load())},
			{Name: "acked msgs", Value: float64(r.acked.Load())},
			{Name: "deliveries", Value: float64(r.deliveries.Load())},
			{Name: "expected deliveries", Value: float64(r.acked.Load() * int64(online-1))},
			{Name: "achieved rate", Value: perSecond(r.sent.Load(), sendPhase), Unit: "msgs/s"},
			{Name: "acked rate", Value: perSecond(r.acked.Load(), time.Duration(r.lastAck.Load())),
				Unit: "msgs/s"},
			{Name: "delivery rate", Value: perSecond(r.deliveries.Load(),
				time.Duration(r.lastPush.Load())), Unit: "deliveries/s"},
			{Name: "failed sends", Value: float64(r.failed.Load())},
			{Name: "unacked sends", Value: float64(unacked)},
			{Name: "lost", Value: float64(lost)},
			{Name: "duplicated", Value: float64(duplicated)},
			{Name: "reordered", Value: float64(reordered)},
		},
		Latencies: []Latency{latencyOf("delivery", r.e2e), latencyOf("ack", r.ack)}}
	rep.Metrics = append(rep.Metrics, closeMetrics(r.closed, undeliverable, r.unacked.Load())...)
	closed := r.closed.String()
	rep.OK = r.failed.Load() == 0 && unacked == 0 && lost == 0 && duplicated == 0 &&
		reordered == 0 && closed == ""
	switch {
	case rep.OK:
		return rep, nil
	case closed == "":
		return rep, fmt.Errorf("%w: %d failed sends (first: %v), %d unacked, %d lost, "+
			"%d duplicated, %d reordered", ErrCheckFailed, r.failed.Load(), r.firstError(),
			unacked, lost, duplicated, reordered)
	default:
		// What the closed members were sent cannot be checked: the run
		// fails, and says why, without calling those messages lost.
		return rep, fmt.Errorf("%w: the server closed %s; %d failed sends (first: %v), "+
			"%d unacked, %d lost, %d duplicated, %d reordered", ErrCheckFailed, closed,
			r.failed.Load(), r.firstError(), unacked, lost, duplicated, reordered)
	}
}
