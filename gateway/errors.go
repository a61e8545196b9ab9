package gateway

import (
	"context"
	"errors"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Sentinel errors of the gateway.
var (
	// ErrBadConfig means New was given an invalid Config or incomplete Deps.
	ErrBadConfig = errors.New("gateway: bad config")
	// ErrConnClosed means the connection closed before a write could be queued.
	ErrConnClosed = errors.New("gateway: connection closed")
	// ErrBusy means a per-connection queue or the worker pool is full.
	ErrBusy = errors.New("gateway: busy")
	// ErrNoReply means logic answered a call with neither a reply nor an error.
	ErrNoReply = errors.New("gateway: logic sent no reply")
	// ErrRunTwice means Run was called on a gateway that already ran.
	ErrRunTwice = errors.New("gateway: Run called twice")
	// ErrBadPushFrame means a Push request carried bytes that are not one
	// whole, valid client frame.
	ErrBadPushFrame = errors.New("gateway: push frame is not a valid frame")

	// ErrWSProtocol means a WebSocket frame broke RFC 6455: unmasked, reserved
	// bits or opcode, a bad control frame, a stray continuation, or a binary
	// message that is not exactly one protocol frame. Closed with 1002.
	ErrWSProtocol = errors.New("gateway: websocket protocol error")
	// ErrWSTooLarge means a WebSocket message declared more than the body
	// limit (MaxBody, or less before LOGIN) plus the frame header. Closed
	// with 1009, before its payload is read.
	ErrWSTooLarge = errors.New("gateway: websocket message too large")
	// ErrWSText means a client sent a text message; the protocol is binary.
	// Closed with 1003.
	ErrWSText = errors.New("gateway: websocket text message")
	// ErrHandshake means an HTTP request on the client port was not a
	// WebSocket upgrade we accept (malformed, too long or origin refused).
	ErrHandshake = errors.New("gateway: websocket handshake refused")
	// ErrProxyHeader means a trusted proxy sent a PROXY protocol header that
	// is malformed or over its bound (see proxy.go). Closed with
	// PROTOCOL_ERROR.
	ErrProxyHeader = errors.New("gateway: bad PROXY protocol header")
)

// bizError builds the error a worker returns for a request the gateway itself
// refuses, so that it travels the same path as logic's errors.
func bizError(code common.ErrorCode, msg string) *common.BizError {
	return &common.BizError{Code: code, Message: msg}
}

// errorResp maps any error of a request to the body sent to the client. Only
// a *common.BizError reaches the client as is; anything else is reported
// generically because its text may hold internal details. internal tells the
// caller to log the error.
func errorResp(err error) (resp *protocol.ErrorResp, internal bool) {
	var biz *common.BizError
	switch {
	case errors.As(err, &biz):
		return &protocol.ErrorResp{Code: biz.Code, Message: biz.Message}, false
	case errors.Is(err, ErrBusy):
		return &protocol.ErrorResp{
			Code: common.ErrorCode_BUSY, Message: "server busy, retry later",
		}, false
	case errors.Is(err, context.DeadlineExceeded):
		return &protocol.ErrorResp{
			Code: common.ErrorCode_UNAVAILABLE, Message: "service timed out, retry later",
		}, true
	default:
		return &protocol.ErrorResp{
			Code: common.ErrorCode_UNAVAILABLE, Message: "service unavailable, retry later",
		}, true
	}
}

// countsAsFailedLogin reports whether a Login error was a bad credential or
// token. Outages and rate limiting must not push a client towards
// LOGIN_FAILED, which tells it not to reconnect.
func countsAsFailedLogin(err error) bool {
	var biz *common.BizError
	if !errors.As(err, &biz) {
		return false
	}
	return biz.Code == common.ErrorCode_INVALID_CREDENTIALS ||
		biz.Code == common.ErrorCode_TOKEN_INVALID
}
