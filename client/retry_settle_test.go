package client

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/resonance-im/resonance/kitex_gen/common"
)

// Only a server's final answer to a retry settles an attempt whose answer
// was lost; a refusal of the retry unacted (BUSY, UNAVAILABLE, INTERNAL,
// RATE_LIMITED) leaves it unknown, as does the end of the wait.
func TestStillUnknown(t *testing.T) {
	refused := func(code common.ErrorCode) error {
		return fmt.Errorf("manage group: %w", &Error{Code: code})
	}
	tests := []struct {
		name    string
		err     error
		unsure  bool
		unknown bool
	}{
		{name: "busy after a lost answer", err: refused(common.ErrorCode_BUSY),
			unsure: true, unknown: true},
		{name: "unavailable after a lost answer", err: refused(common.ErrorCode_UNAVAILABLE),
			unsure: true, unknown: true},
		{name: "internal after a lost answer", err: refused(common.ErrorCode_INTERNAL),
			unsure: true, unknown: true},
		{name: "rate limited after a lost answer", err: refused(common.ErrorCode_RATE_LIMITED),
			unsure: true, unknown: true},
		{name: "ctx ended after a lost answer", err: context.Canceled,
			unsure: true, unknown: true},
		{name: "forbidden after a lost answer", err: refused(common.ErrorCode_FORBIDDEN),
			unsure: true, unknown: false},
		{name: "not found after a lost answer", err: refused(common.ErrorCode_NOT_FOUND),
			unsure: true, unknown: false},
		{name: "busy, nothing lost", err: refused(common.ErrorCode_BUSY),
			unsure: false, unknown: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := stillUnknown(tc.err, tc.unsure)
			if got := errors.Is(err, ErrOutcomeUnknown); got != tc.unknown {
				t.Fatalf("stillUnknown(%v, %t) = %v: unknown %t, want %t", tc.err, tc.unsure,
					err, got, tc.unknown)
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("stillUnknown(%v) = %v, lost the last attempt's error", tc.err, err)
			}
		})
	}
}
