package chat

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/kitex_gen/common"
)

func TestDescribe_NamesTheCodeOnce(t *testing.T) {
	tests := []struct {
		name    string
		code    common.ErrorCode
		message string
		want    string
	}{
		{name: "message begins with the code", code: common.ErrorCode_FORBIDDEN,
			message: "forbidden: cannot send to this user",
			want:    "forbidden: cannot send to this user"},
		{name: "message is the code", code: common.ErrorCode_NOT_FOUND,
			message: "not found", want: "not found"},
		{name: "message of other words keeps the code", code: common.ErrorCode_RATE_LIMITED,
			message: "too many attempts, try again later",
			want:    "too many attempts, try again later (rate limited)"},
		{name: "code's words inside a word are not the code", code: common.ErrorCode_BAD_REQUEST,
			message: "bad requester", want: "bad requester (bad request)"},
		{name: "no message", code: common.ErrorCode_BUSY, want: "busy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Wrapped as the SDK returns it, naming the request.
			err := fmt.Errorf("client: SEND: %w", &client.Error{Code: tt.code, Message: tt.message})
			if got := describe(err); got != tt.want {
				t.Fatalf("describe(%v) = %q, want %q", err, got, tt.want)
			}
		})
	}
}

// A request that got no answer in time says so in words, not as Go's
// "context deadline exceeded"; one that could not be sent says it was not
// done.
func TestDescribe_TimeoutAndOfflineInWords(t *testing.T) {
	timedOut := fmt.Errorf("client: EDIT: %w", context.DeadlineExceeded)
	if got := describe(timedOut); strings.Contains(got, "deadline") ||
		!strings.HasPrefix(got, "no answer from the server in time") {
		t.Fatalf("describe(%v) = %q", timedOut, got)
	}
	offline := fmt.Errorf("%w: %w", errOffline, context.DeadlineExceeded)
	if got := describe(offline); got != offlineText {
		t.Fatalf("describe(%v) = %q, want %q", offline, got, offlineText)
	}
}
