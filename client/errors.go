package client

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Sentinel errors of the SDK. Server-side failures come back as *Error and a
// server-initiated close as *CloseError instead.
var (
	// ErrClosed means Close was called on the client.
	ErrClosed = errors.New("client: closed")
	// ErrTimeout means one request got no reply within Options.RequestTimeout.
	// The request may still have reached the server.
	ErrTimeout = errors.New("client: request timed out")
	// ErrProtocol means the server sent a frame the SDK cannot accept; the
	// connection is closed after it.
	ErrProtocol = errors.New("client: protocol error")
	// ErrHeartbeat means a heartbeat got no reply in time, so the connection
	// was presumed dead and closed.
	ErrHeartbeat = errors.New("client: heartbeat failed")
	// ErrBadParams means the call's parameters were rejected before sending.
	ErrBadParams = errors.New("client: bad parameters")
	// ErrTooLarge means a request's body is over the server's frame limit:
	// the SDK refused it before writing it (Options.SendLimit), or the server
	// closed the connection for it (CLOSE FRAME_TOO_LARGE). Either way the
	// request is not sent again; the connection, if it ended, is not the
	// next request's problem. errors.As gives the *TooLargeError.
	ErrTooLarge = errors.New("client: request too large")
	// ErrSessionEnded wraps the error that ended a Session for good: a CLOSE
	// without reconnect (KICKED, SIGNED_OUT, LOGIN_FAILED, ACCOUNT_DELETED,
	// ACCOUNT_SUSPENDED) or refused credentials.
	ErrSessionEnded = errors.New("client: session ended")
	// ErrAccountDeleted is the Err of a Session after its DeleteAccount
	// succeeded, and is wrapped, beside ErrSessionEnded and the
	// *CloseError, by the Err of a Session whose connection was closed
	// with ACCOUNT_DELETED (the user deleted the account on another
	// device). The account is gone: sign the app out and forget its
	// tokens; the Session never reconnects.
	ErrAccountDeleted = errors.New("client: account deleted")
	// ErrAccountSuspended is wrapped, beside ErrSessionEnded, by the Err of
	// a Session whose connection was closed with ACCOUNT_SUSPENDED or whose
	// login was refused with that code: an operator suspended the account.
	// The Session never reconnects and does not fall back to the password;
	// tell the user, who may log in again once the suspension is lifted.
	ErrAccountSuspended = errors.New("client: account suspended")
	// ErrLoggedOut is the Err of a Session after Logout, whether or not the
	// server confirmed the logout (Logout's own error says).
	ErrLoggedOut = errors.New("client: logged out")
	// ErrLogoutUnconfirmed means Session.Logout ended the session without
	// an answer to its LOGOUT: the server was not reached in time, or the
	// session had ended before. The device may still be signed in, its
	// tokens valid until they expire; another device of the user can sign
	// it out (SignOutDevice).
	ErrLogoutUnconfirmed = errors.New("client: logout not confirmed")
	// ErrOutcomeUnknown means a request was written and its answer lost:
	// the connection ended, or the wait for the reply did (ErrTimeout, the
	// context), before the reply came. The server may have acted on it or
	// not. It is returned wrapped, with the cause, by the calls whose
	// effect a caller must not guess (ChangePassword); a refusal is an
	// *Error instead, and a request that was not sent neither.
	ErrOutcomeUnknown = errors.New("client: outcome unknown")
	// ErrNotTLS wraps a TLS handshake (Options.TLS) that the server ended,
	// or answered with bytes that are no TLS record: what answers there is
	// not TLS, a gateway reached directly, say (a gateway speaks plain TCP;
	// TLS ends at a load balancer in front of it).
	ErrNotTLS = errors.New("client: the server does not speak TLS")
	// ErrConvRefused wraps the server's refusal of one conversation's
	// catch-up in an EventConvRefused.
	ErrConvRefused = errors.New("client: conversation refused")

	// errCatchUp marks a request failure while a Session caught up on a live
	// connection: the connection is dropped and tried again with backoff,
	// whatever the code, since only the login decides that a session is over.
	errCatchUp = errors.New("client: session catch-up failed")
	// errUnconfirmedRefused marks a login refused with the new password of
	// a change of unknown outcome: the Session tries again, with the old
	// password, whatever the code.
	errUnconfirmedRefused = errors.New("client: unconfirmed new password refused")
	// errUnconfirmedSignedOut marks a login whose token was refused as a
	// signed-out device's while a password change of unknown outcome is
	// held: the change, if made, revoked this device's tokens itself. The
	// Session forgets its tokens and tries again with the new password.
	errUnconfirmedSignedOut = errors.New("client: tokens revoked during a password change")
)

// prefix starts the text of every error of the SDK, once.
const prefix = "client: "

// errorf is fmt.Errorf for the SDK's errors: it puts prefix before the
// message and takes it off the text of each error among args, which still
// unwrap to themselves. Wrapping an error of the SDK in another would
// otherwise say "client: send: client: request timed out". The format does
// not start with prefix.
func errorf(format string, args ...any) error {
	for i, a := range args {
		if err, ok := a.(error); ok && err != nil {
			args[i] = unprefixed{err}
		}
	}
	return prefixed{fmt.Errorf(format, args...)}
}

// prefixed is an error whose text starts with prefix.
type prefixed struct{ error }

func (e prefixed) Error() string { return prefix + e.error.Error() }
func (e prefixed) Unwrap() error { return e.error }

// unprefixed is an error of the SDK wrapped by another: its text loses
// prefix, which the outer error carries.
type unprefixed struct{ error }

func (e unprefixed) Error() string { return strings.TrimPrefix(e.error.Error(), prefix) }
func (e unprefixed) Unwrap() error { return e.error }

// Error is a business error returned by the server in an ErrorResp.
type Error struct {
	Code    common.ErrorCode
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("server error %s (%d)", e.Code, int64(e.Code))
	}
	return fmt.Sprintf("server error %s (%d): %s", e.Code, int64(e.Code), e.Message)
}

// IsRetryable reports whether the request may be retried later with the same
// client ids: true for the server-side codes (2xxx), false for request faults.
func (e *Error) IsRetryable() bool {
	return e.Code >= 2000 && e.Code < 3000
}

// CodeOf returns the server error code carried by err, or common.ErrorCode_OK
// when err is not (and does not wrap) an *Error.
func CodeOf(err error) common.ErrorCode {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return common.ErrorCode_OK
}

// AddrError is the failure of one gateway address (an AddrsError's).
type AddrError struct {
	Addr string
	Err  error
}

// Error names the address once: a dial's error names it already.
func (e *AddrError) Error() string {
	if strings.Contains(e.Err.Error(), e.Addr) {
		return e.Err.Error()
	}
	return e.Addr + ": " + e.Err.Error()
}

func (e *AddrError) Unwrap() error { return e.Err }

// AddrsError is OpenSession's error when it tried several gateway
// addresses and none answered as a gateway: the failure at each, in the
// order tried. errors.Is and errors.As look into every one of them, so
// an application can say what went wrong where, not only at the last.
type AddrsError struct {
	Failures []*AddrError
}

func (e *AddrsError) Error() string {
	parts := make([]string, len(e.Failures))
	for i, f := range e.Failures {
		parts[i] = f.Error()
	}
	return "client: no gateway answered: " + strings.Join(parts, "; ")
}

// Unwrap returns the failures, for errors.Is and errors.As.
func (e *AddrsError) Unwrap() []error {
	errs := make([]error, len(e.Failures))
	for i, f := range e.Failures {
		errs[i] = f
	}
	return errs
}

// TooLargeError is the ErrTooLarge of one request.
type TooLargeError struct {
	Op protocol.Op
	// Size is the request's body in bytes.
	Size int
	// Limit is the Options.SendLimit that Size is over; 0 when the server
	// refused the frame, its own limit being lower than the SDK's.
	Limit int
}

func (e *TooLargeError) Error() string {
	if e.Limit == 0 {
		return fmt.Sprintf("client: %s body of %d bytes refused by the server as too large "+
			"(FRAME_TOO_LARGE); not sent again", e.Op, e.Size)
	}
	return fmt.Sprintf("client: %s body of %d bytes is over the %d-byte limit; not sent",
		e.Op, e.Size, e.Limit)
}

// Is makes errors.Is(err, ErrTooLarge) hold.
func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

// CloseError is the reason a server gave in a CLOSE frame before closing the
// connection.
type CloseError struct {
	Reason  protocol.CloseReason
	Message string
	// ReconnectAfter is how long the server asks the client to wait before
	// reconnecting; negative means do not reconnect automatically.
	ReconnectAfter time.Duration
}

func (e *CloseError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("closed by server: %s", e.Reason)
	}
	return fmt.Sprintf("closed by server: %s: %s", e.Reason, e.Message)
}

// ShouldReconnect reports whether the server allows an automatic reconnect.
func (e *CloseError) ShouldReconnect() bool {
	return e.ReconnectAfter >= 0
}

func newCloseError(m *protocol.CloseMsg) *CloseError {
	return &CloseError{
		Reason:         m.Reason,
		Message:        m.Message,
		ReconnectAfter: time.Duration(m.ReconnectAfterMs) * time.Millisecond,
	}
}

// deviceGone reports whether err ended a session because its device can
// no longer be signed in: signed out elsewhere (a sign-out, a password
// change) or its account deleted. Logging such a device out has nothing
// left to do.
func deviceGone(err error) bool {
	ce, ok := errors.AsType[*CloseError](err)
	return ok && (ce.Reason == protocol.CloseReason_SIGNED_OUT ||
		ce.Reason == protocol.CloseReason_ACCOUNT_DELETED)
}
