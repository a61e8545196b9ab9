package chat_test

import (
	"context"
	"strings"
	"testing"

	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// After /leave the client is in no conversation and says so: lines typed
// next are not sent to the group left, which refuses them.
func TestRun_LeaveEndsTheGroupView(t *testing.T) {
	s := startServer(t)
	bob, _ := newUser(t, s, "bob")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret",
		"--register")
	waitOutput(t, r.out, "* logged in as alice", 1)
	aliceID := userID(t, bob, "alice")
	if _, err := bob.CreateGroup(context.Background(), "team", []int64{aliceID}, ""); err != nil {
		t.Fatal(err)
	}

	r.say(t, "/group team")
	waitOutput(t, r.out, "* chatting in group team (g:1)", 1)
	r.say(t, "/leave")
	waitOutput(t, r.out, "* you left group team; /to <user> or /group <name or id> to chat on", 1)
	r.say(t, "anyone?")
	waitOutput(t, r.out, "! no peer yet: /to <user>", 1)
	r.say(t, "/quit")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	out := r.out.String()
	if n := s.Requests(protocol.Op_SEND); n != 0 || strings.Contains(out, "not a member") {
		t.Fatalf("%d sends after /leave; output:\n%s", n, out)
	}
}
