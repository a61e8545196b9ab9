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
		{name: "expired token without password ends",
			err: closed(protocol.CloseReason_TOKEN_EXPIRED, 0), fatal: true},
		{name: "expired token with password logs in again", password: "pw",
			err: closed(protocol.CloseReason_TOKEN_EXPIRED, 0), maxW: backoff / 2},
		{name: "expired token with a refresh token logs in again", refresh: "rt",
			err: closed(protocol.CloseReason_TOKEN_EXPIRED, 0), maxW: backoff / 2},
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
				tokens: tokens{access: "tok", refresh: tt.refresh}}
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
