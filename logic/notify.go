package logic

import (
	"context"
	"strings"
	"time"

	"github.com/resonance-im/resonance/internal/ratelimit"
	"github.com/resonance-im/resonance/internal/route"
	"github.com/resonance-im/resonance/kitex_gen/event"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Ephemeral events (typing, presence, live read receipts) are published on
// core NATS (mq.Names.NotifySubject, PresenceSubject) for task to deliver as
// NOTIFY frames. Nothing is stored and nothing is retried: a lost one costs
// a typing indicator or a read tick that the next event or a sync repairs,
// so publishing never fails or slows the request that caused it.

// EphemeralConfig bounds typing and presence requests. A zero field means
// its default.
type EphemeralConfig struct {
	// TypingLimit bounds the typing events forwarded per user, conversation
	// and state (started or stopped) in this instance; default a burst of 1,
	// then one per 2s. Excess events are answered OK and dropped: a client
	// repeats "typing" every few seconds anyway.
	TypingLimit ratelimit.Config
	// TypingUserLimit bounds TYPING requests per user over all conversations
	// in this instance; default a burst of 20, then one per 500ms. Past it
	// the request is RATE_LIMITED.
	TypingUserLimit ratelimit.Config
	// TypingMaxMembers is the largest conversation whose typing events are
	// forwarded; default 100. In bigger groups typing is answered OK and not
	// sent: a fan-out to thousands for an indicator costs more than it shows.
	TypingMaxMembers int
	// PresenceLimit bounds GET_PRESENCE and WATCH_PRESENCE requests per user
	// in this instance; default a burst of 20, then one per second.
	PresenceLimit ratelimit.Config
}

// Defaults of EphemeralConfig.
const (
	DefaultTypingMaxMembers = 100
	// MaxPresenceIDs is the most user ids one GET_PRESENCE or
	// WATCH_PRESENCE may name, and so the size of a watch set.
	MaxPresenceIDs = 200
)

func (c EphemeralConfig) withDefaults() EphemeralConfig {
	c.TypingLimit = limitDefaults(c.TypingLimit, 1, 2*time.Second)
	c.TypingUserLimit = limitDefaults(c.TypingUserLimit, 20, 500*time.Millisecond)
	c.PresenceLimit = limitDefaults(c.PresenceLimit, 20, time.Second)
	if c.TypingMaxMembers == 0 {
		c.TypingMaxMembers = DefaultTypingMaxMembers
	}
	return c
}

// ephemeral is the state of the ephemeral features: their limiters and the
// watch store.
type ephemeral struct {
	cfg        EphemeralConfig
	typingConv *ratelimit.Limiter // per user, conversation and state
	typingUser *ratelimit.Limiter // per user
	typingLast typingStates       // per user and conversation
	presence   *ratelimit.Limiter // per user
	watches    route.Watches
}

func newEphemeral(cfg EphemeralConfig, watches route.Watches) *ephemeral {
	if watches == nil {
		watches = route.NewMemoryWatches(0)
	}
	return &ephemeral{
		cfg:        cfg,
		typingConv: ratelimit.New(cfg.TypingLimit),
		typingUser: ratelimit.New(cfg.TypingUserLimit),
		presence:   ratelimit.New(cfg.PresenceLimit),
		watches:    watches,
	}
}

// publishNotify asks task to write n to every live device of recipients
// except the origin connection. It does not block on the network (the NATS
// client buffers the publish) and never fails the caller: an error is logged
// with the ids, rate-limited.
func (s *Service) publishNotify(_ context.Context, recipients []int64, n *protocol.Notify,
	origin connRef) {
	if len(recipients) == 0 {
		return
	}
	ev := &event.NotifyEvent{Notify: n, Recipients: recipients,
		OriginGateway: origin.gateway, OriginConnId: origin.connID}
	buf := make([]byte, ev.BLength())
	buf = buf[:ev.FastWrite(buf)]
	if err := s.deps.JS.Conn().Publish(s.deps.MQ.NotifySubject(), buf); err != nil {
		s.failLog.Warn().Err(err).Ints64("recipients", recipients[:min(len(recipients), 8)]).
			Str("kind", notifyKind(n)).Msg("notify publish failed; dropped")
	}
}

// publishPresence tells task that user's routes changed, so it may tell the
// user's watchers once the change settles. Like publishNotify it never
// blocks or fails the caller.
func (s *Service) publishPresence(user int64) {
	ev := &event.PresenceEvent{UserId: user, AtMs: s.now().UnixMilli()}
	buf := make([]byte, ev.BLength())
	buf = buf[:ev.FastWrite(buf)]
	if err := s.deps.JS.Conn().Publish(s.deps.MQ.PresenceSubject(), buf); err != nil {
		s.failLog.Warn().Err(err).Int64("user", user).Msg("presence publish failed; dropped")
	}
}

// notifyRead tells the user's other devices, and the peer of a 1:1
// conversation, that the user's read position in convID moved to readSeq.
// Group members are not told: a read in a large group would fan out to
// everyone; they ask READ_COUNTS instead.
func (s *Service) notifyRead(ctx context.Context, session *logicrpc.Session, convID string,
	readSeq int64) {
	recipients := []int64{session.UserId}
	if strings.HasPrefix(convID, p2pPrefix) {
		if peer, err := peerOf(convID, session.UserId); err == nil && s.receiptAllowed(ctx,
			session.UserId, peer) {
			recipients = append(recipients, peer)
		}
	}
	n := &protocol.Notify{Read_: &protocol.ReadUpdate{ConvId: convID, UserId: session.UserId,
		ReadSeq: readSeq}}
	s.publishNotify(ctx, recipients, n, ownConn(session))
}

// receiptAllowed reports whether reader's live read receipt may reach peer:
// not across a block either way, since a receipt shows the reader online
// now, which a block hides from the blocked (like typing). A failed check
// sends none: the receipt is a hint that SYNC_CONVS repeats.
func (s *Service) receiptAllowed(ctx context.Context, reader, peer int64) bool {
	blocked, err := s.blockedBetween(ctx, reader, peer)
	if err != nil {
		s.failLog.Warn().Err(err).Int64("user", reader).Int64("peer", peer).
			Msg("read receipt block check failed; receipt not sent to the peer")
	}
	return err == nil && !blocked
}

// notifyKind names the field set in n, for logs.
func notifyKind(n *protocol.Notify) string {
	switch {
	case n.IsSetRead():
		return "read"
	case n.IsSetTyping():
		return "typing"
	case n.IsSetPresence():
		return "presence"
	case n.IsSetCleared():
		return "cleared"
	}
	return "empty"
}
