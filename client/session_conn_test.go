package client

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

func TestSession_RetryDelay(t *testing.T) {
	const backoff = 100 * time.Millisecond
	closed := func(r protocol.CloseReason, after time.Duration) error {
		return fmt.Errorf("read: %w", &CloseError{Reason: r, ReconnectAfter: after})
	}
	tests := []struct {
		name       string
		password   string
		refresh    string
		err        error
		fatal      bool
		minW, maxW time.Duration
	}{
		{name: "dropped connection backs off with jitter", err: errors.New("EOF"),
			minW: backoff, maxW: backoff * 3 / 2},
		{name: "server delay is honoured", err: closed(protocol.CloseReason_SERVER_SHUTDOWN,
			time.Second), minW: time.Second, maxW: time.Second + backoff/2},
		{name: "kicked ends", err: closed(protocol.CloseReason_KICKED, -1), fatal: true},
		{name: "signed out ends", err: closed(protocol.CloseReason_SIGNED_OUT, 0), fatal: true},
		{name: "login failed ends", err: closed(protocol.CloseReason_LOGIN_FAILED, 0),
			fatal: true},
		// TOKEN_EXPIRED comes with -1 from the gateway: not with this token.
		{name: "expired token without password ends",
			err: closed(protocol.CloseReason_TOKEN_EXPIRED, -1), fatal: true},
		{name: "expired token with password logs in again", password: "pw",
			err: closed(protocol.CloseReason_TOKEN_EXPIRED, -1), maxW: backoff / 2},
		{name: "expired token with a refresh token logs in again", refresh: "rt",
			err: closed(protocol.CloseReason_TOKEN_EXPIRED, -1), maxW: backoff / 2},
		{name: "refused credentials end",
			err: &Error{Code: common.ErrorCode_INVALID_CREDENTIALS}, fatal: true},
		{name: "unavailable backs off", err: &Error{Code: common.ErrorCode_UNAVAILABLE},
			minW: backoff, maxW: backoff * 3 / 2},
		{name: "a rate-limited login waits longer and goes on",
			err:  &Error{Code: common.ErrorCode_RATE_LIMITED},
			minW: rateLimitedBackoff, maxW: rateLimitedBackoff * 3 / 2},
		{name: "catch-up failure backs off whatever the code",
			err:  fmt.Errorf("%w: %w", errCatchUp, &Error{Code: common.ErrorCode_FORBIDDEN}),
			minW: backoff, maxW: backoff * 3 / 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Session{cfg: SessionConfig{Login: LoginParams{Password: tt.password}},
				password: tt.password, tokens: tokens{access: "tok", refresh: tt.refresh}}
			wait, err := s.retryDelay(tt.err, backoff)
			if tt.fatal {
				if !errors.Is(err, ErrSessionEnded) {
					t.Fatalf("err = %v, want ErrSessionEnded", err)
				}
				return
			}
			if err != nil || wait < tt.minW || wait > tt.maxW {
				t.Fatalf("wait %v err %v, want %v..%v", wait, err, tt.minW, tt.maxW)
			}
			if (tt.password != "" || tt.refresh != "") && s.tokens.access != "" {
				t.Fatal("expired token kept")
			}
		})
	}
}

// A CLOSE PROTOCOL_ERROR that fails a request whose op the server answered
// on the connection before (closedBeside) was for another frame, such as
// an op of the application's that an older gateway does not know: it does
// not say that the server lacks the request's op (DELIVERED, a later page
// or a resync's SYNC_CONVS), which the Session would otherwise stop asking
// for a while.
func TestLacksOp(t *testing.T) {
	ce := &CloseError{Reason: protocol.CloseReason_PROTOCOL_ERROR}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{name: "UNSUPPORTED", err: &Error{Code: common.ErrorCode_UNSUPPORTED}, want: true},
		{name: "close for the op", err: ce, want: true},
		{name: "close beside an op answered before", err: closedBeside{ce}},
		{name: "close for the op, wrapped", err: fmt.Errorf("sync convs: %w", ce), want: true},
		// Answered before a close for another frame ended the connection.
		{name: "another error", err: &Error{Code: common.ErrorCode_UNAVAILABLE}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := lacksOp(tt.err); got != tt.want {
				t.Fatalf("lacksOp(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
