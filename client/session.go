package client

import (
	"cmp"
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// SessionConfig configures a Session. Zero fields take their defaults.
type SessionConfig struct {
	// Addr is the gateway's host:port. Required.
	Addr string
	// Fallbacks are more gateways; after a failed dial, or a login answered
	// in another protocol or not at all (Options.RequestTimeout), the
	// Session tries the next address of Addr, Fallbacks... in turn, and
	// stays on one that works; a gateway closing the connection with
	// SERVER_SHUTDOWN sends it to the next too. OpenSession tries each
	// once, if need be, before it gives up; a login refused by a gateway
	// ends it there.
	Fallbacks []string
	// Login authenticates every connection. Give Username and Password, or
	// a Token, or both: after the first login the Session logs in again
	// with the newest token, then its refresh token, and falls back to the
	// password when they expired. DeviceID names this device. A device
	// signed out while this Session was offline (SIGN_OUT_DEVICE from
	// another device, LOGOUT, a password change) is not signed in again
	// with the password: the gateway refuses its token and closes the
	// connection with SIGNED_OUT, and the Session ends with
	// ErrSessionEnded wrapping that *CloseError, as when a sign-out closes
	// a live connection or a catch-up is answered TOKEN_INVALID (the
	// sign-out of a connection whose close was lost). The exception is the
	// Session's own ChangePassword of unknown outcome, which revokes this
	// device's tokens if it was made: the Session goes on to the new
	// password, then the old one. A gateway from before that close refuses
	// the token only, and the Session signs the device in again with the
	// password.
	Login LoginParams
	// Client configures each connection.
	Client Options
	// Positions keeps what was handed to the application; default a new
	// MemoryPositions.
	Positions PositionStore
	// StartAtLatest makes a conversation this device has no position for
	// (locally nor on the server) start at its newest message from before
	// the device's start instead of its first, for an app that shows older
	// history on demand (SyncBefore). What is stored from the start on is
	// handed over, by the server's clock: a message stored within its
	// clocks' skew of the start may count as either. The start is the
	// session's first login, or the first Session's when Positions is a
	// StartStore that recorded it (MemoryPositions is). Where a
	// conversation starts becomes the device's position (Positions, and
	// DELIVERED), so a later process continues from it.
	StartAtLatest bool
	// Buffer is the capacity of the Messages channel; default 1024.
	Buffer int
	// AckInterval is the longest a handed-over message waits before its
	// DELIVERED is sent; default 200ms.
	AckInterval time.Duration
	// AckBatch sends DELIVERED early once this many messages were handed
	// over since the last one; default 100.
	AckBatch int
	// SyncPage is the page size of gap and resume fetches; default 100.
	SyncPage int32
	// ResyncInterval is how often a connected Session asks which
	// conversations changed, as after a reconnect; default 1 minute. A push
	// lost with no later one in its conversation is otherwise found only at
	// the next reconnect.
	ResyncInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait between reconnect attempts,
	// doubled after each failure and jittered; defaults 200ms and 30s. A
	// CLOSE frame's reconnect_after_ms overrides them once.
	MinBackoff, MaxBackoff time.Duration
	// OnEvent, when set, is called on the Session's goroutine at each change
	// of connection state. It must return quickly and must not call Send.
	OnEvent func(Event)

	// hooks are set by the package's tests only.
	hooks sessionHooks
}

// sessionHooks let the tests stop a Session between two steps, to force an
// interleaving that timing alone hits once in a million runs.
type sessionHooks struct {
	// afterFailedAttempt runs on the connection goroutine when a reconnect
	// attempt has failed, before the session looks for Close.
	afterFailedAttempt func(*Session)
	// beforeHandOverWait runs when a final DELIVERED starts waiting for the
	// delivery goroutine to stop (awaitHandOver).
	beforeHandOverWait func(*Session)
	// afterWatch runs on a connection's watch goroutine each time it has
	// sent the watch set, or passed over sending it (rewatch).
	afterWatch func(*Session)
	// logoutBegun runs in Logout once the session is marked as logging
	// out, before Logout ends it.
	logoutBegun func(*Session)
}

func (h sessionHooks) failedAttempt(s *Session) {
	if h.afterFailedAttempt != nil {
		h.afterFailedAttempt(s)
	}
}

func (h sessionHooks) handOverWait(s *Session) {
	if h.beforeHandOverWait != nil {
		h.beforeHandOverWait(s)
	}
}

func (h sessionHooks) watched(s *Session) {
	if h.afterWatch != nil {
		h.afterWatch(s)
	}
}

func (h sessionHooks) loggingOut(s *Session) {
	if h.logoutBegun != nil {
		h.logoutBegun(s)
	}
}

const (
	defaultAckInterval = 200 * time.Millisecond
	defaultAckBatch    = 100
	defaultSyncPage    = 100
	defaultResync      = time.Minute
	defaultMinBackoff  = 200 * time.Millisecond
	defaultMaxBackoff  = 30 * time.Second
	// readyLimit bounds the messages sequenced but not yet handed over;
	// past it the push reader waits for the application.
	readyLimit = 4096
)

func (c SessionConfig) withDefaults() (SessionConfig, error) {
	if c.Addr == "" {
		return c, errorf("session: %w: no address", ErrBadParams)
	}
	if c.Login.Token == "" && (c.Login.Username == "" || c.Login.Password == "") {
		return c, errorf("session: %w: no token nor username and password",
			ErrBadParams)
	}
	if c.Positions == nil {
		c.Positions = NewMemoryPositions()
	}
	c.Buffer = cmpOr(c.Buffer, defaultPushBuffer)
	c.AckInterval = cmpOr(c.AckInterval, defaultAckInterval)
	c.AckBatch = cmpOr(c.AckBatch, defaultAckBatch)
	c.SyncPage = cmpOr(c.SyncPage, defaultSyncPage)
	c.ResyncInterval = cmpOr(c.ResyncInterval, defaultResync)
	c.MinBackoff = cmpOr(c.MinBackoff, defaultMinBackoff)
	c.MaxBackoff = max(cmpOr(c.MaxBackoff, defaultMaxBackoff), c.MinBackoff)
	return c, nil
}

// cmpOr returns v, or def when v is not positive.
func cmpOr[T int | int32 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// EventKind says what an Event reports.
type EventKind int

// The events of a Session.
const (
	// EventConnected: a connection logged in; Event.Login is its reply and
	// Event.Addr the gateway it reached.
	EventConnected EventKind = iota + 1
	// EventResumed: the connection caught up on every conversation.
	EventResumed
	// EventDisconnected: the connection ended with Event.Err; the next
	// attempt comes after Event.RetryIn.
	EventDisconnected
	// EventConvRefused: the server refused the catch-up of the
	// conversation Event.ConvID (FORBIDDEN or NOT_FOUND, in Event.Err,
	// which wraps ErrConvRefused): one the user may no longer read, for
	// example. The Session passes over it and catches up on the others;
	// it asks again when the conversation next changes (a push, a later
	// listing) or a resync finds messages of it held behind a gap,
	// without another event until a catch-up of it succeeds.
	EventConvRefused
	// EventConvHidden: the user hid the conversation Event.ConvID
	// (ClearConv with hide, on this device or another), and nothing newer
	// arrived since: drop it from the conversation list. Its next message
	// arrives as usual and lists it again. A listing, and a hide on another
	// device (NOTIFY cleared), may report it more than once.
	EventConvHidden
)

// Event is a change of a Session's connection state.
type Event struct {
	Kind  EventKind
	Login *protocol.LoginResp
	// Addr is the address of the gateway connected to, one of
	// SessionConfig.Addr and Fallbacks; set for EventConnected.
	Addr string
	// ConvID is the conversation refused or hidden; set for
	// EventConvRefused and EventConvHidden.
	ConvID  string
	Err     error
	RetryIn time.Duration
}

// Session is a logged-in presence of one device that survives connection
// loss. It hands the application every message of the user's conversations
// exactly once and in seq order per conversation (Messages), including the
// messages this device sends, which it takes from their acks. Behind that
// promise: a push after a gap is held while the gap is fetched, duplicates
// are dropped, and after each reconnect it asks which conversations changed
// (SYNC_CONVS) and fetches what it missed, while new pushes keep being
// sequenced. It reports what was handed over with DELIVERED, in batches.
//
// Messages of the user sent from another device arrive as pushes like any
// other. A message sent through this Session enters the stream from its
// ack, marked with this DeviceID, so the app renders one stream per
// conversation and never waits for an echo; when the ack is lost with the
// connection, Send retries with the same client msg id and the message
// enters once, from whichever of the retried ack and the catch-up comes
// first.
//
// A Session is safe for concurrent use. It runs a connection goroutine, a
// push reader per connection and a delivery goroutine.
type Session struct {
	cfg    SessionConfig
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	out    chan *common.Message
	done   chan struct{} // closed when the connection goroutine ends
	// emitted is closed when the delivery goroutine ends: nothing more is
	// handed over, and all that was is in dirty (see awaitHandOver).
	emitted chan struct{}
	wg      sync.WaitGroup

	// final outlives ctx: Close cancels it finalAckWait later, or once the
	// connection goroutine ends. The final DELIVERED runs on it, and so
	// does the login of a connection that may have to carry it.
	final       context.Context
	finalCancel context.CancelFunc

	// fillWake and ackWake nudge the connection goroutine; capacity 1, so
	// a nudge is never lost and never blocks.
	fillWake chan struct{}
	ackWake  chan struct{}
	// hideWake nudges it to report hidesNoted, so that EventConvHidden
	// comes on the Session's goroutine like the others.
	hideWake chan struct{}

	// tokenMu is held across a request that replaces the token pair
	// (REFRESH, CHANGE_PASSWORD) and until the new pair is kept, and by a
	// login reading the pair: a refresh racing a password change would
	// otherwise keep, or present, a pair the change revoked (a rotated
	// refresh token presented again signs the device out).
	tokenMu sync.Mutex

	mu   sync.Mutex
	cond *sync.Cond // ready gained messages or room, or the session ends
	seq  *sequencer
	// ready is sequenced messages in hand-over order.
	ready []*common.Message
	// fills is the conversations whose missing messages must be fetched.
	fills map[string]bool
	// refused is the conversations whose fetch the server refused, since
	// reported (passOver).
	refused map[string]bool
	// hidesNoted is the conversations a NOTIFY cleared reported hidden,
	// not yet reported as EventConvHidden.
	hidesNoted []string
	// dirty is delivered positions not yet sent with DELIVERED.
	dirty      map[string]int64
	dirtyCount int
	// ackBatch, when not 0, is the most positions a DELIVERED carries: the
	// server refused a larger one as too large (its frame limit is lower
	// than the SDK's SendLimit, which sendAcks sizes batches by).
	ackBatch int
	// noDelivered remembers a refused DELIVERED for a while, noSyncConvs a
	// gateway closing the connection for SYNC_CONVS, noWatch a refused
	// WATCH_PRESENCE (see lackedOp).
	noDelivered lackedOp
	noSyncConvs lackedOp
	noWatch     lackedOp
	cur         *Client
	curChanged  chan struct{} // closed and replaced when cur changes
	userID      int64
	username    string // as the server spells it
	// limits are the server's, from the last login; clockSkew is the
	// server's clock less this one's, as of that login (ServerNow).
	limits    Limits
	clockSkew time.Duration
	tokens    tokens
	// password logs in when the tokens are refused: the configured one,
	// replaced by ChangePassword.
	password string
	// unconfirmed is the new password of a ChangePassword whose outcome
	// is unknown, tried before password once the tokens are refused; ""
	// when none (see Session.ChangePassword).
	unconfirmed string
	addrIndex   int   // of the gateway to dial next, in Addr, Fallbacks...
	ended       bool  // no more connections; hand over what is ready, then stop
	closing     bool  // Close: stop at once
	err         error // why the session ended
	// loggingOut: Logout has begun, so the final DELIVERED is followed by
	// a LOGOUT (finish); loggedOut: a LOGOUT was answered.
	loggingOut, loggedOut bool
	// logoutUnsure: a LOGOUT went unanswered, so the device may be signed
	// out even if no later one is answered.
	logoutUnsure bool
	// deleted: a DELETE_ACCOUNT was answered; nothing logs in again.
	deleted bool

	watch watchState // the presence watch set, sent again on reconnect
	// queued counts the messages ever put in ready, handed those handed
	// over; a resume's cursor waits in cursor until handed reaches
	// cursorAt (see saveCursor).
	queued, handed int64
	cursor         pendingCursor
	// since is the server's time at the first login, Unix milliseconds.
	since int64
	// start is the device's start (see StartAtLatest), since or earlier:
	// with StartAtLatest, messages stored from then on are handed over.
	start int64
}

// pendingCursor is the cursor of a completed resume, to be saved once the
// messages queued by then are handed over.
type pendingCursor struct {
	value string
	at    int64
	set   bool
}

// OpenSession dials cfg.Addr and logs in, then resumes and keeps the session
// up in the background until Close or a fatal error (see Err). While an
// address cannot be dialled or does not answer as a gateway, it tries each
// of cfg.Fallbacks in turn. An error from this first attempt (a refused
// login, or the one address's failure) is returned as is, so that a wrong
// address or password is reported rather than retried forever; when
// several addresses were tried and none answered as a gateway, it is an
// *AddrsError giving the failure at each.
func OpenSession(ctx context.Context, cfg SessionConfig) (*Session, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Session{
		cfg:        cfg,
		out:        make(chan *common.Message, cfg.Buffer),
		done:       make(chan struct{}),
		emitted:    make(chan struct{}),
		fillWake:   make(chan struct{}, 1),
		ackWake:    make(chan struct{}, 1),
		hideWake:   make(chan struct{}, 1),
		fills:      make(map[string]bool),
		refused:    make(map[string]bool),
		dirty:      make(map[string]int64),
		curChanged: make(chan struct{}),
		tokens:     tokens{access: cfg.Login.Token},
		limits:     DefaultLimits(),
		password:   cfg.Login.Password,
	}
	s.cond = sync.NewCond(&s.mu)
	s.seq = newSequencer(s.origin)
	s.cfg.Client.OnNotify = s.takeNotify(cfg.Client.OnNotify)
	c, resp, err := s.connect(ctx, 1+len(cfg.Fallbacks))
	if err != nil {
		return nil, err
	}
	s.since = cmp.Or(resp.ServerTimeMs, time.Now().UnixMilli())
	s.start = s.deviceStart()
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.final, s.finalCancel = context.WithCancel(context.Background())
	s.wg.Add(2)
	go func() { defer s.wg.Done(); defer close(s.emitted); s.emit() }()
	go func() { defer s.wg.Done(); s.run(c, resp) }()
	return s, nil
}

// deviceStart returns where the device started: the start the store
// recorded, else this session's first login, which it records. Each Session
// starting anew would pass over, as history from before it, a conversation
// that began while the app was closed.
func (s *Session) deviceStart() int64 {
	if !s.cfg.StartAtLatest {
		return s.since
	}
	// TODO: a store that keeps no start (not a StartStore, or a
	// MemoryPositions new to each process) starts the device at each
	// login, so a conversation begun while the app was closed starts at
	// its newest message, its messages passed over as history (listed,
	// unread, by SYNC_CONVS and there for SyncBefore, but never in
	// Messages). The server keeps nothing that says when this device began
	// handing messages over: its first login would not do (a device id a
	// raw Client used before would have all history since handed over),
	// nor would a guess from the listing's delivered positions (a lost
	// DELIVERED would have a whole history handed over).
	st, ok := s.cfg.Positions.(StartStore)
	if !ok {
		return s.since
	}
	if ms, ok := st.Start(); ok {
		return min(ms, s.since)
	}
	st.SetStart(s.since)
	return s.since
}

// Messages returns the messages handed to the application: per
// conversation in seq order, each once. A message counts as delivered (and
// is acknowledged to the server) when it enters this channel, so an app that
// must not lose one to a crash persists it before reading the next. While
// the channel is full, the Session stops reading pushes. It is closed when
// the session ends, after the messages already sequenced (unless by Close).
func (s *Session) Messages() <-chan *common.Message { return s.out }

// Done is closed when the session has ended; Err then says why.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err returns why the session ended: ErrClosed after Close, ErrLoggedOut
// after Logout (and after a Close that raced a Logout which returned nil:
// the device is signed out), ErrAccountDeleted after DeleteAccount, or the
// fatal error (a *CloseError such as KICKED, refused credentials; one
// wrapping ErrAccountDeleted too for ACCOUNT_DELETED, ErrAccountSuspended
// for ACCOUNT_SUSPENDED). nil while it runs.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// UserID is the logged-in user's id.
func (s *Session) UserID() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.userID
}

// Limits are the server's limits as the last login reported them
// (DefaultLimits from a server that reports none).
func (s *Session) Limits() Limits {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limits
}

// ServerNow is the time on the server's clock, as the last login's
// server_time_ms set it against this one: the clock that stamps a
// message's SendTimeMs and judges its recall and edit windows.
func (s *Session) ServerNow() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Now().Add(s.clockSkew)
}

// Username is the logged-in user's name as the server spells it (its
// canonical form: logging in as "Alice" is user "alice"), from the last
// login; the name logged in with when the server does not say.
func (s *Session) Username() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.username
}

// Position returns the highest seq of convID sequenced for hand-over.
func (s *Session) Position(convID string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq.position(convID)
}

// Close ends the session and its connection and waits for its goroutines.
// Messages not yet handed over are dropped; they are fetched again by the
// next session from the same PositionStore. What was handed over is
// reported with a last DELIVERED, for which Close waits about a second at
// most (finalAckWait): on the connection; on the next one when Close comes
// while a reconnect logs in; and, when Close finds the session waiting to
// reconnect with positions the server has not acknowledged, on a
// connection it dials and logs in for that alone. Nothing is handed over
// once Close returns, and nothing of the session runs on. It is idempotent.
func (s *Session) Close() error {
	s.shut(context.Background(), ErrClosed)
	return nil
}

// Logout signs this device out and ends the session, as Close does: the
// last DELIVERED of what was handed over, so that the device's next
// sign-in starts from there, then LOGOUT, which revokes the device's
// tokens and push token on the server. The Session forgets its tokens and
// does not reconnect; a later Session of the device logs in with the
// password. A reconnect logging in meanwhile carries both; a session
// waiting to reconnect dials and logs in one connection for them. All of
// it within about a second (finalAckWait), or until ctx is done: Logout
// returns nil once the server has answered the LOGOUT, else an error
// wrapping ErrLogoutUnconfirmed, the session ended all the same. Err then
// returns ErrLoggedOut; ErrClosed when a Close ended the session first and
// the LOGOUT went unanswered. On a session that had ended before, it signs
// nothing out and returns ErrLogoutUnconfirmed with why the session ended,
// except after a Logout the server answered (calling it again returns nil)
// and when the device was signed out elsewhere or its account deleted: it
// returns nil then, as it does when the server refuses the final requests
// of a device signed out elsewhere whose close was lost.
// When a LOGOUT was sent and went unanswered, ErrLogoutUnconfirmed comes
// with ErrOutcomeUnknown: the device may be signed out already, and a
// later Session's login by its tokens, refused, will tell. Without it,
// the server did not act on a LOGOUT of this Session.
func (s *Session) Logout(ctx context.Context) error {
	s.mu.Lock()
	s.loggingOut = true
	prior := s.err
	s.mu.Unlock()
	s.cfg.hooks.loggingOut(s)
	s.shut(ctx, ErrLoggedOut)
	s.forgetToken()

	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.loggedOut, deviceGone(prior):
		return nil
	case prior != nil:
		return errorf("logout of device %q: %w: the session had ended: %w",
			s.cfg.Login.DeviceID, ErrLogoutUnconfirmed, prior)
	case s.logoutUnsure:
		return errorf("logout of device %q: %w: %w", s.cfg.Login.DeviceID,
			ErrLogoutUnconfirmed, ErrOutcomeUnknown)
	}
	return errorf("logout of device %q: %w", s.cfg.Login.DeviceID,
		ErrLogoutUnconfirmed)
}

// shut ends the session with reason, unless it had ended, and waits for
// its goroutines: its final requests get finalAckWait, less when ctx ends.
func (s *Session) shut(ctx context.Context, reason error) {
	s.mu.Lock()
	s.closing = true
	if s.err == nil {
		s.err = reason
	}
	s.cond.Broadcast()
	s.mu.Unlock()
	s.cancel()

	// A timer stopped here rather than a context deadline or AfterFunc:
	// nothing is left to fire after Close returns.
	t := time.NewTimer(finalAckWait)
	select {
	case <-s.done:
	case <-t.C:
	case <-ctx.Done():
	}
	t.Stop()
	s.finalCancel()
	s.wg.Wait()
}

// Client waits for a live connection and returns it, for requests the
// Session does not wrap (GetUser, SyncBefore, MarkRead). The connection may
// end at any time; do not Close it nor read its Messages.
func (s *Session) Client(ctx context.Context) (*Client, error) {
	for {
		s.mu.Lock()
		c, changed, err := s.cur, s.curChanged, s.err
		s.mu.Unlock()
		switch {
		case err != nil:
			return nil, err
		case c != nil && c.Err() == nil:
			return c, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.done:
		}
	}
}

// ClearConv clears convID's history for the user (see Client.ClearConv) on
// a live connection, one attempt, and moves the Session past it at once:
// messages up to the cleared seq that are not handed over yet are dropped
// and not fetched. The user's other connected devices learn it at once
// (NOTIFY cleared, which a Session takes the same way and, for a hide,
// reports as EventConvHidden), the others at their next listing.
func (s *Session) ClearConv(ctx context.Context, convID string, upToSeq int64,
	hide bool) (int64, error) {
	c, err := s.Client(ctx)
	if err != nil {
		return 0, err
	}
	cleared, err := c.ClearConv(ctx, convID, upToSeq, hide)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	s.passClearedLocked(convID, cleared)
	s.mu.Unlock()
	return cleared, nil
}

// passClearedLocked moves convID past the history the user cleared up to
// cleared, dropping what is held there and handing over what follows.
func (s *Session) passClearedLocked(convID string, cleared int64) {
	if cleared > s.seq.position(convID) {
		s.readyLocked(s.seq.skip(convID, cleared))
	}
}

// takeNotify returns the Client's OnNotify: it applies a clear on another
// of the user's devices (NOTIFY cleared) as ClearConv does here, queues the
// hide for the connection goroutine to report, and then hands every notify
// to the app's own OnNotify, when set. It runs on the reader goroutine, so
// it only takes the Session's lock and nudges.
func (s *Session) takeNotify(app func(*protocol.Notify)) func(*protocol.Notify) {
	return func(n *protocol.Notify) {
		if cl := n.GetCleared(); cl != nil && cl.ConvId != "" {
			s.mu.Lock()
			s.passClearedLocked(cl.ConvId, cl.ClearedSeq)
			if cl.Hidden {
				s.hidesNoted = append(s.hidesNoted, cl.ConvId)
			}
			s.mu.Unlock()
			if cl.Hidden {
				select {
				case s.hideWake <- struct{}{}:
				default:
				}
			}
		}
		if app != nil {
			app(n)
		}
	}
}

// reportHides raises EventConvHidden for the hides NOTIFY cleared noted.
func (s *Session) reportHides() {
	s.mu.Lock()
	hidden := s.hidesNoted
	s.hidesNoted = nil
	s.mu.Unlock()
	for _, convID := range hidden {
		s.event(Event{Kind: EventConvHidden, ConvID: convID})
	}
}

// Send sends one message and returns its ack, trying again with the same
// client msg id (so the server stores it once) after retryable errors and
// across reconnects, until ctx is done. The message also enters Messages,
// once, in its conversation's order, so the app sees one stream per
// conversation whichever device sent what.
//
// A message the server will never take is not tried again: one over its
// frame limit fails with ErrTooLarge, and one in flight at a second CLOSE
// PROTOCOL_ERROR (see maxProtocolCloses) with that *CloseError.
func (s *Session) Send(ctx context.Context, p SendParams) (*protocol.SendResp, error) {
	if p.ClientMsgID == "" {
		p.ClientMsgID = NewClientMsgID()
	}
	backoff := s.cfg.MinBackoff
	var retry retrier
	for {
		c, err := s.Client(ctx)
		if err != nil {
			return nil, errorf("session send %s: %w", p.ClientMsgID, err)
		}
		ack, err := c.Send(ctx, p)
		if err == nil {
			s.offer(s.ownMessage(p, ack, c.loggedInAs()), false)
			return ack, nil
		}
		if ctx.Err() != nil || !retry.again(c, err) {
			return nil, err
		}
		if err := sleep(ctx, jitter(backoff)); err != nil {
			return nil, err
		}
		backoff = min(backoff*2, s.cfg.MaxBackoff)
	}
}

// sendAgain reports whether a failed send may succeed if repeated: on
// another connection, or later on this one. A request too large for the
// server never will, whether the SDK refused it or the server closed the
// connection for it.
func sendAgain(c *Client, err error) bool {
	if errors.Is(err, ErrTooLarge) {
		return false
	}
	var se *Error
	if errors.As(err, &se) {
		return se.IsRetryable()
	}
	return c.Err() != nil || errors.Is(err, ErrTimeout)
}

// maxProtocolCloses is how many CLOSE PROTOCOL_ERROR a Session request may
// be in flight for. The server sends it for a frame it cannot parse or
// whose op it does not know (a gateway older than the op), and
// docs/protocol.md says not to resend that frame; but the close does not
// say which frame it was. So a request in flight beside it is sent once
// more, and the one at fault ends its second connection and fails, where
// it was resent after every reconnect. A request whose op the server had
// answered on that connection, or made once the connection had closed, is
// not counted (closedBeside).
const maxProtocolCloses = 2

// retry runs op on the Session's connection, again on the next one after
// a failure a new connection may mend (retrier), with backoff, until op
// succeeds, final says its error is final (nil: none is), or ctx ends. It
// returns op's last error, or the one that ended the wait.
func (s *Session) retry(ctx context.Context, final func(error) bool,
	op func(c *Client) error) error {
	backoff := s.cfg.MinBackoff
	var retry retrier
	for {
		c, err := s.Client(ctx)
		if err != nil {
			return err
		}
		err = op(c)
		if err == nil || (final != nil && final(err)) || ctx.Err() != nil ||
			!retry.again(c, err) {
			return err
		}
		if err := sleep(ctx, jitter(backoff)); err != nil {
			return err
		}
		backoff = min(backoff*2, s.cfg.MaxBackoff)
	}
}

// retrier decides whether one Session request that failed is tried again.
type retrier struct {
	protocolCloses int
}

// again counts the PROTOCOL_ERROR closes a request was in flight at, but
// not one beside which the server had already answered the request's op
// (closedBeside): that close was surely for another frame.
func (r *retrier) again(c *Client, err error) bool {
	var beside closedBeside
	if closedFor(err, protocol.CloseReason_PROTOCOL_ERROR) && !errors.As(err, &beside) {
		if r.protocolCloses++; r.protocolCloses >= maxProtocolCloses {
			return false
		}
	}
	return sendAgain(c, err)
}

// ownMessage rebuilds the stored message from the ack of its send on the
// connection of device: the device the server resolved, which a config
// naming none does not say ("default", or a token's device).
func (s *Session) ownMessage(p SendParams, ack *protocol.SendResp,
	device string) *common.Message {
	m := &common.Message{
		MsgId: ack.MsgId, ConvId: ack.ConvId, Seq: ack.Seq, SenderId: s.UserID(),
		ClientMsgId: p.ClientMsgID, ContentType: common.ContentType_BINARY,
		Content: p.Content, SendTimeMs: ack.SendTimeMs, SenderDevice: device,
		ReplyToSeq: setIf(p.ReplyToSeq), Mentions: storedMentions(s.UserID(), p.Mentions),
		MentionAll: setIf(p.MentionAll),
	}
	switch {
	case p.File != nil:
		m.ContentType, m.Content = common.ContentType_FILE, EncodeFileRef(p.File)
	case p.Text != "":
		m.ContentType, m.Content = common.ContentType_TEXT, []byte(p.Text)
	}
	return m
}

// jitter adds up to half of d, so that clients dropped together do not come
// back together.
func jitter(d time.Duration) time.Duration {
	return d + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
