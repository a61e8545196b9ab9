package chat_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/resonance-im/resonance/client/chat"
)

// A refused login suggests --register only where it could help: not when
// it was given, nor for a password no registration takes; a password from
// the environment, perhaps from before a change, is named as such.
func TestRun_BadCredentialsSuggestRegisterOnlyWhereItHelps(t *testing.T) {
	s := startServer(t)
	newUser(t, s, "bob")
	for _, tc := range []struct {
		name, env string
		args      []string
		want      string
	}{
		{name: "flag", args: []string{"--password", "old-secret"},
			want: "! invalid username or password (if bob is a new name, add --register)\n"},
		{name: "environment", env: "old-secret",
			want: "! invalid username or password (the password is $RESONANCE_PASSWORD's; " +
				"if bob is a new name, add --register)\n"},
		{name: "too short to register", args: []string{"--password", "short"},
			want: "! invalid username or password\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("RESONANCE_PASSWORD", tc.env)
			r := startChat(t, append([]string{"--addr", s.Addr(), "--user", "bob"},
				tc.args...)...)
			if err := r.wait(t); !errors.Is(err, chat.ErrBadCredentials) {
				t.Fatalf("Run = %v, want %v", err, chat.ErrBadCredentials)
			}
			if out := r.out.String(); !strings.HasSuffix(out, tc.want) {
				t.Fatalf("output does not end with %q:\n%s", tc.want, out)
			}
		})
	}
}
