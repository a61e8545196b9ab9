package client

import (
	"context"
	"errors"
	"time"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Refresh exchanges a refresh token for a new access and refresh token pair
// (REFRESH). The connection's token deadline moves with it. The old refresh
// token stops working: keep the new one. Presenting an old one again makes
// the server revoke the device, with one exception: when the request was
// sent but its answer lost, the error wraps ErrOutcomeUnknown, and the
// server takes the same token once more within 30 s of its rotation, by
// REFRESH or LOGIN. Retry at once; a token the server refuses then was
// rotated twice, and its device stays logged in by its access token until
// that expires. A Session does this itself.
func (c *Client) Refresh(ctx context.Context, refreshToken string) (*protocol.RefreshResp, error) {
	resp := protocol.NewRefreshResp()
	req := &protocol.RefreshReq{RefreshToken: refreshToken}
	if err := c.roundTripOnce(ctx, protocol.Op_REFRESH, req, resp); err != nil {
		return nil, errorf("refresh: %w", err)
	}
	return resp, nil
}

// tokens is what a Session keeps to log in again without the password.
type tokens struct {
	access, refresh string
	accessExpiry    time.Time
	// unsure: refresh went out in a REFRESH whose answer was lost, so the
	// server may have rotated it away. It takes it back once within its
	// grace (30 s) of the rotation, and revokes the device after: refresh
	// is presented again at once, on this connection or the next.
	//
	// TODO: a reconnect that takes longer than the grace presents it all
	// the same, which signs the device out if it was rotated; a Session
	// with a password could log in by it instead, and drop the token.
	unsure bool
}

// refreshAt is when to refresh a token expiring at expiry: at four fifths of
// its remaining life, so a slow round trip still lands before the deadline.
func refreshAt(now, expiry time.Time) time.Time {
	return now.Add(expiry.Sub(now) * 4 / 5)
}

// keepFresh refreshes the session's tokens on c before the access token
// expires, so the gateway never closes the connection with TOKEN_EXPIRED.
// It returns when ctx ends or c is done; a failed refresh is retried until
// the deadline, after which the server's CLOSE takes over.
func (s *Session) keepFresh(ctx context.Context, c *Client) {
	for {
		s.mu.Lock()
		tk := s.tokens
		s.mu.Unlock()
		if tk.refresh == "" || tk.accessExpiry.IsZero() {
			return
		}
		wait := time.Until(refreshAt(time.Now(), tk.accessExpiry))
		if tk.unsure {
			wait = 0 // within the server's grace, or the device is revoked
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-c.Done():
			timer.Stop()
			return
		case <-timer.C:
			if c.Err() != nil {
				return // a timer of 0 (unsure) races c's end: the next c refreshes
			}
		}
		replaced, err := s.refresh(ctx, c, tk)
		switch {
		case replaced:
			// A password change replaced the pair while we waited: the
			// next refresh is timed by the new one.
		case CodeOf(err) == common.ErrorCode_TOKEN_INVALID:
			// Revoked: the server closes us with SIGNED_OUT. Or rotated
			// twice, a retry of a lost answer whose answer was lost too:
			// the access token holds until it expires, then the password.
			return
		case errors.Is(err, ErrOutcomeUnknown):
			// tokens.unsure is set: the loop retries at once, or the
			// next connection's keepFresh does when c is done.
		case err != nil:
			sleep(ctx, min(30*time.Second, time.Until(tk.accessExpiry)/2+time.Second))
		}
	}
}

// refresh exchanges tk's refresh token on c and keeps the new pair, unless
// the session holds another pair by now (replaced). It holds tokenMu from
// the check to the keeping, so no password change comes in between.
func (s *Session) refresh(ctx context.Context, c *Client, tk tokens) (replaced bool, err error) {
	s.tokenMu.Lock()
	defer s.tokenMu.Unlock()
	s.mu.Lock()
	replaced = s.tokens.refresh != tk.refresh
	s.mu.Unlock()
	if replaced {
		return true, nil
	}
	resp, err := c.Refresh(ctx, tk.refresh)
	if err != nil {
		s.noteRefreshFailed(tk, err)
		return false, err
	}
	s.setTokens(resp.Token, resp.RefreshToken, resp.TokenExpiresMs)
	return false, nil
}

// noteRefreshFailed marks the refresh token of tk unsure when its REFRESH
// went unanswered, and forgets it when refused: a retry of a lost answer
// refused was rotated twice, and presenting it again could only be
// refused. tokenMu is held.
func (s *Session) noteRefreshFailed(tk tokens, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tokens.refresh != tk.refresh {
		return
	}
	switch {
	case errors.Is(err, ErrOutcomeUnknown):
		s.tokens.unsure = true
	case CodeOf(err) == common.ErrorCode_TOKEN_INVALID:
		s.tokens.refresh, s.tokens.unsure = "", false
	}
}

// setTokens records a new token pair; an empty refresh token (a login by
// access token returns none) keeps the one held.
func (s *Session) setTokens(access, refresh string, expiresMs int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens.access = access
	if refresh != "" {
		s.tokens.refresh, s.tokens.unsure = refresh, false
	}
	if expiresMs > 0 {
		s.tokens.accessExpiry = time.UnixMilli(expiresMs)
	}
}
