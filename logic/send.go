package logic

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/event"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Send stores a message from the session's user and publishes its event. A
// retry with the same client_msg_id returns the first ack with duplicate set
// and publishes the event again (JetStream drops it if the first got
// through). A publish failure is UNAVAILABLE although the message is stored:
// the client's retry delivers it.
func (s *Service) Send(ctx context.Context, session *logicrpc.Session,
	req *protocol.SendReq) (*protocol.SendResp, error) {
	if session == nil || session.UserId == 0 {
		return nil, s.fail("send", ErrUnauthenticated, nil)
	}
	logIDs := func(e *zerolog.Event) *zerolog.Event {
		return e.Int64("user", session.UserId).Int64("conn", session.ConnId).
			Str("client_msg", req.GetClientMsgId())
	}
	if err := s.validateSend(req); err != nil {
		return nil, s.fail("send", err, logIDs)
	}

	m, dup, err := s.storeOrFind(ctx, session, req)
	if err != nil {
		return nil, s.fail("send", err, logIDs)
	}
	if err := s.publish(ctx, session, m); err != nil {
		return nil, s.fail("send", err, logIDs)
	}
	return &protocol.SendResp{
		MsgId:      m.ID,
		ConvId:     m.ConvID,
		Seq:        m.Seq,
		SendTimeMs: m.CreatedAt.UnixMilli(),
		Duplicate:  dup,
	}, nil
}

// validateSend checks what needs no database.
func (s *Service) validateSend(req *protocol.SendReq) error {
	switch {
	case req == nil:
		return fmt.Errorf("%w: empty request", ErrBadRequest)
	case req.ClientMsgId == "" || len(req.ClientMsgId) > maxClientMsgID:
		return fmt.Errorf("%w: client_msg_id must be 1-%d bytes", ErrBadRequest, maxClientMsgID)
	case len(req.Content) == 0:
		return fmt.Errorf("%w: empty content", ErrBadRequest)
	case len(req.Content) > s.cfg.MaxContent:
		return fmt.Errorf("%w: content over %d bytes", ErrTooLarge, s.cfg.MaxContent)
	case req.ContentType != common.ContentType_TEXT && req.ContentType != common.ContentType_BINARY:
		return fmt.Errorf("%w: unknown content_type", ErrBadRequest)
	case req.ToUserId == 0 && req.ConvId == "":
		return fmt.Errorf("%w: to_user_id or conv_id required", ErrBadRequest)
	}
	return nil
}

// storeOrFind returns the stored message for req, storing it unless the
// sender already sent this client_msg_id (dup is then true).
func (s *Service) storeOrFind(ctx context.Context, session *logicrpc.Session,
	req *protocol.SendReq) (m *messageRow, dup bool, err error) {
	// Dedupe before resolving the conversation: a retry must get its first
	// ack even if the peer has since been removed.
	m, err = s.findByClientID(ctx, session.UserId, req.ClientMsgId)
	if m != nil || err != nil {
		return m, m != nil, err
	}
	convID, err := s.resolveConv(ctx, session.UserId, req)
	if err != nil {
		return nil, false, err
	}
	m = &messageRow{
		ConvID:       convID,
		SenderID:     session.UserId,
		SenderDevice: session.DeviceId,
		ClientMsgID:  req.ClientMsgId,
		ContentType:  int16(req.ContentType),
		Content:      req.Content,
		// Milliseconds, UTC: what both databases store and the ack reports.
		CreatedAt: s.now().UTC().Truncate(time.Millisecond),
	}
	err = s.storeMessage(ctx, m)
	if !errors.Is(err, errDuplicate) {
		return m, false, err
	}
	// A concurrent retry stored it first: answer with that one.
	m, err = s.findByClientID(ctx, session.UserId, req.ClientMsgId)
	if err == nil && m == nil {
		err = fmt.Errorf("message sender=%d client=%q: duplicate but not found",
			session.UserId, req.ClientMsgId)
	}
	return m, true, err
}

// resolveConv returns the p2p conversation req targets, checking that the
// sender belongs to it and the peer exists.
func (s *Service) resolveConv(ctx context.Context, sender int64,
	req *protocol.SendReq) (string, error) {
	peer := req.ToUserId
	if req.ConvId != "" {
		p, err := peerOf(req.ConvId, sender)
		if err != nil {
			return "", err
		}
		if peer != 0 && peer != p {
			return "", fmt.Errorf("%w: to_user_id and conv_id disagree", ErrBadRequest)
		}
		peer = p
	}
	if peer == sender {
		return "", fmt.Errorf("%w: cannot message yourself", ErrBadRequest)
	}
	if peer < 0 {
		return "", fmt.Errorf("%w: user", ErrNotFound)
	}
	u, err := s.findUser(ctx, "", peer)
	if err != nil {
		return "", err
	}
	if u == nil {
		return "", fmt.Errorf("%w: user", ErrNotFound)
	}
	return p2pConvID(sender, peer), nil
}

// publish sends m's event to JetStream and waits for the ack. The message id
// makes a republish of the same message a no-op inside the stream's
// duplicate window.
func (s *Service) publish(ctx context.Context, session *logicrpc.Session, m *messageRow) error {
	low, high, err := parseP2P(m.ConvID)
	if err != nil {
		return fmt.Errorf("publish msg %d: stored conv %q: %w", m.ID, m.ConvID, err)
	}
	ev := &event.MessageEvent{
		Message:       m.toThrift(),
		Recipients:    []int64{low, high},
		OriginGateway: session.Gateway,
		OriginConnId:  session.ConnId,
	}
	buf := make([]byte, ev.BLength())
	buf = buf[:ev.FastWrite(buf)]

	ctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	msgID := "msg-" + strconv.FormatInt(m.ID, 10)
	if _, err := s.deps.JS.Publish(ctx, s.deps.MQ.MessageSubject(), buf,
		jetstream.WithMsgID(msgID)); err != nil {
		return fmt.Errorf("%w: publish msg %d conv %s: %w", ErrUnavailable, m.ID, m.ConvID, err)
	}
	s.log.Debug().Int64("msg", m.ID).Str("conv", m.ConvID).Int64("seq", m.Seq).Msg("published")
	return nil
}
