package client

import (
	"cmp"
	"context"
	"errors"
	"time"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// origin is where a conversation first seen in a push or an ack starts:
// the stored position, else its first message. A first message stored
// before the session began may be a push redelivered late after a server
// failure, of a conversation an earlier process of this device handed over
// (the listing tells how far): the conversation then waits to be placed
// (see place). With StartAtLatest so does any conversation not begun after
// the session: the messages before the one at hand may be from after the
// session began too (a push the login's race missed). Without it, one
// whose first message at hand is later waits behind the gap.
func (s *Session) origin(convID string, first *common.Message) (int64, bool) {
	if seq, ok := s.cfg.Positions.Position(convID); ok {
		return seq, true
	}
	switch {
	case first == nil:
		return 0, true
	case first.Seq <= 1:
		return 0, first.SendTimeMs >= s.since
	}
	return 0, !s.cfg.StartAtLatest
}

// pump sequences the pushes of one connection until it ends.
func (s *Session) pump(c *Client) {
	for m := range c.Messages() {
		s.offer(m, true)
	}
}

// offer sequences m. With wait, it first waits for room in the ready queue,
// which holds back the push reader of a slow application; an ack never
// waits, since the application's own Send must not block on its reading.
func (s *Session) offer(m *common.Message, wait bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for wait && len(s.ready) >= readyLimit && !s.closing {
		s.cond.Wait()
	}
	ready, gap := s.seq.offer(m)
	s.readyLocked(ready)
	if gap {
		s.wantLocked(m.ConvId)
	}
}

// readyLocked queues sequenced messages for hand-over.
func (s *Session) readyLocked(ready []*common.Message) {
	if len(ready) > 0 {
		s.ready = append(s.ready, ready...)
		s.queued += int64(len(ready))
		s.cond.Broadcast()
	}
}

// wantLocked queues a fetch of convID's missing messages.
func (s *Session) wantLocked(convID string) {
	if s.fills[convID] {
		return
	}
	s.fills[convID] = true
	select {
	case s.fillWake <- struct{}{}:
	default:
	}
}

// emit hands ready messages to the application in order and records each
// as delivered once it is in the channel.
func (s *Session) emit() {
	defer close(s.out)
	for {
		batch := s.takeReady()
		if batch == nil {
			return
		}
		for _, m := range batch {
			select {
			case s.out <- m:
			case <-s.ctx.Done():
				return
			}
			s.cfg.Positions.SetPosition(m.ConvId, m.Seq)
			s.markDelivered(m)
		}
	}
}

// takeReady waits for ready messages; nil means stop.
func (s *Session) takeReady() []*common.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.ready) == 0 && !s.ended && !s.closing {
		s.cond.Wait()
	}
	if s.closing || len(s.ready) == 0 {
		return nil
	}
	batch := s.ready
	s.ready = nil
	s.cond.Broadcast() // room for a waiting pump
	return batch
}

func (s *Session) markDelivered(m *common.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handed++
	if s.cursor.set && s.handed >= s.cursor.at {
		s.cfg.Positions.SetCursor(s.cursor.value)
		s.cursor = pendingCursor{}
	}
	s.dirty[m.ConvId] = m.Seq
	s.dirtyCount++
	if s.dirtyCount == s.cfg.AckBatch {
		select {
		case s.ackWake <- struct{}{}:
		default:
		}
	}
}

// resume catches up after a login: the conversations changed since the
// saved cursor whose last seq is beyond ours are fetched, as are those
// holding messages behind a gap. The cursor is saved only after every fetch
// succeeded and what they brought was handed over (saveCursor), so a resume
// cut short, or a session closed or crashed before the application had
// everything, is repeated in full.
func (s *Session) resume(c *Client) error {
	cursor, supported, err := s.syncConvs(c)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if !supported {
		// An older server: fetch every conversation this device knows. One
		// that began while away stays unknown until its next push reveals
		// the gap: only SYNC_CONVS lists it, which is asked again at the
		// next resume (see syncConvs), so once the server has it, the
		// listing from the saved cursor finds what this path missed.
		for _, convID := range s.cfg.Positions.Conversations() {
			s.wantLocked(convID)
		}
	}
	for _, convID := range s.seq.gaps() {
		s.wantLocked(convID)
	}
	s.mu.Unlock()
	if err := s.fillAll(c); err != nil {
		return err
	}
	if supported {
		s.saveCursor(cursor)
	}
	return nil
}

// saveCursor saves the cursor of a completed resume once every message
// queued so far has been handed over, at once when none is waiting. Saved
// earlier, a crash before the hand-over would leave the next session's
// listing without those conversations, their messages unseen until the
// next one arrives.
func (s *Session) saveCursor(cursor string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.handed >= s.queued {
		s.cfg.Positions.SetCursor(cursor)
		s.cursor = pendingCursor{}
		return
	}
	s.cursor = pendingCursor{value: cursor, at: s.queued, set: true}
}

// syncConvs pages through the conversations changed since the saved cursor
// and queues a fetch for each one behind. supported is false when the
// server lacks SYNC_CONVS.
//
// A server that lacks it is asked again at the next resume: an older
// release met during a rolling upgrade is soon replaced, and a Session that
// stopped asking for good would, for the rest of its life, miss every
// conversation begun while it was away until a later push in it. An
// UNSUPPORTED answer costs a request per resume; a gateway that closes the
// connection for the op costs a connection, so that is asked no sooner
// than noSyncConvs says.
func (s *Session) syncConvs(c *Client) (cursor string, supported bool, err error) {
	s.mu.Lock()
	lacking := s.noSyncConvs.active(time.Now())
	s.mu.Unlock()
	if lacking {
		return "", false, nil
	}
	cursor = s.cfg.Positions.Cursor()
	for {
		resp, err := c.SyncConvs(s.ctx, cursor, s.cfg.SyncPage)
		if lacksOp(err) {
			if c.Err() != nil {
				s.mu.Lock()
				s.noSyncConvs.refused(time.Now(), s.cfg.ResyncInterval)
				s.mu.Unlock()
				return "", false, err // reconnect, then resume without it
			}
			return "", false, nil
		}
		if err != nil {
			return "", false, err
		}
		var hidden []string
		s.mu.Lock()
		s.noSyncConvs.answered()
		for _, sum := range resp.Convs {
			s.noteSummaryLocked(sum)
			if sum.Hidden {
				hidden = append(hidden, sum.ConvId)
			}
		}
		s.mu.Unlock()
		for _, convID := range hidden {
			s.event(Event{Kind: EventConvHidden, ConvID: convID})
		}
		cursor = resp.Cursor
		if !resp.HasMore || len(resp.Convs) == 0 {
			return cursor, true, nil
		}
	}
}

// noteSummaryLocked places a conversation new to this device at the
// server's delivered position for it, and queues a fetch when messages are
// missing. With StartAtLatest, one unchanged since the device started starts
// at its newest message; one changed since waits to be placed (see place).
func (s *Session) noteSummaryLocked(sum *protocol.ConvSummary) {
	if _, ok := s.cfg.Positions.Position(sum.ConvId); !ok {
		switch start := sum.DeliveredSeq; {
		case start > 0:
			// Where this device got to in an earlier process, even when a
			// push that overtook the listing began the conversation: its
			// origin (0, or unplaced with StartAtLatest) would hand those
			// messages over again, or skip what came while it was closed.
			// Kept in the store too: the next session on it lists only
			// what changed since the cursor, so a conversation with nothing
			// new is not listed again, and its next push would start it
			// at 0. Nothing of it was sequenced past start yet (a push
			// from before the login waits unplaced), so positions grow.
			if s.seq.position(sum.ConvId) < start {
				s.cfg.Positions.SetPosition(sum.ConvId, start)
			}
			s.readyLocked(s.seq.advance(sum.ConvId, start))
		case !s.cfg.StartAtLatest:
			s.readyLocked(s.seq.place(sum.ConvId, 0))
		case s.changedSinceStart(sum):
			s.seq.hold(sum.ConvId)
		default:
			// Unchanged since the login, it starts at its newest message,
			// also when a late push of an older one came first.
			if s.seq.unplaced(sum.ConvId) || s.seq.track(sum.ConvId, sum.LastSeq) {
				s.startLocked(sum.ConvId, sum.LastSeq)
				s.readyLocked(s.seq.place(sum.ConvId, sum.LastSeq))
			}
		}
	}
	if sum.ClearedSeq > s.seq.position(sum.ConvId) {
		// The user cleared the history up to there (ClearConv): the server
		// returns none of it, so the conversation moves past it instead of
		// fetching it. Messages already sequenced are handed over still.
		s.readyLocked(s.seq.skip(sum.ConvId, sum.ClearedSeq))
	}
	if sum.LastSeq > s.seq.position(sum.ConvId) || s.seq.unplaced(sum.ConvId) {
		s.wantLocked(sum.ConvId)
	}
}

// changedSinceStart reports whether the conversation's newest message was
// stored after the device's start (see StartAtLatest), by the server's
// clock.
func (s *Session) changedSinceStart(sum *protocol.ConvSummary) bool {
	at := sum.UpdatedMs
	if sum.LastMessage != nil {
		at = sum.LastMessage.SendTimeMs
	}
	return sum.LastSeq > 0 && at >= s.start
}

// place sets where an unplaced conversation starts: without StartAtLatest
// at its first message; with it, after its newest message stored before
// the device's start (latestBefore). So a conversation begun or
// continued just after the login, whose messages the listing reports
// before their pushes come (or the login's race kept from being pushed),
// is handed over from there, and older history is not.
func (s *Session) place(c *Client, convID string) error {
	var start int64
	if s.cfg.StartAtLatest {
		var err error
		if start, err = s.latestBefore(c, convID); err != nil {
			return err
		}
	}
	s.mu.Lock()
	if s.seq.unplaced(convID) {
		s.startLocked(convID, start)
	}
	s.readyLocked(s.seq.place(convID, start))
	s.mu.Unlock()
	return nil
}

// latestBefore returns the seq of convID's newest message stored before the
// device's start, found by paging back from the newest; when every
// message the user may read is newer, the seq before the oldest of them.
func (s *Session) latestBefore(c *Client, convID string) (int64, error) {
	for before := LatestSeq; ; {
		resp, err := c.SyncBefore(s.ctx, convID, before, s.cfg.SyncPage)
		if CodeOf(err) == common.ErrorCode_NOT_FOUND {
			return 0, nil // no message stored yet
		}
		if err != nil {
			return 0, err
		}
		msgs := resp.Messages
		if len(msgs) == 0 {
			return 0, nil
		}
		if i := lastBefore(msgs, s.start); i >= 0 {
			return msgs[i].Seq, nil
		}
		if !resp.HasMore {
			// Every message this user may read is new: the first of them
			// may follow history from before a join, which is not theirs.
			return msgs[0].Seq - 1, nil
		}
		if msgs[0].Seq >= before {
			// A page that does not move back would repeat forever.
			return 0, errorf("%w: sync of %s before %d returned seq %d",
				ErrProtocol, convID, before, msgs[0].Seq)
		}
		before = msgs[0].Seq
	}
}

// startLocked records where StartAtLatest started convID, passing over the
// history up to seq without handing it over: in the store and, with
// DELIVERED, on the server, as if handed over. Without it the next process
// of this device would know no position and start the conversation at its
// newest message then, skipping what came in between. It runs before any
// message of convID is ready, so positions only grow.
func (s *Session) startLocked(convID string, seq int64) {
	if seq <= 0 {
		return
	}
	s.cfg.Positions.SetPosition(convID, seq)
	s.dirty[convID] = max(s.dirty[convID], seq)
}

// lastBefore returns the index of the newest of msgs (oldest first) stored
// before ms, or -1.
func lastBefore(msgs []*common.Message, ms int64) int {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].SendTimeMs < ms {
			return i
		}
	}
	return -1
}

// fillAll fetches the missing messages of every queued conversation. A
// conversation whose fetch fails is queued again for the next connection,
// unless the server refused it (passOver).
func (s *Session) fillAll(c *Client) error {
	for {
		convID := s.takeFill()
		if convID == "" {
			return nil
		}
		err := s.fill(c, convID)
		switch {
		case err == nil:
			s.mu.Lock()
			delete(s.refused, convID)
			s.mu.Unlock()
		case refusesConv(err) && c.Err() == nil:
			s.passOver(convID, err)
		default:
			s.mu.Lock()
			s.wantLocked(convID)
			s.mu.Unlock()
			return err
		}
	}
}

// refusesConv reports whether err, a fetch's error, is the server refusing
// the conversation itself rather than failing: no reconnect changes it.
func refusesConv(err error) bool {
	code := CodeOf(err)
	return code == common.ErrorCode_FORBIDDEN || code == common.ErrorCode_NOT_FOUND
}

// passOver leaves convID out of this catch-up after the server refused
// its fetch. Queued again, a conversation the user may no longer read
// failed every resume, and the Session reconnected for ever without
// catching up on the others. Its next change, or a gap found at a resync,
// asks again; the application hears of it once (EventConvRefused), until
// a fetch of it succeeds.
func (s *Session) passOver(convID string, err error) {
	s.mu.Lock()
	reported := s.refused[convID]
	s.refused[convID] = true
	s.mu.Unlock()
	if !reported {
		s.event(Event{Kind: EventConvRefused, ConvID: convID,
			Err: errorf("%w: %s: %w", ErrConvRefused, convID, err)})
	}
}

func (s *Session) takeFill() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for convID := range s.fills {
		delete(s.fills, convID)
		return convID
	}
	return ""
}

// fill fetches convID forward from the position, page by page, up to the
// conversation's last seq as the first page reports it, and on while
// messages are held behind a gap. Each page starts at the current position,
// which pushes may have moved meanwhile. Later messages come as pushes:
// chasing has_more instead would never end in a conversation that grows
// faster than pages are fetched. There is no page cap: a device offline
// for long fetches all it missed, since the promise is every message; the
// ready queue's bound paces it to the application.
func (s *Session) fill(c *Client, convID string) error {
	s.mu.Lock()
	unplaced := s.seq.unplaced(convID)
	s.mu.Unlock()
	if unplaced {
		if err := s.place(c, convID); err != nil {
			return err
		}
	}
	var target int64 // 0 until known; an older server never says
	for {
		after := s.Position(convID)
		resp, err := c.Sync(s.ctx, convID, after, s.cfg.SyncPage)
		if CodeOf(err) == common.ErrorCode_NOT_FOUND {
			return nil // no message stored yet
		}
		if err != nil {
			return err
		}
		if len(resp.Messages) > 0 && resp.Messages[0].Seq > after+1 {
			// The server returns every message this user may read after a
			// position: the seqs it passes over are not theirs (history
			// from before they joined a group), and the conversation
			// moves past them.
			s.mu.Lock()
			s.readyLocked(s.seq.skip(convID, resp.Messages[0].Seq-1))
			s.mu.Unlock()
		}
		for _, m := range resp.Messages {
			s.offer(m, true)
		}
		if target == 0 {
			target = resp.LastSeq
		}
		if !resp.HasMore || len(resp.Messages) == 0 || s.caughtUp(convID, target) {
			return nil
		}
		if last := resp.Messages[len(resp.Messages)-1]; last.Seq <= after {
			// A page that does not move forward would repeat forever.
			return errorf("%w: sync of %s after %d returned seq %d",
				ErrProtocol, convID, after, last.Seq)
		}
	}
}

// caughtUp reports whether convID has every seq up to target and nothing
// held behind a gap; a zero target is never reached.
func (s *Session) caughtUp(convID string, target int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.seq.convs[convID]
	return target > 0 && st != nil && st.next >= target && len(st.held) == 0
}

// maxLackedWait bounds how long a server's refusal of an op is remembered
// (lackedOp): against a server that stays older, a request an hour is lost
// to asking, or a connection when a gateway closes it for the op.
const maxLackedWait = time.Hour

// lackedOp remembers, for a while after each refusal, that the server lacks
// an op: a release older than it, met during a rolling upgrade, which is
// soon replaced. Once the while is over the op is asked again, so that the
// upgraded server gets it back; a Session that stopped asking for good
// would do without it for the rest of its life. The while starts at the
// base given (the ResyncInterval) and doubles with each refusal in a row,
// up to maxLackedWait. Its zero value remembers nothing. Guarded by the
// Session's mu.
type lackedOp struct {
	until time.Time
	wait  time.Duration
}

// active reports whether a refusal is remembered at now.
func (l *lackedOp) active(now time.Time) bool { return now.Before(l.until) }

// refused remembers a refusal at now.
func (l *lackedOp) refused(now time.Time, base time.Duration) {
	l.wait = min(max(2*l.wait, base), maxLackedWait)
	l.until = now.Add(l.wait)
}

// answered forgets the refusals in a row: the server has the op.
func (l *lackedOp) answered() { l.wait = 0 }

// lacksOp reports whether err, the error of a request, says that the
// server does not know its op: UNSUPPORTED, or a gateway older than the op
// closing the connection for an unknown opcode (PROTOCOL_ERROR), since the
// SDK sends no malformed frame. Only a close that failed the request
// counts, and not one beside which the server had answered the op on the
// connection (closedBeside): those were for another frame, such as an op
// of the application's that the gateway does not know, and the op would
// not be asked for a while.
func lacksOp(err error) bool {
	if CodeOf(err) == common.ErrorCode_UNSUPPORTED {
		return true
	}
	var beside closedBeside
	return closedFor(err, protocol.CloseReason_PROTOCOL_ERROR) && !errors.As(err, &beside)
}

// flushAcks sends the delivered positions gathered since the last flush,
// unless a refusal of DELIVERED is remembered (noDelivered).
func (s *Session) flushAcks(c *Client) {
	s.mu.Lock()
	lacking := s.noDelivered.active(time.Now())
	s.mu.Unlock()
	if !lacking {
		s.sendAcks(s.ctx, c)
	}
}

// maxDeliveredPositions is the server's bound on the positions of one
// DELIVERED (TOO_LARGE beyond it). At most 64 bytes of conversation id
// each, a full request stays well under the frame limit too.
const maxDeliveredPositions = 500

// sendAcks sends the delivered positions in requests of at most
// maxDeliveredPositions, and none over the client's SendLimit: a device
// handed messages of more conversations than fit between two flushes would
// otherwise be refused every flush, and acknowledge nothing again. A
// request the server refuses as too large all the same (its limit is lower)
// halves the batches from then on; a single position it refuses is given
// up, since it never fits. A server without DELIVERED is asked again once
// noDelivered allows (flushAcks), with the positions gathered meanwhile:
// left unreported, its position for the device stays behind, and the
// device's next process, on a store of its own, hands the same messages
// over again. Close's final DELIVERED asks regardless (finalAck).
func (s *Session) sendAcks(ctx context.Context, c *Client) {
	s.mu.Lock()
	if len(s.dirty) == 0 {
		s.mu.Unlock()
		return
	}
	positions := make([]*protocol.ConvPos, 0, len(s.dirty))
	for convID, seq := range s.dirty {
		positions = append(positions, &protocol.ConvPos{ConvId: convID, Seq: seq})
	}
	clear(s.dirty)
	s.dirtyCount = 0
	most := cmp.Or(s.ackBatch, maxDeliveredPositions)
	s.mu.Unlock()

	for len(positions) > 0 {
		n := fitPositions(positions, min(most, maxDeliveredPositions), c.opts.SendLimit)
		err := c.Delivered(ctx, positions[:n])
		switch {
		case lacksOp(err):
			s.mu.Lock()
			s.noDelivered.refused(time.Now(), s.cfg.ResyncInterval)
			s.mu.Unlock()
			s.keepDirty(positions)
			return
		case errors.Is(err, ErrTooLarge) && n > 1:
			s.mu.Lock()
			s.ackBatch = n / 2
			s.mu.Unlock()
			s.keepDirty(positions)
			return
		case errors.Is(err, ErrTooLarge):
			s.keepDirty(positions[1:])
			return
		case err != nil:
			s.keepDirty(positions)
			return
		}
		s.mu.Lock()
		s.noDelivered.answered()
		s.mu.Unlock()
		positions = positions[n:]
	}
}

// fitPositions returns how many of positions, at least one and at most
// most, one DELIVERED carries without its body going over limit bytes.
func fitPositions(positions []*protocol.ConvPos, most, limit int) int {
	// The request is a struct holding one list: a field header, a list
	// header and a stop byte (ours: deliveredOverhead), then the elements.
	const deliveredOverhead = 16
	size := deliveredOverhead
	for i, p := range positions[:min(len(positions), most)] {
		if size += p.BLength(); size > limit && i > 0 {
			return i
		}
	}
	return min(len(positions), most)
}

// keepDirty puts positions not acknowledged back, to be sent with the next
// flush; newer positions win.
func (s *Session) keepDirty(positions []*protocol.ConvPos) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range positions {
		s.dirty[p.ConvId] = max(s.dirty[p.ConvId], p.Seq)
	}
}
