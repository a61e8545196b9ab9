package clienttest

import (
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

func newConv(a, b int64) *conv {
	return &conv{
		id:        p2pConvID(a, b),
		members:   [2]int64{a, b},
		acks:      make(map[string]*protocol.SendResp),
		readSeq:   make(map[int64]int64),
		delivered: make(map[string]int64),
	}
}

// touch records a change of cv for SYNC_CONVS.
func (s *Server) touch(cv *conv) {
	s.version++
	cv.version = s.version
}

func (cv *conv) has(user int64) bool {
	if cv.group != nil {
		return cv.group.roles[user] != 0
	}
	return user != 0 && (cv.members[0] == user || cv.members[1] == user)
}

func deviceKey(user int64, device string) string {
	return fmt.Sprintf("%d/%s", user, device)
}

func (s *Server) delivered(c *conn, req *protocol.DeliveredReq) (codec.Body, error) {
	s.deliveredCalls++
	if len(req.Positions) > maxPositions {
		return nil, fail(common.ErrorCode_TOO_LARGE,
			fmt.Sprintf("at most %d positions", maxPositions))
	}
	for _, p := range req.Positions {
		cv := s.convs[p.ConvId]
		last, ok := s.readable(c.userID, p.ConvId)
		if cv == nil || !ok {
			return nil, fail(common.ErrorCode_FORBIDDEN, "not a member")
		}
		key := deviceKey(c.userID, c.device)
		cv.delivered[key] = max(cv.delivered[key], min(p.Seq, last))
	}
	return protocol.NewDeliveredResp(), nil
}

// syncConvs pages the user's conversations by version; the cursor is the
// version of the last one returned, so a change after it shows up again.
func (s *Server) syncConvs(c *conn, req *protocol.SyncConvsReq) (codec.Body, error) {
	var after int64
	if req.Cursor != "" {
		v, err := strconv.ParseInt(req.Cursor, 10, 64)
		if err != nil {
			return nil, fail(common.ErrorCode_BAD_REQUEST, "bad cursor")
		}
		after = v
	}
	var changed []*conv
	for _, cv := range s.convs {
		if req.Cursor == "" && s.hiddenFor(c.userID, cv) {
			continue // a new device does not list a hidden conversation
		}
		if _, ok := s.readable(c.userID, cv.id); ok && cv.version > after {
			changed = append(changed, cv)
		}
	}
	slices.SortFunc(changed, func(x, y *conv) int { return int(x.version - y.version) })
	limit := int(req.Limit)
	if limit <= 0 || limit > int(s.opts.SyncLimit) {
		limit = int(s.opts.SyncLimit)
	}
	resp := &protocol.SyncConvsResp{Cursor: req.Cursor, HasMore: len(changed) > limit}
	for _, cv := range changed[:min(limit, len(changed))] {
		resp.Convs = append(resp.Convs, s.summary(c, cv))
		resp.Cursor = strconv.FormatInt(cv.version, 10)
	}
	return resp, nil
}

func (s *Server) summary(c *conn, cv *conv) *protocol.ConvSummary {
	sum := &protocol.ConvSummary{
		ConvId:       cv.id,
		Type:         common.ConvType_P2P,
		LastSeq:      int64(len(cv.msgs)),
		ReadSeq:      cv.readSeq[c.userID],
		DeliveredSeq: cv.delivered[deviceKey(c.userID, c.device)],
		PeerUserId:   cv.members[0] + cv.members[1] - c.userID,
	}
	if cv.group != nil {
		sum.Type, sum.Name, sum.PeerUserId = common.ConvType_GROUP, cv.group.name, 0
		sum.MemberCount = int32(len(cv.group.roles))
		if left := cv.group.left[c.userID]; left > 0 {
			sum.Left, sum.LastSeq = true, left // the history ends at the leaving
		}
		if !s.opts.OmitConvDismissed {
			dismissed := cv.group.dismissedFor(c.userID)
			sum.Dismissed = &dismissed
		}
	}
	if n := sum.LastSeq; n > 0 {
		sum.LastMessage = cv.msgs[n-1]
		sum.UpdatedMs = cv.msgs[n-1].SendTimeMs
	}
	cl := cv.clears[c.userID]
	sum.ClearedSeq, sum.Hidden = cl.cleared, s.hiddenFor(c.userID, cv)
	if !sum.Left {
		for _, seq := range cv.pins {
			if seq > cl.cleared {
				sum.PinnedSeqs = append(sum.PinnedSeqs, seq)
			}
		}
	}
	if sum.LastSeq <= cl.cleared {
		sum.LastMessage = nil
	}
	for _, m := range cv.msgs[min(max(sum.ReadSeq, cl.cleared), sum.LastSeq):sum.LastSeq] {
		// Reactions do not count, as the server's unread leaves them out.
		if m.SenderId != c.userID && m.ContentType != common.ContentType_REACTION {
			sum.Unread++
		}
	}
	return sum
}

func (s *Server) markRead(c *conn, req *protocol.MarkReadReq) (codec.Body, error) {
	// A former member reads up to the leaving, as the server's.
	cv := s.convs[req.ConvId]
	last, ok := s.readable(c.userID, req.ConvId)
	if cv == nil || !ok {
		return nil, fail(common.ErrorCode_FORBIDDEN, "not a member")
	}
	seq := min(req.Seq, last)
	if seq > cv.readSeq[c.userID] {
		cv.readSeq[c.userID] = seq
		s.touch(cv)
	}
	return &protocol.MarkReadResp{ReadSeq: cv.readSeq[c.userID]}, nil
}

// DropPushes makes the server store the next n messages without pushing
// them to anyone, as a push lost on the way would: receivers see a gap.
func (s *Server) DropPushes(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropPushes = n
}

// SlowSync delays every SYNC reply by d, outside the server lock, so that
// pushes overtake the catch-up of a client, as they may on a loaded server.
func (s *Server) SlowSync(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.syncDelay = d
}

func (s *Server) delaySync() {
	s.mu.Lock()
	d := s.syncDelay
	s.mu.Unlock()
	time.Sleep(d)
}

// HoldSyncConvs makes SYNC_CONVS requests wait, unanswered, until release
// is called; the listing then reports the conversations as they are at
// release, as a listing a loaded server answers late does. The
// connection's other requests are answered meanwhile.
func (s *Server) HoldSyncConvs() (release func()) { return s.holdGate(&s.convsGate) }

// holdGate sets *gate, a field s.mu guards, to a new gate, and returns its
// release: once, it unsets *gate and opens the gate.
func (s *Server) holdGate(gate *chan struct{}) (release func()) {
	g := make(chan struct{})
	s.mu.Lock()
	*gate = g
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			*gate = nil
			s.mu.Unlock()
			close(g)
		})
	}
}

// syncConvsGate returns the gate SYNC_CONVS waits for, nil when none.
func (s *Server) syncConvsGate() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.convsGate
}

// Unsupported makes the server answer ops with UNSUPPORTED, as a server
// older than the SDK does (DELIVERED, SYNC_CONVS, MARK_READ, REFRESH, the
// group and the account ops only).
func (s *Server) Unsupported(ops ...protocol.Op) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, op := range ops {
		s.unsupported[op] = true
	}
}

// Unknown makes the server treat ops as unknown opcodes, as a gateway older
// than them does: CLOSE PROTOCOL_ERROR, then the connection closes.
func (s *Server) Unknown(ops ...protocol.Op) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, op := range ops {
		s.unknown[op] = true
	}
}

// Upgrade makes the server know ops again after Unsupported or Unknown, as
// the upgraded release does at the same address.
func (s *Server) Upgrade(ops ...protocol.Op) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, op := range ops {
		delete(s.unsupported, op)
		delete(s.unknown, op)
	}
}

func (s *Server) isUnknown(op protocol.Op) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unknown[op]
}

// DeliveredSeq is the delivered position the device of the user reported
// for conv, 0 when none.
func (s *Server) DeliveredSeq(username, device, convID string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, cv := s.users[username], s.convs[convID]
	if u == nil || cv == nil {
		return 0
	}
	return cv.delivered[deviceKey(u.id, device)]
}

// DeliveredCalls is how many DELIVERED requests reached the server.
func (s *Server) DeliveredCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deliveredCalls
}

// Requests is how many requests of op reached the server, refused ones
// (Unsupported, Unknown) included, and those still delayed (SlowSync) or
// held (HoldSyncConvs, HoldLogins) among them.
func (s *Server) Requests(op protocol.Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[op]
}

// Repush pushes the stored message seq of convID again to every connection
// of its members, as a push redelivered after a server failure comes: late,
// and to connections that logged in after the message was stored.
func (s *Server) Repush(convID string, seq int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cv := s.convs[convID]
	if cv == nil || seq < 1 || seq > int64(len(cv.msgs)) {
		return
	}
	frame := codec.EncodeFrame(protocol.Op_PUSH, 0, 0, &protocol.PushMsg{Message: cv.msgs[seq-1]})
	for c := range s.conns {
		if cv.has(c.userID) {
			c.enqueue(frame)
		}
	}
}

// ReadSeq is the read position of the user in convID, 0 when none.
func (s *Server) ReadSeq(username, convID string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, cv := s.users[username], s.convs[convID]
	if u == nil || cv == nil {
		return 0
	}
	return cv.readSeq[u.id]
}
