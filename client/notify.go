package client

import (
	"context"
	"sync"
	"time"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Ephemeral events: typing indicators, presence and live read positions.
// The server sends them as NOTIFY frames, handed to Options.OnNotify; they
// are not stored, not ordered with messages and not resent, so an app treats
// them as hints (a typing indicator times out by itself after a few seconds;
// a read position is also in SYNC_CONVS).

func (c *Client) deliverNotify(body []byte) error {
	if c.opts.OnNotify == nil {
		return nil
	}
	n := protocol.NewNotify()
	if err := codec.ReadBody(body, n); err != nil {
		return errorf("%w: notify: %w", ErrProtocol, err)
	}
	c.opts.OnNotify(n)
	return nil
}

// Typing tells the other members of convID that this user started (typing
// true) or stopped typing. The server forwards at most one of each state per
// conversation every 2 seconds and drops the rest silently, so an app may
// send "typing" on every keystroke burst; it answers RATE_LIMITED only to a
// flood across conversations.
func (c *Client) Typing(ctx context.Context, convID string, typing bool) error {
	req := &protocol.TypingReq{ConvId: convID, Typing: typing}
	if err := c.roundTrip(ctx, protocol.Op_TYPING, req, protocol.NewTypingResp()); err != nil {
		return errorf("typing in %q: %w", convID, err)
	}
	return nil
}

// MaxPresenceUsers is the server's bound on the user ids of one
// GetPresence or WatchPresence: it refuses a longer list as a whole
// (TOO_LARGE), so a caller with more users picks which to ask about.
const MaxPresenceUsers = 200

// checkPresenceIDs refuses, unsent, a presence request over more users than
// the server takes: it would refuse it as a whole.
func checkPresenceIDs(what string, userIDs []int64) error {
	if len(userIDs) <= MaxPresenceUsers {
		return nil
	}
	return errorf("%s of %d users: %w: over the %d the server takes", what, len(userIDs),
		ErrBadParams, MaxPresenceUsers)
}

// GetPresence returns whether each user is online now, in the order asked,
// duplicates left out. Over MaxPresenceUsers ids is ErrBadParams, unsent.
func (c *Client) GetPresence(ctx context.Context, userIDs []int64) ([]*protocol.Presence, error) {
	if err := checkPresenceIDs("presence", userIDs); err != nil {
		return nil, err
	}
	req := &protocol.GetPresenceReq{UserIds: userIDs}
	resp := protocol.NewGetPresenceResp()
	if err := c.roundTrip(ctx, protocol.Op_GET_PRESENCE, req, resp); err != nil {
		return nil, errorf("presence of %d users: %w", len(userIDs), err)
	}
	return resp.Presences, nil
}

// WatchPresence replaces the set of users whose presence changes the
// server sends to every device of this user as NOTIFY, and returns their
// presence now. An empty set stops watching; over MaxPresenceUsers ids is
// ErrBadParams, unsent. The server keeps the set for a day after it was
// last sent: send it again after each login (Session does).
func (c *Client) WatchPresence(ctx context.Context, userIDs []int64) ([]*protocol.Presence, error) {
	if err := checkPresenceIDs("watch presence", userIDs); err != nil {
		return nil, err
	}
	req := &protocol.WatchPresenceReq{UserIds: userIDs}
	resp := protocol.NewGetPresenceResp()
	if err := c.roundTrip(ctx, protocol.Op_WATCH_PRESENCE, req, resp); err != nil {
		return nil, errorf("watch presence of %d users: %w", len(userIDs), err)
	}
	return resp.Presences, nil
}

// watchState is a Session's watch set.
type watchState struct {
	// mu is held across the request, so that a resend after a reconnect
	// never overtakes a newer set on its way to the server.
	mu  sync.Mutex
	ids []int64 // nil: never set
}

// Typing is Client.Typing on the current connection.
func (s *Session) Typing(ctx context.Context, convID string, typing bool) error {
	c, err := s.Client(ctx)
	if err != nil {
		return errorf("session typing: %w", err)
	}
	return c.Typing(ctx, convID, typing)
}

// GetPresence is Client.GetPresence on the current connection.
func (s *Session) GetPresence(ctx context.Context, userIDs []int64) ([]*protocol.Presence, error) {
	c, err := s.Client(ctx)
	if err != nil {
		return nil, errorf("session presence: %w", err)
	}
	return c.GetPresence(ctx, userIDs)
}

// WatchPresence is Client.WatchPresence on the current connection; the
// Session remembers the set and sends it again after every reconnect, and
// every watchRefresh on a long-lived connection (the server lets a set lapse
// a day after it was last sent), so changes keep arriving through
// SessionConfig.Client.OnNotify. A set the server refused is still
// remembered, but not sent again on its own while the refusal of the op is
// (a server older than it; see lackedOp). A call always asks the server,
// but for a set over MaxPresenceUsers: ErrBadParams, neither sent nor
// remembered, the set before it kept.
func (s *Session) WatchPresence(ctx context.Context,
	userIDs []int64) ([]*protocol.Presence, error) {
	if err := checkPresenceIDs("session watch presence", userIDs); err != nil {
		return nil, err
	}
	s.watch.mu.Lock()
	defer s.watch.mu.Unlock()
	s.watch.ids = append([]int64{}, userIDs...)
	c, err := s.Client(ctx)
	if err != nil {
		return nil, errorf("session watch presence: %w", err)
	}
	presences, err := c.WatchPresence(ctx, s.watch.ids)
	s.noteWatch(err)
	return presences, err
}

// noteWatch remembers whether a WATCH_PRESENCE's error, err, says that the
// server lacks the op, or forgets the refusals when it was answered.
func (s *Session) noteWatch(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err == nil:
		s.noWatch.answered()
	case lacksOp(err):
		s.noWatch.refused(time.Now(), s.cfg.ResyncInterval)
	}
}

// watchRefresh is how often a Session sends its watch set again on one
// connection: well within the server's day.
const watchRefresh = 6 * time.Hour

// rewatch sends the remembered watch set on a new connection, then every
// watchRefresh until the connection ends, in the background: presence is a
// hint, and catching up on messages must not wait for it.
func (s *Session) rewatch(c *Client) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		tick := time.NewTicker(watchRefresh)
		defer tick.Stop()
		for {
			s.sendWatch(c)
			s.cfg.hooks.watched(s)
			select {
			case <-tick.C:
			case <-c.Done():
				return
			case <-s.ctx.Done():
				return
			}
		}
	}()
}

// sendWatch sends the remembered watch set on c, if one was set and no
// refusal of the op is remembered: a server older than WATCH_PRESENCE would
// refuse it on every connection, and a gateway that closes the connection
// for the op would close each one. An error ends nothing: the connection's
// own error, if any, surfaces in serveConn.
func (s *Session) sendWatch(c *Client) {
	s.watch.mu.Lock()
	defer s.watch.mu.Unlock()
	s.mu.Lock()
	lacking := s.noWatch.active(time.Now())
	s.mu.Unlock()
	if s.watch.ids != nil && !lacking {
		_, err := c.WatchPresence(s.ctx, s.watch.ids)
		s.noteWatch(err)
	}
}
