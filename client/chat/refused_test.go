package chat_test

import (
	"strings"
	"testing"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/kitex_gen/common"
)

// A conversation whose catch-up the server refuses is named once, and the
// client goes on with the others.
func TestRun_NamesAConversationTheServerRefuses(t *testing.T) {
	s := startServer(t)
	bob, _ := newUser(t, s, "bob")
	carol, _ := newUser(t, s, "carol")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret",
		"--register")
	waitOutput(t, r.out, "* logged in as alice", 1)
	aliceID := userID(t, bob, "alice")
	bobConv := client.P2PConvID(aliceID, userID(t, carol, "bob"))
	s.RefuseSyncs(bobConv, common.ErrorCode_FORBIDDEN)

	// The first push lost, the second asks for the conversation's history.
	s.DropPushes(1)
	send(t, bob, aliceID, "lost")
	send(t, bob, aliceID, "held")
	waitOutput(t, r.out, "! cannot catch up on "+bobConv+": injected refusal (forbidden)", 1)
	send(t, carol, aliceID, "still here")
	waitOutput(t, r.out, "] carol #1: still here", 1)
	r.say(t, "/quit")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if out := r.out.String(); strings.Count(out, "cannot catch up") != 1 ||
		strings.Contains(out, "connection lost") {
		t.Fatalf("want one refusal and no reconnect; output:\n%s", out)
	}
}
