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
