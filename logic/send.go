package logic

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"
	"gorm.io/gorm"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Send stores a message from the session's user and acks it once committed:
// acked means stored. Its event was written to the outbox in the same
// transaction and is published after the ack is sent (see outbox.go). A
// retry with the same client_msg_id returns the first ack with duplicate set
// and stores and publishes nothing new.
func (s *Service) Send(ctx context.Context, session *logicrpc.Session,
	req *protocol.SendReq) (*protocol.SendResp, error) {
	if session == nil || session.UserId == 0 {
		return nil, s.fail("send", ErrUnauthenticated, nil)
	}
	logIDs := sendLogIDs(session, req)
	if err := s.validateSend(req); err != nil {
		return nil, s.fail("send", err, logIDs)
	}
	signedOut, err := s.signedOutSessions(ctx, []*logicrpc.Session{session})
	if err == nil && signedOut[0] {
		err = errSignedOut(session)
	}
	if err != nil {
		return nil, s.fail("send", err, logIDs)
	}

	m, ob, err := s.storeOrFind(ctx, session, req)
	if err != nil {
		return nil, s.fail("send", err, logIDs)
	}
	s.log.Debug().Int64("msg", m.ID).Str("conv", m.ConvID).Int64("seq", m.Seq).
		Bool("duplicate", ob == nil).Msg("stored")
	return sendResp(m, ob == nil), nil
}

// sendLogIDs returns the fields that name a send in the log: its sender,
// connection and client id, and whom it was for (conversation or user).
func sendLogIDs(session *logicrpc.Session, req *protocol.SendReq) func(*zerolog.Event) *zerolog.Event {
	return func(e *zerolog.Event) *zerolog.Event {
		e = e.Int64("user", session.UserId).Int64("conn", session.ConnId)
		if req == nil {
			return e
		}
		return e.Str("client_msg", req.ClientMsgId).Str("conv", req.ConvId).
			Int64("to", req.ToUserId)
	}
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
	case req.ContentType != common.ContentType_TEXT &&
		req.ContentType != common.ContentType_BINARY &&
		req.ContentType != common.ContentType_FILE:
		return fmt.Errorf("%w: unknown content_type", ErrBadRequest)
	case req.ToUserId == 0 && req.ConvId == "":
		return fmt.Errorf("%w: to_user_id or conv_id required", ErrBadRequest)
	case !utf8.ValidString(req.ClientMsgId):
		return fmt.Errorf("%w: client_msg_id is not valid UTF-8", ErrBadRequest)
	case req.ContentType == common.ContentType_TEXT && !utf8.Valid(req.Content):
		return fmt.Errorf("%w: text content is not valid UTF-8", ErrBadRequest)
	case req.ContentType == common.ContentType_FILE:
		if _, err := decodeFileRef(req.Content); err != nil {
			return err
		}
	}
	return validateMentions(req)
}

// storeOrFind returns the stored message for req, storing it with its outbox
// row unless the sender already sent this client_msg_id (ob is then nil: the
// first store owns the event).
func (s *Service) storeOrFind(ctx context.Context, session *logicrpc.Session,
	req *protocol.SendReq) (*messageRow, *outboxRow, error) {
	m, ob, err := s.store(ctx, session, req)
	if err == nil {
		return m, ob, nil
	}
	first, err := s.findFirst(ctx, session.UserId, req.ClientMsgId, err)
	return first, nil, err
}

// findFirst returns the message sender stored before under clientMsgID when
// storing it now failed with err, else an error (err, or what the lookup
// added to it).
func (s *Service) findFirst(ctx context.Context, sender int64, clientMsgID string,
	err error) (*messageRow, error) {
	// A retry fails to insert (errDuplicate), or fails before if the
	// conversation has since refused the sender (the peer removed or
	// blocking, the sender out of the group); either way it gets its first
	// ack. Retries are rare, so this look happens on failures only, not
	// before every send.
	first, ferr := s.findByClientID(ctx, sender, clientMsgID)
	switch {
	case ferr != nil:
		return nil, errors.Join(err, ferr)
	case first != nil:
		return first, nil
	case errors.Is(err, errDuplicate):
		return nil, fmt.Errorf("message sender=%d client=%q: duplicate but not found",
			sender, clientMsgID)
	}
	return nil, err
}

// store stores req as a new message with its outbox row.
func (s *Service) store(ctx context.Context, session *logicrpc.Session,
	req *protocol.SendReq) (*messageRow, *outboxRow, error) {
	convID, _, err := sendTarget(session.UserId, req)
	if err != nil {
		return nil, nil, err
	}
	m := s.newMessage(session, req, convID)
	ob, err := s.storeMessage(ctx, s.sendWrite(session, m))
	if err != nil {
		return nil, nil, err
	}
	return m, ob, nil
}

// newMessage is the row of req, sent by session to convID, before its seq.
func (s *Service) newMessage(session *logicrpc.Session, req *protocol.SendReq,
	convID string) *messageRow {
	m := &messageRow{
		ConvID:       convID,
		SenderID:     session.UserId,
		SenderDevice: session.DeviceId,
		ClientMsgID:  req.ClientMsgId,
		ContentType:  int16(req.ContentType),
		Content:      req.Content,
		ReplyToSeq:   req.GetReplyToSeq(),
		MentionAll:   req.GetMentionAll(),
		// Milliseconds, UTC: what both databases store and the ack reports.
		// The seq transaction sets it again under the conversation's lock.
		CreatedAt: s.now().UTC().Truncate(time.Millisecond),
	}
	m.mentionIDs = normalMentions(session.UserId, req.Mentions)
	m.Mentions = encodeMentions(m.mentionIDs)
	return m
}

// sendWrite is the seq write of m, a message session sends. A 1:1 send is
// refused under the conversation's lock when either user blocked the other
// (peerCheck), as a group send is when the sender is no member (sendApply).
//
// A FILE message takes the savepoint path (not plain): its apply reads the
// file and writes its reference, which the plain path's one statement per
// batch has no place for. Text and binary sends pay nothing for it.
func (s *Service) sendWrite(session *logicrpc.Session, m *messageRow) seqWrite {
	if m.ContentType == int16(common.ContentType_FILE) {
		return seqWrite{m: m, origin: session, apply: s.sendFileApply,
			peerCheck: !isGroupID(m.ConvID)}
	}
	return seqWrite{m: m, origin: session, apply: s.sendApply, plain: true,
		peerCheck: !isGroupID(m.ConvID)}
}

// sendTarget returns the conversation req targets, and for a p2p one the
// peer (0 for a group), checking that the sender belongs to it. It reads
// nothing: that the peer exists is known once the conversation's row is
// (user rows are never removed) and checked before one is created
// (checkNewPeer), and blocks and deleted accounts are checked under the
// row lock (peerCheck).
func sendTarget(sender int64, req *protocol.SendReq) (convID string, peer int64, err error) {
	if isGroupID(req.ConvId) {
		if req.ToUserId != 0 {
			return "", 0, fmt.Errorf("%w: to_user_id is for 1:1 conversations", ErrBadRequest)
		}
		return req.ConvId, 0, nil
	}
	peer = req.ToUserId
	if req.ConvId != "" {
		p, err := peerOf(req.ConvId, sender)
		if err != nil {
			return "", 0, err
		}
		if peer != 0 && peer != p {
			return "", 0, fmt.Errorf("%w: to_user_id and conv_id disagree", ErrBadRequest)
		}
		peer = p
	}
	if peer == sender {
		return "", 0, fmt.Errorf("%w: cannot message yourself", ErrBadRequest)
	}
	if peer <= 0 {
		return "", 0, fmt.Errorf("%w: user", ErrNotFound)
	}
	return p2pConvID(sender, peer), peer, nil
}

// sendApply is the seq transaction's check of a new message: a group's
// sender must be an active member of a group not dismissed, and its quote
// and mentions must hold (mention.go); the event goes
// to the active members, or to both users of a p2p conversation.
func (s *Service) sendApply(tx *gorm.DB, c *convRow, m *messageRow) ([]int64, error) {
	if c.Type != int16(common.ConvType_GROUP) {
		low, high, err := parseP2P(c.ID)
		if err != nil {
			return nil, fmt.Errorf("stored conv %q: %w", c.ID, err)
		}
		if err := checkQuote(m, 1); err != nil {
			return nil, err
		}
		return []int64{low, high}, nil
	}
	if c.Dismissed {
		return nil, fmt.Errorf("%w: the group was dismissed", ErrForbidden)
	}
	ms, err := s.activeMembers(tx, c)
	if err != nil {
		return nil, err
	}
	if _, ok := ms.roles[m.SenderID]; !ok {
		return nil, fmt.Errorf("%w: not a member of the conversation", ErrForbidden)
	}
	if err := checkQuote(m, ms.joinSeqs[m.SenderID]); err != nil {
		return nil, err
	}
	if err := checkMentions(m, ms); err != nil {
		return nil, err
	}
	return ms.ids, nil
}
