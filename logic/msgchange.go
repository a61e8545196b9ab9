package logic

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"
	"gorm.io/gorm"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// maxReadCountSeqs bounds the seqs of one ReadCounts request.
const maxReadCountSeqs = 100

// Recall withdraws the session user's own message within the recall
// window: the message keeps its seq with its content erased and recalled
// set, and a RECALL event in the conversation tells every device, in order,
// including those that sync later.
func (s *Service) Recall(ctx context.Context, session *logicrpc.Session,
	req *protocol.RecallReq) (*protocol.SendResp, error) {
	if err := s.authorizeWrite(ctx, "recall", session); err != nil {
		return nil, err
	}
	if req == nil {
		req = &protocol.RecallReq{} // a missing body reads as empty
	}
	logIDs := func(e *zerolog.Event) *zerolog.Event {
		return e.Int64("user", session.UserId).Str("conv", req.GetConvId()).
			Int64("seq", req.GetSeq()).Str("client_msg", req.GetClientMsgId())
	}
	ev := &common.RecallEvent{Seq: req.Seq}
	change := func(tx *gorm.DB, _ *convRow, target *messageRow, now time.Time) error {
		if now.Sub(target.CreatedAt) > s.cfg.RecallWindow {
			return fmt.Errorf("%w: the recall window of %s has passed", ErrForbidden, s.cfg.RecallWindow)
		}
		ev.MsgId = target.ID
		err := tx.Model(&messageRow{}).Where("id = ?", target.ID).
			Updates(map[string]any{"recalled": true, "content": []byte{}}).Error
		if err != nil {
			return err
		}
		// A recalled message shows no reactions; its REACTION events stay.
		err = tx.Where("conv_id = ? AND seq = ?", target.ConvID, target.Seq).
			Delete(&reactionRow{}).Error
		if err != nil {
			return err
		}
		// A recalled message is no longer pinned; the RECALL event tells
		// the clients, which drop it from their pins, so no PIN event is
		// stored for it.
		if err := tx.Where("conv_id = ? AND seq = ?", target.ConvID, target.Seq).
			Delete(&pinRow{}).Error; err != nil {
			return err
		}
		// Its readers may no longer fetch the file through it.
		if err := dropFileRefs(tx, target.ConvID, target.Seq); err != nil {
			return err
		}
		return eraseEdits(tx, target)
	}
	resp, err := s.changeMessage(ctx, session, msgChange{clientMsgID: req.ClientMsgId,
		convID: req.ConvId, seq: req.Seq, ct: common.ContentType_RECALL, event: ev, change: change})
	if err != nil {
		return nil, s.fail("recall", err, logIDs)
	}
	return resp, nil
}

// Edit replaces the content of the session user's own message within the
// edit window; an EDIT event carries the new content to every device.
func (s *Service) Edit(ctx context.Context, session *logicrpc.Session,
	req *protocol.EditReq) (*protocol.SendResp, error) {
	if err := s.authorizeWrite(ctx, "edit", session); err != nil {
		return nil, err
	}
	if req == nil {
		req = &protocol.EditReq{} // a missing body reads as empty
	}
	logIDs := func(e *zerolog.Event) *zerolog.Event {
		return e.Int64("user", session.UserId).Str("conv", req.GetConvId()).
			Int64("seq", req.GetSeq()).Str("client_msg", req.GetClientMsgId())
	}
	if err := s.checkContent(req.GetContentType(), req.GetContent()); err != nil {
		return nil, s.fail("edit", err, logIDs)
	}
	ev := &common.EditEvent{Seq: req.Seq, ContentType: req.ContentType, Content: req.Content}
	change := func(tx *gorm.DB, _ *convRow, target *messageRow, now time.Time) error {
		if now.Sub(target.CreatedAt) > s.cfg.EditWindow {
			return fmt.Errorf("%w: the edit window of %s has passed", ErrForbidden, s.cfg.EditWindow)
		}
		ev.MsgId = target.ID
		return tx.Model(&messageRow{}).Where("id = ?", target.ID).Updates(map[string]any{
			"content": req.Content, "content_type": int16(req.ContentType),
			"edited_ms": now.UnixMilli()}).Error
	}
	resp, err := s.changeMessage(ctx, session, msgChange{clientMsgID: req.ClientMsgId,
		convID: req.ConvId, seq: req.Seq, ct: common.ContentType_EDIT, event: ev, change: change})
	if err != nil {
		return nil, s.fail("edit", err, logIDs)
	}
	return resp, nil
}

// msgChange is a recall, an edit, a reaction or a pin of one stored message.
type msgChange struct {
	clientMsgID string
	convID      string
	seq         int64
	ct          common.ContentType
	// byReader says that anyone who may read the target may make the change
	// (a reaction, a pin), not only its sender (a recall or an edit).
	byReader bool
	event    interface {
		BLength() int
		FastWrite([]byte) int
	}
	// change checks the window (or the user's role in c) and updates the
	// target row; it runs under the conversation's row lock.
	change func(tx *gorm.DB, c *convRow, target *messageRow, now time.Time) error
}

// toggleMessage runs a change of a message's state that a reader toggles (a
// reaction, a pin) through changeMessage. A change to the state the message
// is already in (errNoChange) stores nothing and answers duplicate, with no
// msg_id or seq.
func (s *Service) toggleMessage(ctx context.Context, session *logicrpc.Session,
	mc msgChange) (*protocol.SendResp, error) {
	resp, err := s.changeMessage(ctx, session, mc)
	if errors.Is(err, errNoChange) {
		return &protocol.SendResp{ConvId: mc.convID, SendTimeMs: time.Now().UnixMilli(),
			Duplicate: true}, nil
	}
	return resp, err
}

// changeMessage stores the event of a recall, edit, reaction or pin and
// applies it to its target in the same transaction, under the conversation's
// lock: two changes of one message are ordered, and a recalled message
// cannot be edited after.
func (s *Service) changeMessage(ctx context.Context, session *logicrpc.Session,
	ch msgChange) (*protocol.SendResp, error) {
	if err := checkClientMsgID(ch.clientMsgID); err != nil {
		return nil, err
	}
	if err := checkConvID(ch.convID); err != nil {
		return nil, err
	}
	if ch.seq <= 0 {
		return nil, fmt.Errorf("%w: seq must be positive", ErrBadRequest)
	}
	if m, err := s.findByClientID(ctx, session.UserId, ch.clientMsgID); m != nil || err != nil {
		return sendResp(m, true), err
	}
	if ch.ct != common.ContentType_RECALL && !isGroupID(ch.convID) {
		// An edit or a reaction is new content: a blocked user may not
		// write it.
		peer, err := peerOf(ch.convID, session.UserId)
		if err != nil {
			return nil, err
		}
		blocked, err := s.blockedBetween(ctx, session.UserId, peer)
		if err != nil {
			return nil, err
		}
		if blocked {
			return nil, errBlocked
		}
	}
	rr, err := s.readable(ctx, ch.convID, session.UserId)
	if err != nil {
		return nil, err
	}
	if ch.byReader && ch.seq <= rr.cleared {
		return nil, fmt.Errorf("%w: message", ErrNotFound) // gone from the user's history
	}
	m := s.newEventMessage(session, ch.convID, ch.clientMsgID, ch.ct, ch.event)
	apply := func(tx *gorm.DB, c *convRow, m *messageRow) ([]int64, error) {
		recipients, err := s.sendApply(tx, c, m)
		if err != nil {
			return nil, err
		}
		var target messageRow
		res := tx.Where("conv_id = ? AND seq = ?", c.ID, ch.seq).Limit(1).Find(&target)
		switch {
		case res.Error != nil:
			return nil, res.Error
		case res.RowsAffected == 0:
			return nil, fmt.Errorf("%w: message", ErrNotFound)
		case !ch.byReader && target.SenderID != m.SenderID:
			return nil, fmt.Errorf("%w: only its sender may change a message", ErrForbidden)
		case !changeable(target.ContentType, ch.ct):
			return nil, fmt.Errorf("%w: only a text, binary or file message may change "+
				"(a file message by recall or reaction)", ErrBadRequest)
		case target.Recalled:
			return nil, fmt.Errorf("%w: the message was recalled", ErrForbidden)
		}
		if ch.byReader {
			if err := s.checkJoinedBefore(tx, c, m.SenderID, target.Seq); err != nil {
				return nil, err
			}
		}
		if err := ch.change(tx, c, &target, m.CreatedAt); err != nil {
			return nil, err
		}
		m.Content, err = encodeStruct(ch.event) // now with the target's msg_id
		return recipients, err
	}
	_, err = s.storeMessage(ctx, seqWrite{m: m, origin: session, apply: apply, changes: true})
	if errors.Is(err, errDuplicate) {
		found, ferr := s.findByClientID(ctx, session.UserId, ch.clientMsgID)
		if ferr == nil && found == nil {
			ferr = fmt.Errorf("message sender=%d client=%q: duplicate but not found",
				session.UserId, ch.clientMsgID)
		}
		return sendResp(found, true), ferr
	}
	if err != nil {
		return nil, err
	}
	return sendResp(m, false), nil
}

// checkJoinedBefore refuses a change by user of the message at seq of group
// c when the user joined after it: it is not in their history. The member
// set is the one sendApply read under the row lock (cached).
func (s *Service) checkJoinedBefore(tx *gorm.DB, c *convRow, user, seq int64) error {
	if c.Type != int16(common.ConvType_GROUP) {
		return nil
	}
	ms, err := s.activeMembers(tx, c)
	if err != nil {
		return err
	}
	if seq < ms.joinSeqs[user] {
		return fmt.Errorf("%w: the message is from before you joined", ErrForbidden)
	}
	return nil
}

func sendResp(m *messageRow, duplicate bool) *protocol.SendResp {
	if m == nil {
		return nil
	}
	return &protocol.SendResp{MsgId: m.ID, ConvId: m.ConvID, Seq: m.Seq,
		SendTimeMs: m.CreatedAt.UnixMilli(), Duplicate: duplicate}
}

// checkContent validates a message body as Send does.
// changeable reports whether a message of content type target may take a
// change event of type event: what users send may be recalled and reacted
// to, and edited unless it is a file (an edit would leave its readers able
// to fetch a file no longer shown).
func changeable(target int16, event common.ContentType) bool {
	switch common.ContentType(target) {
	case common.ContentType_TEXT, common.ContentType_BINARY:
		return true
	case common.ContentType_FILE:
		return event != common.ContentType_EDIT
	}
	return false
}

func (s *Service) checkContent(ct common.ContentType, content []byte) error {
	switch {
	case len(content) == 0:
		return fmt.Errorf("%w: empty content", ErrBadRequest)
	case len(content) > s.cfg.MaxContent:
		return fmt.Errorf("%w: content over %d bytes", ErrTooLarge, s.cfg.MaxContent)
	case ct != common.ContentType_TEXT && ct != common.ContentType_BINARY:
		return fmt.Errorf("%w: unknown content_type", ErrBadRequest)
	case ct == common.ContentType_TEXT && !utf8.Valid(content):
		return fmt.Errorf("%w: text content is not valid UTF-8", ErrBadRequest)
	}
	return nil
}

// ReadCounts answers, for each asked seq, how many members other than its
// sender have read up to it. It reads one row per active member (their read
// positions, from an index), never one per message, so it costs the same
// for any number of messages read. A user who left the group is refused
// (FORBIDDEN), as by GetGroup; a seq from before the user joined counts 0.
func (s *Service) ReadCounts(ctx context.Context, session *logicrpc.Session,
	req *protocol.ReadCountsReq) (*protocol.ReadCountsResp, error) {
	if err := s.authorizeRead(ctx, "read_counts", session); err != nil {
		return nil, err
	}
	if req == nil {
		req = &protocol.ReadCountsReq{} // a missing body reads as empty
	}
	logIDs := func(e *zerolog.Event) *zerolog.Event {
		return e.Int64("user", session.UserId).Str("conv", req.GetConvId())
	}
	resp, err := s.readCounts(ctx, session.UserId, req)
	if err != nil {
		return nil, s.fail("read_counts", err, logIDs)
	}
	return resp, nil
}

func (s *Service) readCounts(ctx context.Context, user int64,
	req *protocol.ReadCountsReq) (*protocol.ReadCountsResp, error) {
	if req == nil {
		return nil, fmt.Errorf("%w: empty request", ErrBadRequest)
	}
	if len(req.Seqs) > maxReadCountSeqs {
		return nil, fmt.Errorf("%w: at most %d seqs", ErrTooLarge, maxReadCountSeqs)
	}
	if err := checkConvID(req.ConvId); err != nil {
		return nil, err
	}
	rr, err := s.readable(ctx, req.ConvId, user)
	if err != nil {
		return nil, err
	}
	if rr.to > 0 {
		// The counts are of today's members, whom GET_GROUP no longer shows
		// a former member: refused the same way.
		return nil, fmt.Errorf("%w: not a member of the conversation", ErrForbidden)
	}
	var members []memberRow
	err = s.rdc(ctx).Select("user_id", "read_seq").
		Where("conv_id = ? AND left_seq = 0", req.ConvId).Find(&members).Error
	if err != nil {
		return nil, fmt.Errorf("read positions conv=%s: %w", req.ConvId, err)
	}
	reads := make([]int64, len(members))
	readOf := make(map[int64]int64, len(members))
	for i, m := range members {
		reads[i] = m.ReadSeq
		readOf[m.UserID] = m.ReadSeq
	}
	slices.Sort(reads)
	senders, err := s.sendersOf(ctx, req.ConvId, req.Seqs)
	if err != nil {
		return nil, err
	}
	resp := &protocol.ReadCountsResp{Counts: make([]int32, len(req.Seqs)),
		MemberCount: int32(len(members))}
	for i, seq := range req.Seqs {
		if seq < rr.from {
			continue // from before the asker joined: not theirs to know
		}
		at, _ := slices.BinarySearch(reads, seq)
		n := len(reads) - at // members whose read_seq >= seq
		if r, ok := readOf[senders[seq]]; ok && r >= seq {
			n-- // the sender read their own message
		}
		resp.Counts[i] = int32(n)
	}
	return resp, nil
}

// sendersOf returns the sender of each of seqs in convID.
func (s *Service) sendersOf(ctx context.Context, convID string, seqs []int64) (map[int64]int64, error) {
	out := make(map[int64]int64, len(seqs))
	if len(seqs) == 0 {
		return out, nil
	}
	var rows []messageRow
	err := s.rdc(ctx).Select("seq", "sender_id").Where("conv_id = ? AND seq IN ?", convID, seqs).
		Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("senders conv=%s (%d seqs): %w", convID, len(seqs), err)
	}
	for _, r := range rows {
		out[r.Seq] = r.SenderID
	}
	return out, nil
}

// eraseEdits erases the content carried by the EDIT events of target, as
// recalling it erases its own: an edit must not keep a recalled text
// readable in history. Each such event keeps its seq and the seq and msg_id
// it names, loses its content, and is marked recalled. Only the sender
// edits, so only the sender's EDIT events after the target are read.
func eraseEdits(tx *gorm.DB, target *messageRow) error {
	var edits []messageRow
	err := tx.Where("conv_id = ? AND sender_id = ? AND content_type = ? AND seq > ? AND recalled = ?",
		target.ConvID, target.SenderID, int16(common.ContentType_EDIT), target.Seq, false).
		Find(&edits).Error
	if err != nil {
		return err
	}
	for _, e := range edits {
		var ev common.EditEvent
		if err := codec.ReadBody(e.Content, &ev); err != nil || ev.Seq != target.Seq {
			continue // another message's edit (or unreadable: left as it is)
		}
		blank, err := encodeStruct(&common.EditEvent{Seq: ev.Seq, MsgId: ev.MsgId})
		if err != nil {
			return err
		}
		err = tx.Model(&messageRow{}).Where("id = ?", e.ID).
			Updates(map[string]any{"recalled": true, "content": blank}).Error
		if err != nil {
			return err
		}
	}
	return nil
}
