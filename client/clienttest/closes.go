package clienttest

import (
	"errors"
	"time"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// defaultDevice names the device of a password LOGIN that names none, as
// the server's.
const defaultDevice = "default"

// maxFailedLogins is how many LOGINs one connection may have refused for
// their credentials; the last is answered, then the connection closed with
// LOGIN_FAILED, as the gateway.
const maxFailedLogins = 3

// afterReply does what the gateway does once a reply is written: a LOGOUT
// or DELETE_ACCOUNT closes the connection, a failed LOGIN counts, a
// TOKEN_INVALID answer to a logged-in connection's request closes it with
// SIGNED_OUT, and a new access token moves the connection's expiry.
func (s *Server) afterReply(c *conn, op protocol.Op, reply codec.Body, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if op == protocol.Op_LOGIN && err != nil {
		s.loginFailedLocked(c, err)
		return
	}
	if frame := s.signedOutLocked(c, op, err); frame != nil {
		c.enqueue(frame)
		c.closeAfterFlush()
		return
	}
	switch r := reply.(type) {
	case *protocol.LogoutResp:
		c.enqueue(signedOutFrame())
		c.closeAfterFlush()
	case *protocol.DeleteAccountResp:
		c.enqueue(accountDeletedFrame())
		c.closeAfterFlush()
	case *protocol.LoginResp:
		s.expireAtLocked(c, r.TokenExpiresMs)
	case *protocol.RefreshResp:
		s.expireAtLocked(c, r.TokenExpiresMs)
	case *protocol.ChangePasswordResp:
		s.expireAtLocked(c, r.TokenExpiresMs)
	}
}

// signedOutLocked returns the CLOSE that ends c after err, the answer to
// its request of op, as the gateway ends a signed-out device's connection,
// or nil: TOKEN_INVALID to a logged-in connection ends it with SIGNED_OUT
// (ACCOUNT_DELETED for DELETE_ACCOUNT unless the refusal is a signed-out
// device's), but not for REGISTER, nor for REFRESH unless its refresh token
// is of a signed-out device: else its TOKEN_INVALID is about the token the
// request carried (expired, rotated away).
func (s *Server) signedOutLocked(c *conn, op protocol.Op, err error) []byte {
	var be *bizError
	if s.opts.KeepSignedOut || c.userID == 0 || !errors.As(err, &be) ||
		be.code != common.ErrorCode_TOKEN_INVALID {
		return nil
	}
	switch {
	case op == protocol.Op_REGISTER, op == protocol.Op_REFRESH && !be.signedOut:
		return nil
	case op == protocol.Op_DELETE_ACCOUNT && !be.signedOut:
		return accountDeletedFrame()
	}
	return signedOutFrame()
}

// loginFailedLocked counts a refused LOGIN whose credentials were wrong (a
// server-side failure does not count) and closes c at the third; a token of
// a signed-out device closes it at once with SIGNED_OUT, as the gateway's
// (unless KeepSignedOut); ACCOUNT_SUSPENDED closes it with that reason.
func (s *Server) loginFailedLocked(c *conn, err error) {
	var be *bizError
	if errors.As(err, &be) && be.code == common.ErrorCode_ACCOUNT_SUSPENDED {
		c.enqueue(accountSuspendedFrame())
		c.closeAfterFlush()
		return
	}
	if !errors.As(err, &be) || be.code != common.ErrorCode_INVALID_CREDENTIALS &&
		be.code != common.ErrorCode_TOKEN_INVALID {
		return
	}
	if be.signedOut && !s.opts.KeepSignedOut {
		c.enqueue(signedOutFrame())
		c.closeAfterFlush()
		return
	}
	if c.failedLogins++; c.failedLogins >= maxFailedLogins {
		c.enqueue(closeFrame(protocol.CloseReason_LOGIN_FAILED, "too many failed logins"))
		c.closeAfterFlush()
	}
}

// expireAtLocked closes c with TOKEN_EXPIRED at expiresMs (Unix ms),
// unless a later token moves it.
func (s *Server) expireAtLocked(c *conn, expiresMs int64) {
	if expiresMs <= 0 {
		return
	}
	c.tokenExpiry = time.UnixMilli(expiresMs)
	if c.expiryTimer != nil {
		c.expiryTimer.Stop()
	}
	c.expiryTimer = time.AfterFunc(time.Until(c.tokenExpiry), func() { s.expire(c) })
}

// expire closes c if its token has expired: a timer stopped too late for
// a REFRESH that moved the expiry finds it in the future.
func (s *Server) expire(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Now().Before(c.tokenExpiry) {
		return
	}
	c.enqueue(closeFrame(protocol.CloseReason_TOKEN_EXPIRED, "session expired, log in again"))
	c.closeAfterFlush()
}

// closeFrame is a CLOSE telling the client not to reconnect by itself, as
// the gateway's for LOGIN_FAILED, TOKEN_EXPIRED and SIGNED_OUT.
func closeFrame(reason protocol.CloseReason, msg string) []byte {
	return codec.EncodeFrame(protocol.Op_CLOSE, 0, 0, &protocol.CloseMsg{
		Reason: reason, Message: msg, ReconnectAfterMs: -1})
}
