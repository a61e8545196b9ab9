package chat_test

import (
	"context"
	"strings"
	"testing"

	"github.com/resonance-im/resonance/client"
)

// /reply to an event (an edit, a recall, a reaction, a group change) is
// refused before anything is sent: a reply quotes a message, and the
// server, which does not read the quoted row, took it (found by a new-user
// trial: "(re #4) replying to an edit event").
func TestRun_ReplyToAnEventIsRefused(t *testing.T) {
	s := startServer(t)
	ann, _ := newUser(t, s, "ann")
	r := startChat(t, "--addr", s.Addr(), "--user", "bob", "--password", "pw-secret",
		"--register", "--to", "ann")
	waitOutput(t, r.out, "* chatting with ann", 1)
	bobID := userID(t, ann, "bob")
	send(t, ann, bobID, "lunch?")
	waitOutput(t, r.out, "ann #1: lunch?", 1)
	conv := client.P2PConvID(bobID, userID(t, ann, "ann"))
	if _, err := ann.React(context.Background(), conv, 1, "👍", false); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, r.out, "* #2 ann reacted 👍 to #1", 1)

	r.say(t, "/reply #2 sure")
	waitOutput(t, r.out, "! #2 is an event (a reaction to #1), not a message: /reply #1", 1)
	r.say(t, "/reply #1 sure")
	waitOutput(t, r.out, `(re #1 ann: "lunch?") sure`, 1)
	if n := strings.Count(r.out.String(), "sure"); n != 1 {
		t.Fatalf("\"sure\" printed %d times, want the one reply sent:\n%s", n, r.out.String())
	}
}
