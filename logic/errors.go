package logic

import (
	"errors"
	"fmt"

	"github.com/resonance-im/resonance/kitex_gen/common"
)

// Configuration errors, returned by OpenDB and New.
var (
	// ErrNoTokenSecret means Config.TokenSecret is empty.
	ErrNoTokenSecret = errors.New("logic: TokenSecret is required")
	// ErrUnknownDriver means Config.DBDriver is neither sqlite nor mysql.
	ErrUnknownDriver = errors.New("logic: unknown DBDriver")
	// ErrMissingDep means a required field of Deps is nil.
	ErrMissingDep = errors.New("logic: missing dependency")
	// ErrBadConfig means a Config field is out of range, such as a negative
	// size or time.
	ErrBadConfig = errors.New("logic: bad config")
	// ErrBadHashCost means Config.HashMemoryKiB or HashTime is out of range.
	ErrBadHashCost = errors.New("logic: password hash cost out of range")
	// ErrMigrationLocked means another instance held the schema migration
	// lock for longer than OpenDB waits.
	ErrMigrationLocked = errors.New("logic: migration lock not granted")
	// ErrLooseCollation means a MySQL table of logic's compares text
	// without regard to case (it was created before logic named the
	// collation): logic does not start on it.
	ErrLooseCollation = errors.New("logic: tables with a case-insensitive collation")
)

// Request errors. Handlers wrap them with a detail that is safe to show the
// client; bizError turns them into the wire's common.BizError.
var (
	// ErrBadRequest means a field is malformed or out of range.
	ErrBadRequest = errors.New("bad request")
	// ErrUnauthenticated means the session carries no user.
	ErrUnauthenticated = errors.New("not logged in")
	// ErrInvalidCredentials means an unknown user or a wrong password; it
	// never says which.
	ErrInvalidCredentials = errors.New("invalid username or password")
	// ErrTokenInvalid means a token is malformed, forged or expired.
	ErrTokenInvalid = errors.New("invalid token")
	// ErrUsernameTaken means the username is already registered.
	ErrUsernameTaken = errors.New("username taken")
	// ErrForbidden means the user may not touch the conversation.
	ErrForbidden = errors.New("forbidden")
	// ErrNotFound means the user or conversation does not exist.
	ErrNotFound = errors.New("not found")
	// ErrTooLarge means a field is over its size limit.
	ErrTooLarge = errors.New("too large")
	// ErrAccountSuspended means an operator suspended the account: its
	// logins are refused until the suspension is lifted (see admin.go).
	ErrAccountSuspended = errors.New("account suspended")
	// ErrRateLimited means the caller (account, address or user) spent its
	// budget of this kind of request; it may try again later.
	ErrRateLimited = errors.New("too many attempts, try again later")
	// ErrBusy means the server shed the request (password hashing queue full
	// until the caller's deadline).
	ErrBusy = errors.New("busy")
	// ErrUnavailable means a dependency (JetStream, route store) failed; the
	// request may be retried with the same ids.
	ErrUnavailable = errors.New("temporarily unavailable")
)

// errBlocked refuses a 1:1 send when either user blocked the other: the
// same answer whichever side blocked, so the sender learns no more than
// that it may not write here.
var errBlocked = fmt.Errorf("%w: cannot send to this user", ErrForbidden)

// errAccountGone answers a DELETE_ACCOUNT of an account deleted already: a
// session of it that the deletion's closing missed, whose connection is
// closed then (see DeleteAccount).
var errAccountGone = fmt.Errorf("%w: account deleted", ErrTokenInvalid)

// errDeviceRevoked refuses, as TOKEN_INVALID, a login or REFRESH with a
// token of the device's own that was good until the device was signed out
// (its generation moved or its refresh token was cleared; its row or
// account gone), and any request of a connection whose device was signed
// out or account deleted since it logged in (errSignedOut). bizError marks
// it (BizError.signed_out) so that the gateway closes the connection with
// SIGNED_OUT: a client that kept its password must not sign the device back
// in with it. Expired, malformed or forged tokens are not it.
var errDeviceRevoked = fmt.Errorf("%w: signed out", ErrTokenInvalid)

// errAddBlocked refuses putting in a group (CREATE_GROUP or ADD) a user who
// blocked the adder, who could then write to them there. Unlike errBlocked
// it tells the adder which side blocked; a 1:1 send already lets the adder
// find a block out.
var errAddBlocked = fmt.Errorf("%w: cannot add a user who blocked you", ErrForbidden)

// Internal errors; they never reach a client as such.
var (
	// errDuplicate means the message's (sender, client_msg_id) is already
	// stored: a concurrent retry won.
	errDuplicate = errors.New("logic: duplicate client message id")
	// errNoChange means a reaction the user already has was added, or one
	// they do not have was removed, or a pin was asked for a pinned message
	// or an unpin for one not pinned: nothing is stored, and the request is
	// answered as a duplicate.
	errNoChange = errors.New("logic: reaction or pin already in that state")
	// errStaleChunk means a racing request stored a chunk at the offset an
	// upload's chunk was for: it is answered with where the upload stands.
	errStaleChunk = errors.New("logic: chunk offset already taken")
	// errNoConv means the seq transaction found no conversation row to lock.
	errNoConv = errors.New("logic: conversation row missing")
	// errBadHash means a stored password hash is not in the encoding hasher
	// writes.
	errBadHash = errors.New("logic: malformed password hash")
)

// clientCodes maps request errors whose wrapped text is safe to send.
var clientCodes = []struct {
	err  error
	code common.ErrorCode
}{
	{ErrBadRequest, common.ErrorCode_BAD_REQUEST},
	{ErrUnauthenticated, common.ErrorCode_UNAUTHENTICATED},
	{ErrInvalidCredentials, common.ErrorCode_INVALID_CREDENTIALS},
	{ErrTokenInvalid, common.ErrorCode_TOKEN_INVALID},
	{ErrUsernameTaken, common.ErrorCode_USERNAME_TAKEN},
	{ErrForbidden, common.ErrorCode_FORBIDDEN},
	{ErrNotFound, common.ErrorCode_NOT_FOUND},
	{ErrTooLarge, common.ErrorCode_TOO_LARGE},
	{ErrRateLimited, common.ErrorCode_RATE_LIMITED},
	{ErrAccountSuspended, common.ErrorCode_ACCOUNT_SUSPENDED},
}

// serverCodes maps errors that may wrap a dependency's text, so only the
// sentinel's own text is sent.
var serverCodes = []struct {
	err  error
	code common.ErrorCode
}{
	{ErrBusy, common.ErrorCode_BUSY},
	{ErrUnavailable, common.ErrorCode_UNAVAILABLE},
}

// bizError maps err to the one error model of the wire. known reports
// whether err was a request error; anything else becomes INTERNAL and must be
// logged by the caller with its ids.
func bizError(err error) (biz *common.BizError, known bool) {
	for _, c := range clientCodes {
		if errors.Is(err, c.err) {
			biz := &common.BizError{Code: c.code, Message: err.Error()}
			if errors.Is(err, errDeviceRevoked) {
				biz.SignedOut = new(true)
			}
			return biz, true
		}
	}
	for _, c := range serverCodes {
		if errors.Is(err, c.err) {
			return &common.BizError{Code: c.code, Message: c.err.Error()}, false
		}
	}
	return &common.BizError{Code: common.ErrorCode_INTERNAL, Message: "internal error"}, false
}

// isRequestError reports whether err is one of the request errors that
// reach the client with their own text.
func isRequestError(err error) bool {
	if err == nil {
		return false
	}
	_, known := bizError(err)
	return known
}
