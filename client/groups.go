package client

import (
	"context"
	"errors"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// CreateGroup creates a group owned by the logged-in user with members, and
// returns the ack of its CREATE event (seq 1 of the new conversation).
// clientMsgID ("" for a random one) makes a retry return the same group.
// When the request was sent but its answer lost, the error wraps
// ErrOutcomeUnknown: the group may exist. Calling again with the same
// clientMsgID returns it if so, and creates it if not; a random one cannot
// be repeated, so pass one when a retry matters (Session.CreateGroup does).
func (c *Client) CreateGroup(ctx context.Context, name string, members []int64,
	clientMsgID string) (*protocol.GroupChangeResp, error) {
	if clientMsgID == "" {
		clientMsgID = NewClientMsgID()
	}
	req := &protocol.CreateGroupReq{ClientMsgId: clientMsgID, Name: name, MemberIds: members}
	resp := protocol.NewGroupChangeResp()
	if err := c.roundTripOnce(ctx, protocol.Op_CREATE_GROUP, req, resp); err != nil {
		return nil, errorf("create group %q: %w", name, err)
	}
	return resp, nil
}

// ManageGroup applies one change to a group: ADD or REMOVE UserIds, LEAVE,
// RENAME to Name, SET_ROLE of UserIds to Role, DISMISS. An empty
// ClientMsgId is filled with a random one, in req. When the request was
// sent but its answer lost, the error wraps ErrOutcomeUnknown: the change
// may have been made. Calling again with req as it is (its ClientMsgId
// kept) returns the change made, or makes it; a new id could make it
// twice, or be refused for a change already made (a LEAVE).
func (c *Client) ManageGroup(ctx context.Context,
	req *protocol.ManageGroupReq) (*protocol.GroupChangeResp, error) {
	if req.ClientMsgId == "" {
		req.ClientMsgId = NewClientMsgID()
	}
	resp := protocol.NewGroupChangeResp()
	if err := c.roundTripOnce(ctx, protocol.Op_MANAGE_GROUP, req, resp); err != nil {
		return nil, errorf("%s group %q: %w", req.Action, req.ConvId, err)
	}
	return resp, nil
}

// GetGroup returns a group's name, owner and members.
func (c *Client) GetGroup(ctx context.Context, convID string) (*protocol.GroupInfo, error) {
	resp := protocol.NewGroupInfo()
	if err := c.roundTrip(ctx, protocol.Op_GET_GROUP, &protocol.GetGroupReq{ConvId: convID},
		resp); err != nil {
		return nil, errorf("get group %q: %w", convID, err)
	}
	return resp, nil
}

// Recall withdraws one's own message at seq of convID, within the server's
// recall window. The RECALL event enters the conversation as a message.
// A lost answer wraps ErrOutcomeUnknown, as for CreateGroup: call again
// with the same clientMsgID.
func (c *Client) Recall(ctx context.Context, convID string, seq int64,
	clientMsgID string) (*protocol.SendResp, error) {
	if clientMsgID == "" {
		clientMsgID = NewClientMsgID()
	}
	req := &protocol.RecallReq{ClientMsgId: clientMsgID, ConvId: convID, Seq: seq}
	resp := protocol.NewSendResp()
	if err := c.roundTripOnce(ctx, protocol.Op_RECALL, req, resp); err != nil {
		return nil, errorf("recall %q seq %d: %w", convID, seq, err)
	}
	return resp, nil
}

// Edit replaces the text of one's own message at seq of convID. The EDIT
// event enters the conversation as a message. A lost answer wraps
// ErrOutcomeUnknown, as for CreateGroup: call again with the same
// clientMsgID.
func (c *Client) Edit(ctx context.Context, convID string, seq int64, text string,
	clientMsgID string) (*protocol.SendResp, error) {
	if clientMsgID == "" {
		clientMsgID = NewClientMsgID()
	}
	req := &protocol.EditReq{ClientMsgId: clientMsgID, ConvId: convID, Seq: seq,
		ContentType: common.ContentType_TEXT, Content: []byte(text)}
	resp := protocol.NewSendResp()
	if err := c.roundTripOnce(ctx, protocol.Op_EDIT, req, resp); err != nil {
		return nil, errorf("edit %q seq %d: %w", convID, seq, err)
	}
	return resp, nil
}

// React adds one's emoji reaction to the message at seq of convID, or with
// remove takes it back. The REACTION event enters the conversation as a
// message. Adding a reaction one has, or removing one one lacks, changes
// nothing: the reply has Duplicate set and no MsgId or Seq. A lost answer
// wraps ErrOutcomeUnknown; calling again is safe, for the same reason.
func (c *Client) React(ctx context.Context, convID string, seq int64, emoji string,
	remove bool) (*protocol.SendResp, error) {
	return c.react(ctx, &protocol.ReactReq{ClientMsgId: NewClientMsgID(), ConvId: convID,
		Seq: seq, Emoji: emoji, Remove: remove})
}

func (c *Client) react(ctx context.Context, req *protocol.ReactReq) (*protocol.SendResp, error) {
	resp := protocol.NewSendResp()
	if err := c.roundTripOnce(ctx, protocol.Op_REACT, req, resp); err != nil {
		return nil, errorf("react %q seq %d: %w", req.ConvId, req.Seq, err)
	}
	return resp, nil
}

// Pin pins the message at seq of convID for every member of the
// conversation, or with unpin unpins it; in a group only its owner and
// admins may. The PIN event enters the conversation as a message, and
// ConvSummary.PinnedSeqs carries the conversation's pins. Pinning a pinned
// message, or unpinning one that is not, changes nothing: the reply has
// Duplicate set and no MsgId or Seq. A lost answer wraps ErrOutcomeUnknown;
// calling again is safe, for the same reason.
func (c *Client) Pin(ctx context.Context, convID string, seq int64,
	unpin bool) (*protocol.SendResp, error) {
	return c.pin(ctx, &protocol.PinReq{ClientMsgId: NewClientMsgID(), ConvId: convID,
		Seq: seq, Unpin: unpin})
}

func (c *Client) pin(ctx context.Context, req *protocol.PinReq) (*protocol.SendResp, error) {
	resp := protocol.NewSendResp()
	if err := c.roundTripOnce(ctx, protocol.Op_PIN, req, resp); err != nil {
		return nil, errorf("pin %q seq %d: %w", req.ConvId, req.Seq, err)
	}
	return resp, nil
}

// ReadCounts returns, for each of seqs, how many members other than its
// sender have read it, and the number of members.
func (c *Client) ReadCounts(ctx context.Context, convID string,
	seqs []int64) (*protocol.ReadCountsResp, error) {
	resp := protocol.NewReadCountsResp()
	if err := c.roundTrip(ctx, protocol.Op_READ_COUNTS,
		&protocol.ReadCountsReq{ConvId: convID, Seqs: seqs}, resp); err != nil {
		return nil, errorf("read counts %q: %w", convID, err)
	}
	return resp, nil
}

// GroupEventOf decodes the content of a GROUP_EVENT message.
func GroupEventOf(m *common.Message) (*common.GroupEvent, error) {
	ev := common.NewGroupEvent()
	return ev, decodeContent(m, common.ContentType_GROUP_EVENT, ev)
}

// RecallEventOf decodes the content of a RECALL message.
func RecallEventOf(m *common.Message) (*common.RecallEvent, error) {
	ev := common.NewRecallEvent()
	return ev, decodeContent(m, common.ContentType_RECALL, ev)
}

// EditEventOf decodes the content of an EDIT message.
func EditEventOf(m *common.Message) (*common.EditEvent, error) {
	ev := common.NewEditEvent()
	return ev, decodeContent(m, common.ContentType_EDIT, ev)
}

// ReactionEventOf decodes the content of a REACTION message; the message's
// sender is who reacted.
func ReactionEventOf(m *common.Message) (*common.ReactionEvent, error) {
	ev := common.NewReactionEvent()
	return ev, decodeContent(m, common.ContentType_REACTION, ev)
}

// PinEventOf decodes the content of a PIN message; the message's sender is
// who pinned or unpinned.
func PinEventOf(m *common.Message) (*common.PinEvent, error) {
	ev := common.NewPinEvent()
	return ev, decodeContent(m, common.ContentType_PIN, ev)
}

func decodeContent(m *common.Message, want common.ContentType, v codec.Readable) error {
	if m.ContentType != want {
		return errorf("%w: message %d is %s, not %s", ErrBadParams, m.MsgId, m.ContentType, want)
	}
	// Through ReadBody: the generated reader panics on some malformed input.
	if err := codec.ReadBody(m.Content, v); err != nil {
		return errorf("%w: %s of message %d: %v", ErrProtocol, want, m.MsgId, err)
	}
	return nil
}

// The Session forms retry like Session.Send, with one client msg id, and
// then fetch the event they stored into Messages: the server does not push
// it back to the connection it came from.

// CreateGroup is Client.CreateGroup on the session's connection. A lost
// answer is settled by the retry, which returns the group created; the
// error wraps ErrOutcomeUnknown when ctx ends before one settles it, or
// when the server refuses the retry without acting on it (RATE_LIMITED,
// which is not retried).
func (s *Session) CreateGroup(ctx context.Context, name string,
	members []int64) (*protocol.GroupChangeResp, error) {
	id := NewClientMsgID()
	return retryEvent(s, ctx, func(c *Client) (*protocol.GroupChangeResp, string, error) {
		r, err := c.CreateGroup(ctx, name, members, id)
		if err != nil {
			return nil, "", err // r is nil: its conversation id is not known
		}
		return r, r.ConvId, nil
	})
}

// ManageGroup is Client.ManageGroup on the session's connection; a lost
// answer is settled as for CreateGroup.
func (s *Session) ManageGroup(ctx context.Context,
	req *protocol.ManageGroupReq) (*protocol.GroupChangeResp, error) {
	if req.ClientMsgId == "" {
		req.ClientMsgId = NewClientMsgID()
	}
	return retryEvent(s, ctx, func(c *Client) (*protocol.GroupChangeResp, string, error) {
		r, err := c.ManageGroup(ctx, req)
		return r, req.ConvId, err
	})
}

// Recall is Client.Recall on the session's connection.
func (s *Session) Recall(ctx context.Context, convID string, seq int64) (*protocol.SendResp, error) {
	id := NewClientMsgID()
	return retryEvent(s, ctx, func(c *Client) (*protocol.SendResp, string, error) {
		r, err := c.Recall(ctx, convID, seq, id)
		return r, convID, err
	})
}

// Edit is Client.Edit on the session's connection.
func (s *Session) Edit(ctx context.Context, convID string, seq int64,
	text string) (*protocol.SendResp, error) {
	id := NewClientMsgID()
	return retryEvent(s, ctx, func(c *Client) (*protocol.SendResp, string, error) {
		r, err := c.Edit(ctx, convID, seq, text, id)
		return r, convID, err
	})
}

// React is Client.React on the session's connection, retried under one
// client msg id. A reaction that changed nothing (Duplicate, Seq 0) has no
// event for Messages.
func (s *Session) React(ctx context.Context, convID string, seq int64, emoji string,
	remove bool) (*protocol.SendResp, error) {
	req := &protocol.ReactReq{ClientMsgId: NewClientMsgID(), ConvId: convID, Seq: seq,
		Emoji: emoji, Remove: remove}
	return retryEvent(s, ctx, func(c *Client) (*protocol.SendResp, string, error) {
		r, err := c.react(ctx, req)
		return r, convID, err
	})
}

// Pin is Client.Pin on the session's connection, retried under one client
// msg id. A pin that changed nothing (Duplicate, Seq 0) has no event for
// Messages.
func (s *Session) Pin(ctx context.Context, convID string, seq int64,
	unpin bool) (*protocol.SendResp, error) {
	req := &protocol.PinReq{ClientMsgId: NewClientMsgID(), ConvId: convID, Seq: seq,
		Unpin: unpin}
	return retryEvent(s, ctx, func(c *Client) (*protocol.SendResp, string, error) {
		r, err := c.pin(ctx, req)
		return r, convID, err
	})
}

// retryEvent runs op until it succeeds, fails for good or ctx ends, then
// queues a fetch of the conversation so the stored event reaches Messages.
// A retry with the same client msg id settles an attempt whose answer was
// lost; when none did, the error wraps ErrOutcomeUnknown.
func retryEvent[R any](s *Session, ctx context.Context,
	op func(c *Client) (R, string, error)) (R, error) {
	backoff := s.cfg.MinBackoff
	var retry retrier
	var unsure bool // an attempt went unanswered
	for {
		c, err := s.Client(ctx)
		if err != nil {
			var zero R
			return zero, stillUnknown(err, unsure)
		}
		r, convID, err := op(c)
		if err == nil {
			s.mu.Lock()
			s.wantLocked(convID)
			s.mu.Unlock()
			return r, nil
		}
		unsure = unsure || errors.Is(err, ErrOutcomeUnknown)
		if ctx.Err() != nil || !retry.again(c, err) {
			return r, stillUnknown(err, unsure)
		}
		if err := sleep(ctx, jitter(backoff)); err != nil {
			return r, stillUnknown(err, unsure)
		}
		backoff = min(backoff*2, s.cfg.MaxBackoff)
	}
}

// stillUnknown returns err, the last attempt's, wrapping ErrOutcomeUnknown
// when an earlier attempt went unanswered and no answer since settled it.
// Only the server's final answer to a retry with the same id does: a
// refusal of the retry unacted (settles) says nothing of the lost attempt,
// which the server may have applied.
func stillUnknown(err error, unsure bool) error {
	if !unsure || errors.Is(err, ErrOutcomeUnknown) || settles(err) {
		return err
	}
	return errorf("%w: an earlier attempt's answer was lost: %w", ErrOutcomeUnknown, err)
}

// settles reports whether err, a retry's, is the server's answer to the
// request itself: a refusal that is final. A retryable one (BUSY,
// UNAVAILABLE, INTERNAL) and RATE_LIMITED are given before the request is
// acted on, whatever an earlier attempt did.
func settles(err error) bool {
	var se *Error
	return errors.As(err, &se) && !se.IsRetryable() &&
		se.Code != common.ErrorCode_RATE_LIMITED
}
