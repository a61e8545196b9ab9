package client

import (
	"cmp"
	"context"
	"errors"
	"time"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// connect dials and logs in, trying tries addresses at most: while one
// fails, the next of Addr, Fallbacks... in turn. It returns the last
// failure, or an *AddrsError when several addresses were tried and none
// answered as a gateway. The next connect starts after the address that
// failed last, so the Session stays on one that works.
func (s *Session) connect(ctx context.Context, tries int) (*Client, *protocol.LoginResp, error) {
	var failures []*AddrError
	for range max(tries, 1) {
		c, resp, addr, next, err := s.connectNext(ctx)
		if err == nil {
			s.mu.Lock()
			s.userID = resp.UserId
			s.username = cmp.Or(resp.Username, s.cfg.Login.Username)
			s.limits = LimitsOf(resp)
			if resp.ServerTimeMs > 0 {
				// Off by the login's one-way delay at most: windows are
				// minutes or hours.
				s.clockSkew = time.Until(time.UnixMilli(resp.ServerTimeMs))
			}
			s.mu.Unlock()
			s.setTokens(resp.Token, resp.RefreshToken, resp.TokenExpiresMs)
			return c, resp, nil
		}
		if !next || ctx.Err() != nil {
			return nil, nil, err
		}
		failures = append(failures, &AddrError{Addr: addr, Err: err})
	}
	if len(failures) == 1 {
		return nil, nil, failures[0].Err
	}
	return nil, nil, &AddrsError{Failures: failures}
}

// connectNext dials the current address, addr, and logs in. next reports
// that the address failed as a gateway, and that the following one is
// current now: it could not be dialled, or it took the connection but did
// not answer the login as a gateway (unanswered). A login the gateway
// refused is its answer, which the next address would not change.
func (s *Session) connectNext(ctx context.Context) (c *Client, resp *protocol.LoginResp,
	addr string, next bool, err error) {
	addrs := append([]string{s.cfg.Addr}, s.cfg.Fallbacks...)
	s.mu.Lock()
	i := s.addrIndex % len(addrs)
	s.mu.Unlock()
	addr = addrs[i]
	c, err = Dial(ctx, addr, s.cfg.Client)
	next = err != nil
	if err == nil {
		if resp, err = s.login(ctx, c); err != nil {
			next = unanswered(c, err)
			_ = c.Close()
		}
	}
	if err != nil {
		if next {
			s.mu.Lock()
			s.addrIndex = i + 1
			s.mu.Unlock()
		}
		return nil, nil, addr, next, err
	}
	return c, resp, addr, false, nil
}

// unanswered reports whether a login on c failed for want of a gateway's
// answer: no reply in time (a port of another service, waiting for its own
// protocol), or the connection ended without the gateway's CLOSE (a server
// of another protocol: its reply is no frame, ErrBadMagic).
func unanswered(c *Client, err error) bool {
	var se *Error
	var ce *CloseError
	switch {
	case errors.As(err, &se), errors.As(err, &ce), errors.As(c.Err(), &ce):
		return false
	case errors.Is(err, ErrTimeout):
		return true
	}
	return c.Err() != nil
}

// login uses the newest access token, then the refresh token (LOGIN takes
// either), so that a reconnect does not depend on the password, and falls
// back to the password when both are refused: the unconfirmed one of a
// password change of unknown outcome first (see Session.ChangePassword).
//
// A token of a device signed out since (SIGN_OUT_DEVICE, LOGOUT, a password
// change, while this Session was offline) is refused, then the gateway
// closes the connection with SIGNED_OUT: the password is not tried, and
// the close ends the Session (closeDelay) as a sign-out of a live
// connection does. An expired token closes nothing and falls back as
// above. With a change of unknown outcome held, the revocation may be the
// change's own, of this device's tokens: the tokens are forgotten and the
// next connection logs in with the new password, then the old one.
//
// ACCOUNT_SUSPENDED, to a token or the password, is final: it wraps
// ErrAccountSuspended and no other credential is tried.
func (s *Session) login(ctx context.Context, c *Client) (*protocol.LoginResp, error) {
	s.tokenMu.Lock()
	s.mu.Lock()
	tk, password, unconfirmed := s.tokens, s.password, s.unconfirmed
	s.mu.Unlock()
	s.tokenMu.Unlock()
	resp, err := s.loginWith(ctx, c, tk, password, unconfirmed)
	if CodeOf(err) == common.ErrorCode_ACCOUNT_SUSPENDED {
		// Final whichever credential it answered: loginWith tries no
		// other after it, and retryDelay ends the Session.
		return nil, errorf("%w: %w", ErrAccountSuspended, err)
	}
	if ce, ok := errors.AsType[*CloseError](err); ok &&
		ce.Reason == protocol.CloseReason_SIGNED_OUT && unconfirmed != "" {
		s.forgetToken()
		return nil, errorf("%w: %w", errUnconfirmedSignedOut, err)
	}
	return resp, err
}

// loginWith is login with the Session's tokens, password and unconfirmed
// new password as read once.
func (s *Session) loginWith(ctx context.Context, c *Client, tk tokens,
	password, unconfirmed string) (*protocol.LoginResp, error) {
	p := s.cfg.Login
	for _, token := range []string{tk.access, tk.refresh} {
		if token == "" {
			continue
		}
		p.Token, p.Password = token, ""
		resp, err := c.Login(ctx, p)
		if CodeOf(err) != common.ErrorCode_TOKEN_INVALID {
			if err == nil {
				s.settlePassword(unconfirmed, password) // tokens a change would revoke
			}
			return resp, err
		}
	}
	s.forgetToken()
	if password == "" && (tk.access != "" || tk.refresh != "") {
		return nil, errorf("%w: tokens refused and no password", ErrSessionEnded)
	}
	if unconfirmed != "" {
		return s.loginUnconfirmed(ctx, c, p, unconfirmed, password)
	}
	p.Token, p.Password = "", password
	return c.Login(ctx, p)
}

// loginUnconfirmed logs in with the new password of a change of unknown
// outcome. Refused, the change was not made: the old password is kept for
// the next attempt, on another connection, since the gateway closes one at
// its third failed login (two tokens and this password may have been).
func (s *Session) loginUnconfirmed(ctx context.Context, c *Client, p LoginParams,
	unconfirmed, password string) (*protocol.LoginResp, error) {
	p.Token, p.Password = "", unconfirmed
	resp, err := c.Login(ctx, p)
	switch {
	case err == nil:
		s.settlePassword(unconfirmed, unconfirmed)
	case CodeOf(err) == common.ErrorCode_INVALID_CREDENTIALS:
		s.settlePassword(unconfirmed, password)
		err = errorf("%w: %w", errUnconfirmedRefused, err)
	}
	return resp, err
}

// settlePassword ends the doubt over unconfirmed, if the Session still has
// it, with password the one that logs in.
func (s *Session) settlePassword(unconfirmed, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if unconfirmed != "" && s.unconfirmed == unconfirmed {
		s.password, s.unconfirmed = password, ""
	}
}

func (s *Session) forgetToken() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = tokens{}
}

// run keeps the session connected: it serves a connection until it ends,
// then reconnects with backoff until Close or a fatal error.
func (s *Session) run(c *Client, resp *protocol.LoginResp) {
	defer close(s.done)
	for {
		err := s.serveConn(c, resp)
		s.setClient(nil)
		_ = c.Close()
		if c, resp, err = s.reconnect(err); err != nil {
			s.end(err)
			return
		}
	}
}

// reconnect waits and connects until a connection logs in. It returns an
// error when the session must end: Close, or a fatal reason.
func (s *Session) reconnect(cause error) (*Client, *protocol.LoginResp, error) {
	backoff := s.cfg.MinBackoff
	for {
		if s.ctx.Err() != nil {
			// Close came as the connection was lost, or found it dead.
			s.ackAway()
			return nil, nil, ErrClosed
		}
		wait, err := s.retryDelay(cause, backoff)
		if err != nil {
			return nil, nil, err
		}
		s.event(Event{Kind: EventDisconnected, Err: cause, RetryIn: wait})
		if sleep(s.ctx, wait) != nil {
			s.ackAway()
			return nil, nil, ErrClosed
		}
		backoff = min(backoff*2, s.cfg.MaxBackoff)
		c, resp, err := s.connectOnce()
		if err == nil {
			return c, resp, nil
		}
		s.cfg.hooks.failedAttempt(s)
		// Close during the failed attempt or just after it finds the
		// session without a connection, as in the backoff: the loop's top
		// sends the final DELIVERED (ackAway). Ending here at once when
		// Close had come would skip it if Close came after the failure.
		cause = err
	}
}

// connectOnce dials one address and logs in; the backoff paces a sweep of
// gateways that all refuse, as it paces retries of one. Close does not cut
// the attempt short: it gets finalAckWait more to log in and carry the
// final DELIVERED, since the connection that had the hand-over is gone and
// the server would otherwise keep an older delivered position, from which
// a device starting at the latest hands the same messages over again. A
// connection logged in after Close sends that and ends; nothing of it is
// handed over.
func (s *Session) connectOnce() (*Client, *protocol.LoginResp, error) {
	c, resp, err := s.connect(s.final, 1)
	if err != nil || s.ctx.Err() == nil {
		return c, resp, err
	}
	s.lastAckOn(c)
	return nil, nil, ErrClosed
}

// ackAway is Close's final DELIVERED, and Logout's LOGOUT, for a session
// it finds without a connection, between reconnect attempts: for the same
// reason as in connectOnce, it dials one address and logs in to send them,
// within finalAckWait of Close. Without a LOGOUT to send, it does nothing
// when the server acknowledged every position handed over, so a Close
// while the server is away costs no wait then, nor while a refusal of
// DELIVERED is remembered: unlike finalAck's, this connection would be
// opened for a request last seen refused. Once a LOGOUT was answered it
// never dials: the tokens are revoked, so the login would fall back to the
// password and sign the device in again for positions it could not report.
func (s *Session) ackAway() {
	if !s.awaitHandOver() {
		return
	}
	s.mu.Lock()
	unreported := len(s.dirty) > 0 && !s.noDelivered.active(time.Now())
	signOut := s.loggingOut && !s.loggedOut
	signedOut := s.loggedOut || s.deleted
	s.mu.Unlock()
	if signedOut || !unreported && !signOut || s.final.Err() != nil {
		return
	}
	c, _, err := s.connect(s.final, 1)
	if err != nil {
		return
	}
	s.lastAckOn(c)
}

// lastAckOn sends the final requests on c, a connection logged in after
// Close or Logout, and closes it; nothing it brought is handed over.
func (s *Session) lastAckOn(c *Client) {
	s.finish(c)
	_ = c.Close()
}

// finish sends on c the final DELIVERED and, after Logout, the LOGOUT once
// that is answered: the server closes the connection after a LOGOUT. A
// gateway older than DELIVERED closes it for the DELIVERED instead, and the
// LOGOUT is not sent; that refusal is remembered, so the connection
// ackAway opens next sends the LOGOUT alone, lest it be lost again.
func (s *Session) finish(c *Client) {
	s.mu.Lock()
	signOut := s.loggingOut && !s.loggedOut
	lacking := s.noDelivered.active(time.Now())
	s.mu.Unlock()
	if !signOut || !lacking {
		s.finalAck(c)
	}
	if !signOut {
		return
	}
	// A device signed out elsewhere whose close was lost has its final
	// requests refused and its connection closed SIGNED_OUT: it is signed
	// out, as the LOGOUT would have made it.
	if err := c.Err(); err != nil && !deviceGone(err) {
		return
	} else if err == nil {
		// Its LOGOUT may be refused so (TOKEN_INVALID), or go unanswered
		// when the close its final DELIVERED drew comes first.
		err := c.Logout(s.final)
		if err != nil && CodeOf(err) != common.ErrorCode_TOKEN_INVALID && !deviceGone(err) &&
			!deviceGone(c.Err()) {
			if errors.Is(err, ErrOutcomeUnknown) {
				s.mu.Lock()
				s.logoutUnsure = true
				s.mu.Unlock()
			}
			return
		}
	}
	s.mu.Lock()
	s.loggedOut = true
	// Logout returns nil now, and Err must agree, also when a Close that
	// raced it had set ErrClosed first: the device is signed out either
	// way. Only Close and Logout set err before this runs.
	s.err = ErrLoggedOut
	s.mu.Unlock()
}

// rateLimitedBackoff is the least wait after a login refused as
// RATE_LIMITED.
const rateLimitedBackoff = 5 * time.Second

// retryDelay says how long to wait after err ended a connection (or failed
// to set one up), or returns the error that ends the session.
func (s *Session) retryDelay(err error, backoff time.Duration) (time.Duration, error) {
	var ce *CloseError
	var se *Error
	switch {
	case errors.Is(err, errCatchUp), errors.Is(err, errUnconfirmedRefused),
		errors.Is(err, errUnconfirmedSignedOut):
	case errors.As(err, &ce):
		return s.closeDelay(ce, backoff)
	case errors.Is(err, ErrAccountSuspended):
		return 0, errorf("%w: %w", ErrSessionEnded, err)
	case errors.As(err, &se) && se.Code == common.ErrorCode_RATE_LIMITED:
		// Logins are limited per address and account: a reconnect storm
		// after a server restart meets the limit, which lifts with time.
		return jitter(max(backoff, rateLimitedBackoff)), nil
	case errors.As(err, &se) && !se.IsRetryable():
		return 0, errorf("%w: %w", ErrSessionEnded, err)
	}
	return jitter(backoff), nil
}

// closeDelay follows the server's CLOSE: its reconnect delay, or no
// reconnect for a replaced or signed-out device.
func (s *Session) closeDelay(ce *CloseError, backoff time.Duration) (time.Duration, error) {
	switch ce.Reason {
	case protocol.CloseReason_KICKED, protocol.CloseReason_LOGIN_FAILED,
		protocol.CloseReason_SIGNED_OUT:
		return 0, errorf("%w: %w", ErrSessionEnded, ce)
	case protocol.CloseReason_ACCOUNT_DELETED:
		return 0, errorf("%w: %w: %w", ErrSessionEnded, ErrAccountDeleted, ce)
	case protocol.CloseReason_ACCOUNT_SUSPENDED:
		return 0, errorf("%w: %w: %w", ErrSessionEnded, ErrAccountSuspended, ce)
	case protocol.CloseReason_TOKEN_EXPIRED:
		// The refresh token (or the password) logs in again, at once as
		// after a zero delay: the gateway's -1 (do not reconnect) means
		// not with the expired token, and the Session has better.
		s.mu.Lock()
		canLogin := s.tokens.refresh != "" || s.password != ""
		s.tokens.access = ""
		s.mu.Unlock()
		if !canLogin {
			return 0, errorf("%w: %w", ErrSessionEnded, ce)
		}
		return jitter(backoff) - backoff, nil
	case protocol.CloseReason_SERVER_SHUTDOWN:
		s.skipAddr()
	}
	if !ce.ShouldReconnect() {
		return 0, errorf("%w: %w", ErrSessionEnded, ce)
	}
	// The server's delay already carries its own jitter; ours is added on
	// top so that a zero delay still spreads the clients.
	return ce.ReconnectAfter + jitter(backoff) - backoff, nil
}

// skipAddr makes the next address of Addr, Fallbacks... current: the
// gateway at this one is stopping, and dialling it again would meet it
// draining or gone. With one address it stays, for the gateway's restart.
func (s *Session) skipAddr() {
	s.mu.Lock()
	s.addrIndex++
	s.mu.Unlock()
}

// serveConn resumes on c, then fills gaps and sends acknowledgements until
// c ends or the session is closed.
func (s *Session) serveConn(c *Client, resp *protocol.LoginResp) error {
	s.setClient(c)
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.pump(c) }()
	go func() { defer s.wg.Done(); s.keepFresh(s.ctx, c) }()
	s.event(Event{Kind: EventConnected, Login: resp, Addr: c.Addr()})
	s.rewatch(c)
	// Close may come in the middle of a resume or a fill, whose request it
	// cancels: what was handed over is acknowledged all the same.
	defer func() {
		if s.ctx.Err() != nil {
			s.finish(c)
		}
	}()

	if err := s.resume(c); err != nil {
		return connErr(c, err)
	}
	s.event(Event{Kind: EventResumed})
	tick := time.NewTicker(s.cfg.AckInterval)
	defer tick.Stop()
	resync := time.NewTicker(s.cfg.ResyncInterval)
	defer resync.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return ErrClosed
		case <-c.Done():
			return c.Err()
		case <-s.fillWake:
			if err := s.fillAll(c); err != nil {
				return connErr(c, err)
			}
		case <-resync.C:
			if err := s.resume(c); err != nil {
				return connErr(c, err)
			}
		case <-tick.C:
			s.flushAcks(c)
		case <-s.ackWake:
			s.flushAcks(c)
		case <-s.hideWake:
			s.reportHides()
		}
	}
}

// connErr prefers the connection's error, which says whether to reconnect,
// over the error of the request it broke. A catch-up request (SYNC_CONVS,
// SYNC) answered TOKEN_INVALID ends the connection as signed out
// (signedOutErr).
func connErr(c *Client, err error) error {
	if CodeOf(err) == common.ErrorCode_TOKEN_INVALID {
		return signedOutErr(c, err)
	}
	if cerr := c.Err(); cerr != nil {
		return cerr
	}
	return errorf("%w: %w", errCatchUp, err)
}

// signedOutCloseWait bounds how long signedOutErr waits for the CLOSE that
// follows a TOKEN_INVALID answer.
const signedOutCloseWait = time.Second

// signedOutErr is the end of c after err, a TOKEN_INVALID answer to a
// request of the logged-in c: its device was signed out, or its account
// deleted, and the close that should have told c was lost. The gateway
// closes c with SIGNED_OUT right behind the answer; that close, read by
// c's reader just after the answer, is waited for and returned, so that
// the session ends as at any sign-out. Taken for a broken catch-up
// instead, the error would make the session reconnect and, its tokens
// refused, sign the device in again with the password, undoing the
// sign-out. A gateway older than that close sends none: c is closed here
// and ends as signed out all the same.
func signedOutErr(c *Client, err error) error {
	select {
	case <-c.Done():
	case <-time.After(signedOutCloseWait):
		_ = c.Close()
	}
	if cerr := c.Err(); cerr != nil {
		if _, ok := errors.AsType[*CloseError](cerr); ok {
			return cerr
		}
	}
	return &CloseError{Reason: protocol.CloseReason_SIGNED_OUT, Message: err.Error(),
		ReconnectAfter: -1}
}

// finalAckWait bounds how long Close waits for its final DELIVERED to be
// answered, counted from Close: the dial and login of a connection to carry
// it included (connectOnce, ackAway).
const finalAckWait = time.Second

// finalAck sends what was handed over before Close, briefly, also while a
// refusal of DELIVERED is remembered: the server may have gained the op
// since (upgraded, and this connection is to the new release), and a
// session that ends has no later to report at. The connection is there
// anyway, so asking costs a request; a gateway that closes it for the op
// costs nothing, as it is closing.
func (s *Session) finalAck(c *Client) {
	if s.awaitHandOver() {
		s.sendAcks(s.final, c)
	}
}

// awaitHandOver waits, within the final deadline, for the delivery goroutine
// to stop after Close, and reports whether it did. It records a message as
// delivered just after putting it in Messages: a final DELIVERED taken in
// between would leave out a message the application has. The goroutine
// stops promptly once Close has begun (closing, ctx), unless the
// application's PositionStore blocks.
func (s *Session) awaitHandOver() bool {
	s.cfg.hooks.handOverWait(s)
	select {
	case <-s.emitted:
		return true
	case <-s.final.Done():
		return false
	}
}

func (s *Session) setClient(c *Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur = c
	close(s.curChanged)
	s.curChanged = make(chan struct{})
}

// end records why the session ended and lets delivery finish what is ready.
func (s *Session) end(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
	s.ended = true
	s.cond.Broadcast()
}

func (s *Session) event(e Event) {
	if s.cfg.OnEvent != nil {
		s.cfg.OnEvent(e)
	}
}
