package client

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Send retries: attempts in all, and the first backoff, doubled each retry
// with up to half of it added as jitter so that clients hit by one outage do
// not come back in step.
const (
	sendAttempts     = 4
	sendFirstBackoff = 200 * time.Millisecond
)

// Register creates a user and returns its id. It is allowed before Login and
// does not log the connection in. When the request was sent but its answer
// lost, the error wraps ErrOutcomeUnknown: the user may have been created,
// and registering again would be refused as taken; log in to find out.
func (c *Client) Register(ctx context.Context, username, password string) (int64, error) {
	req := &protocol.RegisterReq{Username: username, Password: password}
	resp := protocol.NewRegisterResp()
	if err := c.roundTripOnce(ctx, protocol.Op_REGISTER, req, resp); err != nil {
		return 0, errorf("register %q: %w", username, err)
	}
	return resp.UserId, nil
}

// LoginParams authenticates a connection with Username and Password, or with
// a Token from an earlier LoginResp. DeviceID names the device: a newer login
// of the same user and device replaces this one (CLOSE KICKED).
type LoginParams struct {
	Username string
	Password string
	Token    string
	DeviceID string
	Platform string
}

// Login authenticates the connection. On success it starts sending
// heartbeats at the interval the server gives in the reply.
func (c *Client) Login(ctx context.Context, p LoginParams) (*protocol.LoginResp, error) {
	req := &protocol.LoginReq{
		Username: p.Username,
		Password: p.Password,
		Token:    p.Token,
		DeviceId: p.DeviceID,
		Platform: p.Platform,
	}
	resp := protocol.NewLoginResp()
	if err := c.roundTrip(ctx, protocol.Op_LOGIN, req, resp); err != nil {
		return nil, errorf("login %q device %q: %w", p.Username, p.DeviceID, err)
	}
	c.mu.Lock()
	c.device = cmp.Or(resp.DeviceId, p.DeviceID)
	c.limits = LimitsOf(resp)
	c.mu.Unlock()
	c.startHeartbeat(time.Duration(resp.HeartbeatIntervalMs) * time.Millisecond)
	return resp, nil
}

// Limits are the server's limits as its reply to Login reported them, the
// defaults (DefaultLimits) before a login and from a server that reports
// none.
func (c *Client) Limits() Limits {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.device == "" {
		return DefaultLimits()
	}
	return c.limits
}

// SendParams is one message to send. Name the recipient with ToUserID (1:1)
// or ConvID (an existing conversation). A non-empty Text is sent as TEXT;
// otherwise Content is sent as BINARY. ClientMsgID is the idempotency key;
// Send fills it with a random id when empty.
type SendParams struct {
	ToUserID    int64
	ConvID      string
	ClientMsgID string
	Text        string
	Content     []byte
	// ReplyToSeq quotes the message at that seq of the same conversation;
	// 0 quotes none. The server refuses (BAD_REQUEST) a seq the sender
	// cannot read.
	ReplyToSeq int64
	// Mentions are user ids of current group members (groups only, at most
	// MaxMentions; ParseMentions finds them in a text). MentionAll mentions
	// every member: the owner's and admins' privilege (else FORBIDDEN).
	Mentions   []int64
	MentionAll bool
	// File, when set, is sent as a FILE message (Text and Content empty):
	// a FileRef from Upload, or from a FILE message to forward.
	File *common.FileRef
}

// Send sends one message and waits for its ack. On a retryable failure (a
// 2xxx server code or ErrTimeout) it retries up to 3 times with backoff and
// the same client msg id, so the server stores the message at most once; the
// ack of a retry may then say Duplicate. It does not retry once ctx is done
// or the connection has ended.
func (c *Client) Send(ctx context.Context, p SendParams) (*protocol.SendResp, error) {
	if p.Text != "" && len(p.Content) > 0 {
		return nil, errorf("send: %w: both Text and Content set", ErrBadParams)
	}
	if p.ClientMsgID == "" {
		p.ClientMsgID = NewClientMsgID()
	}
	req := &protocol.SendReq{
		ClientMsgId: p.ClientMsgID,
		ToUserId:    p.ToUserID,
		ConvId:      p.ConvID,
		ContentType: common.ContentType_BINARY,
		Content:     p.Content,
		ReplyToSeq:  setIf(p.ReplyToSeq),
		Mentions:    p.Mentions,
		MentionAll:  setIf(p.MentionAll),
	}
	switch {
	case p.File != nil && (p.Text != "" || len(p.Content) > 0):
		return nil, errorf("send: %w: a file with Text or Content", ErrBadParams)
	case p.File != nil:
		req.ContentType, req.Content = common.ContentType_FILE, EncodeFileRef(p.File)
	case p.Text != "":
		req.ContentType = common.ContentType_TEXT
		req.Content = []byte(p.Text)
	}
	resp, err := c.sendWithRetry(ctx, req)
	if err != nil {
		return nil, errorf("send %s to user %d conv %q: %w",
			p.ClientMsgID, p.ToUserID, p.ConvID, err)
	}
	return resp, nil
}

func (c *Client) sendWithRetry(ctx context.Context,
	req *protocol.SendReq) (*protocol.SendResp, error) {
	backoff := sendFirstBackoff
	for attempt := 1; ; attempt++ {
		resp := protocol.NewSendResp()
		err := c.roundTrip(ctx, protocol.Op_SEND, req, resp)
		if err == nil {
			return resp, nil
		}
		if attempt == sendAttempts || !c.retryable(err) {
			return nil, err
		}
		wait := backoff + rand.N(backoff/2+1)
		backoff *= 2
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, errorf("%w (after attempt %d: %w)", ctx.Err(), attempt, err)
		case <-c.done:
			return nil, err
		}
	}
}

// retryable reports whether a failed request may be sent again on this
// connection.
func (c *Client) retryable(err error) bool {
	if c.Err() != nil {
		return false
	}
	var se *Error
	if errors.As(err, &se) {
		return se.IsRetryable()
	}
	return errors.Is(err, ErrTimeout)
}

// Sync returns the messages of convID with seq > afterSeq, oldest first, at
// most limit (the server caps it; 0 lets the server choose).
func (c *Client) Sync(ctx context.Context, convID string, afterSeq int64,
	limit int32) (*protocol.SyncResp, error) {
	req := &protocol.SyncReq{ConvId: convID, AfterSeq: afterSeq, Limit: limit}
	resp := protocol.NewSyncResp()
	if err := c.roundTrip(ctx, protocol.Op_SYNC, req, resp); err != nil {
		return nil, errorf("sync %q after %d: %w", convID, afterSeq, err)
	}
	return resp, nil
}

// GetUser looks a user up by name. An unknown name fails with an *Error of
// code NOT_FOUND.
func (c *Client) GetUser(ctx context.Context, username string) (*protocol.GetUserResp, error) {
	return c.getUser(ctx, &protocol.GetUserReq{Username: username})
}

// GetUserByID looks a user up by id, for example to name the sender of a
// message. An unknown id fails with an *Error of code NOT_FOUND.
func (c *Client) GetUserByID(ctx context.Context, userID int64) (*protocol.GetUserResp, error) {
	return c.getUser(ctx, &protocol.GetUserReq{UserId: userID})
}

func (c *Client) getUser(ctx context.Context,
	req *protocol.GetUserReq) (*protocol.GetUserResp, error) {
	resp := protocol.NewGetUserResp()
	if err := c.roundTrip(ctx, protocol.Op_GET_USER, req, resp); err != nil {
		return nil, errorf("get user %q id %d: %w", req.Username, req.UserId, err)
	}
	return resp, nil
}

// P2PConvID returns the id the server gives the 1:1 conversation of users a
// and b: "p2p:<lower id>:<higher id>", the same whichever side asks.
func P2PConvID(a, b int64) string {
	if a > b {
		a, b = b, a
	}
	return fmt.Sprintf("p2p:%d:%d", a, b)
}

// NewClientMsgID returns a random 128-bit idempotency key in hex.
func NewClientMsgID() string {
	var b [16]byte
	_, _ = crand.Read(b[:]) // never fails on supported platforms (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// LatestSeq as the before seq of SyncBefore asks for the newest page of a
// conversation, whatever its last seq.
const LatestSeq int64 = 1<<63 - 1

// SyncBefore returns the newest messages of convID with seq < beforeSeq, at
// most limit, oldest first (a backward page for history screens). HasMore
// then says that older messages remain: call again with the first seq of
// this page. Pass LatestSeq for the newest page.
func (c *Client) SyncBefore(ctx context.Context, convID string, beforeSeq int64,
	limit int32) (*protocol.SyncResp, error) {
	if beforeSeq <= 0 {
		return nil, errorf("sync %q before %d: %w", convID, beforeSeq, ErrBadParams)
	}
	req := &protocol.SyncReq{ConvId: convID, BeforeSeq: beforeSeq, Limit: limit}
	resp := protocol.NewSyncResp()
	if err := c.roundTrip(ctx, protocol.Op_SYNC, req, resp); err != nil {
		return nil, errorf("sync %q before %d: %w", convID, beforeSeq, err)
	}
	return resp, nil
}

// Delivered tells the server which messages this device has handed to its
// application: per conversation, the highest seq such that every seq up to
// it was handed over. The server keeps the highest position it was told, so
// resending an older one is harmless.
func (c *Client) Delivered(ctx context.Context, positions []*protocol.ConvPos) error {
	req := &protocol.DeliveredReq{Positions: positions}
	resp := protocol.NewDeliveredResp()
	if err := c.roundTrip(ctx, protocol.Op_DELIVERED, req, resp); err != nil {
		return errorf("delivered %d positions: %w", len(positions), err)
	}
	return nil
}

// SyncConvs returns one page of the user's conversations changed since
// cursor ("" for all of them). Pass the reply's Cursor to the next call, at
// once while HasMore is set, and keep the last one for the next resume. A
// conversation may appear again in a later page; its LastSeq decides.
func (c *Client) SyncConvs(ctx context.Context, cursor string,
	limit int32) (*protocol.SyncConvsResp, error) {
	req := &protocol.SyncConvsReq{Cursor: cursor, Limit: limit}
	resp := protocol.NewSyncConvsResp()
	if err := c.roundTrip(ctx, protocol.Op_SYNC_CONVS, req, resp); err != nil {
		return nil, errorf("sync convs from %q: %w", cursor, err)
	}
	return resp, nil
}

// MarkRead moves the user's read position of convID forward to seq, for all
// of the user's devices, and returns the position the server now holds
// (never lower than before).
func (c *Client) MarkRead(ctx context.Context, convID string, seq int64) (int64, error) {
	req := &protocol.MarkReadReq{ConvId: convID, Seq: seq}
	resp := protocol.NewMarkReadResp()
	if err := c.roundTrip(ctx, protocol.Op_MARK_READ, req, resp); err != nil {
		return 0, errorf("mark %q read up to %d: %w", convID, seq, err)
	}
	return resp.ReadSeq, nil
}

// setIf returns a pointer to v, or nil when v is its type's zero value: an
// optional field that says nothing is left unset and costs no bytes. logic
// has its own copy: sharing seven lines through internal/ would make the
// SDK depend on more than the wire contracts (codec, kitex_gen).
func setIf[T comparable](v T) *T {
	var zero T
	if v == zero {
		return nil
	}
	return &v
}
