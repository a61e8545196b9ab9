package chat_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/resonance-im/resonance/client/chat"
	"github.com/resonance-im/resonance/client/clienttest"
)

// A first address that speaks another protocol is passed over, for the
// registration and the login alike, as one that cannot be dialled is; with
// every address failing, the client ends naming them.
func TestRun_PassesOverAnAddressThatIsNoGateway(t *testing.T) {
	s := startServer(t)
	other := clienttest.OtherProtocolAddr(t)
	r := startChat(t, "--addr", other+","+s.Addr(), "--user", "alice", "--password", "pw-secret",
		"--register")
	waitOutput(t, r.out, "* registered a new account", 1)
	waitOutput(t, r.out, "* logged in as alice (id 1) at "+s.Addr(), 1)
	r.say(t, "/quit")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}

	down := clienttest.ClosedAddr(t)
	r = startChat(t, "--addr", other+","+down, "--user", "alice", "--password", "pw-secret")
	if err := r.wait(t); !errors.Is(err, chat.ErrUnreachable) {
		t.Fatalf("Run = %v, want %v", err, chat.ErrUnreachable)
	}
	if want := "! chat: cannot connect to " + other + "," + down + ": "; !strings.Contains(
		r.out.String(), want) {
		t.Fatalf("output lacks %q:\n%s", want, r.out.String())
	}
}

// With several addresses failing in different ways, the client says what
// happened at each, not the last failure as if it were every address's.
func TestRun_SaysWhatFailedAtEachAddress(t *testing.T) {
	other := clienttest.OtherProtocolAddr(t)
	down := clienttest.ClosedAddr(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{name: "login", args: nil},
		{name: "registering", args: []string{"--register"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("RESONANCE_PASSWORD", "pw-secret") // --password adds a warning
			args := append([]string{"--addr", down + "," + other, "--user", "alice"},
				tc.args...)
			r := startChat(t, args...)
			if err := r.wait(t); !errors.Is(err, chat.ErrUnreachable) {
				t.Fatalf("Run = %v, want %v", err, chat.ErrUnreachable)
			}
			out := r.out.String()
			lines := strings.Split(strings.TrimSpace(out), "\n")
			want := "! chat: cannot connect to " + down + "," + other + ": at " + down +
				": connect: connection refused (nothing listens there); at " + other +
				": the server there does not speak the Resonance protocol"
			if len(lines) != 1 || !strings.HasPrefix(lines[0], want) {
				t.Fatalf("want one line beginning %q; output:\n%s", want, out)
			}
		})
	}
}
