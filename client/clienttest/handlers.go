package clienttest

import (
	"cmp"
	"fmt"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// handle runs one request under the server lock, which keeps seqs and pushes
// in one order; the fake trades throughput for obviousness.
func (s *Server) handle(c *conn, op protocol.Op, body []byte) (codec.Body, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if op != protocol.Op_REGISTER && op != protocol.Op_LOGIN && c.userID == 0 {
		return nil, fail(common.ErrorCode_UNAUTHENTICATED, "log in first")
	}
	switch op {
	case protocol.Op_HEARTBEAT:
		s.heartbeats++
		return &protocol.HeartbeatResp{ServerTimeMs: time.Now().UnixMilli()}, nil
	case protocol.Op_REGISTER:
		req := protocol.NewRegisterReq()
		return readThen(body, req, func() (codec.Body, error) { return s.register(req) })
	case protocol.Op_LOGIN:
		req := protocol.NewLoginReq()
		return readThen(body, req, func() (codec.Body, error) { return s.login(c, req) })
	case protocol.Op_SEND:
		req := protocol.NewSendReq()
		return readThen(body, req, func() (codec.Body, error) { return s.send(c, req) })
	case protocol.Op_SYNC:
		req := protocol.NewSyncReq()
		return readThen(body, req, func() (codec.Body, error) { return s.sync(c, req) })
	case protocol.Op_REFRESH:
		if s.unsupported[op] {
			return nil, fail(common.ErrorCode_UNSUPPORTED, fmt.Sprintf("op %s", op))
		}
		req := protocol.NewRefreshReq()
		return readThen(body, req, func() (codec.Body, error) { return s.refreshTokens(c, req) })
	case protocol.Op_GET_USER:
		req := protocol.NewGetUserReq()
		return readThen(body, req, func() (codec.Body, error) { return s.getUser(req) })
	}
	return s.handleConvOps(c, op, body)
}

// handleConvOps serves the ops of delivered positions, conversation sync and
// read positions (convs.go).
func (s *Server) handleConvOps(c *conn, op protocol.Op, body []byte) (codec.Body, error) {
	if s.unsupported[op] {
		return nil, fail(common.ErrorCode_UNSUPPORTED, fmt.Sprintf("op %s", op))
	}
	switch op {
	case protocol.Op_DELIVERED:
		req := protocol.NewDeliveredReq()
		return readThen(body, req, func() (codec.Body, error) { return s.delivered(c, req) })
	case protocol.Op_SYNC_CONVS:
		req := protocol.NewSyncConvsReq()
		return readThen(body, req, func() (codec.Body, error) { return s.syncConvs(c, req) })
	case protocol.Op_MARK_READ:
		req := protocol.NewMarkReadReq()
		return readThen(body, req, func() (codec.Body, error) { return s.markRead(c, req) })
	case protocol.Op_CLEAR_CONV:
		req := protocol.NewClearConvReq()
		return readThen(body, req, func() (codec.Body, error) { return s.clearConv(c, req) })
	case protocol.Op_REACT:
		req := protocol.NewReactReq()
		return readThen(body, req, func() (codec.Body, error) { return s.react(c, req) })
	case protocol.Op_PIN:
		req := protocol.NewPinReq()
		return readThen(body, req, func() (codec.Body, error) { return s.pin(c, req) })
	case protocol.Op_UPLOAD:
		req := protocol.NewUploadReq()
		return readThen(body, req, func() (codec.Body, error) { return s.upload(c, req) })
	case protocol.Op_DOWNLOAD:
		req := protocol.NewDownloadReq()
		return readThen(body, req, func() (codec.Body, error) { return s.download(req) })
	case protocol.Op_MUTE_CONV:
		req := protocol.NewMuteConvReq()
		return readThen(body, req, func() (codec.Body, error) { return s.muteConv(c, req) })
	case protocol.Op_SEARCH_MESSAGES:
		req := protocol.NewSearchMessagesReq()
		return readThen(body, req, func() (codec.Body, error) { return s.searchMessages(c, req) })
	}
	return s.handleGroupOps(c, op, body)
}

func readThen(body []byte, req codec.Readable,
	next func() (codec.Body, error)) (codec.Body, error) {
	if err := codec.ReadBody(body, req); err != nil {
		return nil, fail(common.ErrorCode_BAD_REQUEST, err.Error())
	}
	return next()
}

func (s *Server) register(req *protocol.RegisterReq) (codec.Body, error) {
	if req.Username == "" || req.Password == "" {
		return nil, fail(common.ErrorCode_BAD_REQUEST, "username and password required")
	}
	// As the server: a password it would refuse as a new one is refused
	// at registration too.
	if reason := newPasswordFault(req.Username, req.Password); reason != "" {
		return nil, fail(common.ErrorCode_BAD_REQUEST, reason)
	}
	if s.users[req.Username] != nil {
		return nil, fail(common.ErrorCode_USERNAME_TAKEN, "username taken")
	}
	s.nextUserID++
	u := &user{id: s.nextUserID, name: req.Username, password: req.Password,
		devices: make(map[string]bool)}
	s.users[u.name] = u
	s.usersByID[u.id] = u
	return &protocol.RegisterResp{UserId: u.id}, nil
}

func (s *Server) login(c *conn, req *protocol.LoginReq) (codec.Body, error) {
	if c.userID != 0 {
		return nil, fail(common.ErrorCode_ALREADY_LOGGED_IN, "already logged in")
	}
	if s.failLogins > 0 {
		s.failLogins--
		return nil, fail(common.ErrorCode_UNAVAILABLE, "injected failure")
	}
	d, pair, err := s.authenticate(req)
	if err != nil {
		return nil, err
	}
	u := s.usersByID[d.userID]
	if u.suspended {
		// After the credentials, as the server: only their holder learns it.
		return nil, fail(common.ErrorCode_ACCOUNT_SUSPENDED, "account suspended")
	}
	c.userID, c.device = u.id, d.id
	u.devices[d.id] = true
	return &protocol.LoginResp{
		UserId:              u.id,
		Token:               pair.access,
		TokenExpiresMs:      pair.accessExpires,
		RefreshToken:        pair.refresh,
		RefreshExpiresMs:    pair.refreshExpires,
		HeartbeatIntervalMs: int32(s.opts.HeartbeatInterval / time.Millisecond),
		ServerTimeMs:        time.Now().UnixMilli(),
		Username:            u.name,
		DeviceId:            d.id,
		Limits:              s.limits(),
	}, nil
}

// limits are what a LOGIN's answer reports (Options.OmitLimits).
func (s *Server) limits() *common.ServerLimits {
	if s.opts.OmitLimits {
		return nil
	}
	content, members := int32(client.DefaultMaxContentBytes), int32(client.DefaultMaxGroupMembers)
	file := cmp.Or(s.opts.MaxFileSize, defaultMaxFileSize)
	recall := client.DefaultRecallWindow.Milliseconds()
	edit := client.DefaultEditWindow.Milliseconds()
	return &common.ServerLimits{MaxContentBytes: &content, MaxFileBytes: &file,
		RecallWindowMs: &recall, EditWindowMs: &edit, MaxGroupMembers: &members}
}

// authenticate returns the device a LOGIN proves and the pair to hand out:
// a password login gives the device a new pair, as the server's, and one
// naming no device is defaultDevice's.
func (s *Server) authenticate(req *protocol.LoginReq) (device, tokenPair, error) {
	if req.Token != "" {
		d, pair, err := s.tokenLogin(req)
		if err == nil && s.usersByID[d.userID] == nil {
			err = fail(common.ErrorCode_TOKEN_INVALID, "token invalid")
		}
		return d, pair, err
	}
	u := s.users[req.Username]
	if u == nil || u.password != req.Password {
		return device{}, tokenPair{}, fail(common.ErrorCode_INVALID_CREDENTIALS,
			"invalid credentials")
	}
	d := device{userID: u.id, id: cmp.Or(req.DeviceId, defaultDevice)}
	return d, s.issuePairLocked(d), nil
}

func (s *Server) send(c *conn, req *protocol.SendReq) (codec.Body, error) {
	s.sendCount++
	if s.failSends > 0 {
		s.failSends--
		return nil, fail(common.ErrorCode_UNAVAILABLE, "injected failure")
	}
	if len(req.Content) > s.opts.MaxContent {
		return nil, fail(common.ErrorCode_TOO_LARGE,
			fmt.Sprintf("content over %d bytes", s.opts.MaxContent))
	}
	convID, peer, err := s.resolveConv(c.userID, req)
	if err != nil {
		return nil, err
	}
	cv := s.convs[convID]
	if cv == nil {
		cv = newConv(c.userID, peer)
		s.convs[convID] = cv
	}
	key := fmt.Sprintf("%d/%s", c.userID, req.ClientMsgId)
	if ack := cv.acks[key]; ack != nil {
		dup := *ack
		dup.Duplicate = true
		return &dup, nil
	}
	s.nextMsgID++
	m := &common.Message{
		MsgId: s.nextMsgID, ConvId: convID, Seq: int64(len(cv.msgs) + 1),
		SenderId: c.userID, ClientMsgId: req.ClientMsgId, ContentType: req.ContentType,
		Content: req.Content, SendTimeMs: time.Now().UnixMilli(), SenderDevice: c.device,
		ReplyToSeq: req.ReplyToSeq,
	}
	cv.msgs = append(cv.msgs, m)
	ack := &protocol.SendResp{MsgId: m.MsgId, ConvId: convID, Seq: m.Seq, SendTimeMs: m.SendTimeMs}
	cv.acks[key] = ack
	s.touch(cv)
	s.pushLocked(c, m, peer)
	return ack, nil
}

// resolveConv returns the 1:1 conversation a send names and the peer's id.
func (s *Server) resolveConv(from int64, req *protocol.SendReq) (string, int64, error) {
	peer := req.ToUserId
	if peer == 0 {
		var a, b int64
		if _, err := fmt.Sscanf(req.ConvId, "p2p:%d:%d", &a, &b); err != nil {
			return "", 0, fail(common.ErrorCode_NOT_FOUND, "unknown conversation")
		}
		switch from {
		case a:
			peer = b
		case b:
			peer = a
		default:
			return "", 0, fail(common.ErrorCode_FORBIDDEN, "not a member")
		}
	}
	if s.usersByID[peer] == nil {
		return "", 0, fail(common.ErrorCode_NOT_FOUND, "unknown recipient")
	}
	return p2pConvID(from, peer), peer, nil
}

func p2pConvID(a, b int64) string {
	if a > b {
		a, b = b, a
	}
	return fmt.Sprintf("p2p:%d:%d", a, b)
}

// pushLocked pushes m to every connection of the peer and to the sender's
// other connections.
func (s *Server) pushLocked(from *conn, m *common.Message, peer int64) {
	if s.dropPushes > 0 {
		s.dropPushes--
		return
	}
	frame := codec.EncodeFrame(protocol.Op_PUSH, 0, 0, &protocol.PushMsg{Message: m})
	for c := range s.conns {
		if c != from && (c.userID == peer || c.userID == m.SenderId) {
			c.enqueue(frame)
		}
	}
}

func (s *Server) sync(c *conn, req *protocol.SyncReq) (codec.Body, error) {
	cv := s.convs[req.ConvId]
	last, ok := s.readable(c.userID, req.ConvId)
	if !ok {
		return nil, fail(common.ErrorCode_FORBIDDEN, "not a member")
	}
	if code, ok := s.refusedSyncs[req.ConvId]; ok {
		return nil, fail(code, "injected refusal")
	}
	if req.BeforeSeq > 0 && s.failBackward > 0 {
		s.failBackward--
		return nil, fail(common.ErrorCode_UNAVAILABLE, "injected failure")
	}
	limit := int64(req.Limit)
	if limit <= 0 || limit > int64(s.opts.SyncLimit) {
		limit = int64(s.opts.SyncLimit)
	}
	resp := &protocol.SyncResp{Messages: []*common.Message{}}
	if cv == nil {
		return resp, nil
	}
	n := last
	resp.LastSeq = n
	cleared := cv.clears[c.userID].cleared // nothing at or below it is synced
	if req.BeforeSeq > 0 {
		// Backward: the newest limit messages below before_seq; msgs[i] has
		// seq i+1, so seqs [from+1, to] are msgs[from:to].
		to := max(min(req.BeforeSeq-1, n), cleared)
		from := max(to-limit, cleared)
		resp.Messages = cv.msgs[from:to]
		resp.HasMore = from > cleared
		return resp, nil
	}
	if req.AfterSeq >= n {
		return resp, nil
	}
	from := max(req.AfterSeq, cleared, 0)
	to := min(from+limit, n)
	resp.Messages = cv.msgs[from:to]
	resp.HasMore = to < n
	return resp, nil
}

// muteConv records c's user's mute of a conversation they may read; the
// fake sends no notifications, so nothing else changes.
func (s *Server) muteConv(c *conn, req *protocol.MuteConvReq) (codec.Body, error) {
	if _, ok := s.readable(c.userID, req.ConvId); !ok {
		return nil, fail(common.ErrorCode_NOT_FOUND, "not found: conversation")
	}
	key := fmt.Sprintf("%d/%s", c.userID, req.ConvId)
	if s.mutes == nil {
		s.mutes = make(map[string]bool)
	}
	s.mutes[key] = req.Muted
	return &protocol.MuteConvResp{}, nil
}

// Muted reports whether the user named username muted convID.
func (s *Server) Muted(username, convID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[username]
	return u != nil && s.mutes[fmt.Sprintf("%d/%s", u.id, convID)]
}

// readable reports whether user may sync convID, and its last seq they may
// read: a member of its group, a former member up to their leaving, or one
// of the two users its 1:1 id names, stored or not.
func (s *Server) readable(user int64, convID string) (last int64, ok bool) {
	cv := s.convs[convID]
	switch {
	case cv != nil && cv.group != nil && cv.group.left[user] > 0:
		return cv.group.left[user], true
	case cv != nil:
		return int64(len(cv.msgs)), cv.has(user)
	}
	var a, b int64
	_, err := fmt.Sscanf(convID, "p2p:%d:%d", &a, &b)
	return 0, err == nil && (user == a || user == b)
}

func (s *Server) getUser(req *protocol.GetUserReq) (codec.Body, error) {
	u := s.users[req.Username]
	if req.Username == "" {
		u = s.usersByID[req.UserId]
	}
	if u == nil {
		return nil, fail(common.ErrorCode_NOT_FOUND, "no such user")
	}
	if u.deleted {
		return &protocol.GetUserResp{UserId: u.id, Deleted: true}, nil
	}
	return &protocol.GetUserResp{UserId: u.id, Username: u.name}, nil
}
