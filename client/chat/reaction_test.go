package chat_test

import (
	"context"
	"testing"

	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// /react and /unreact send REACT for the #seq typed; the reactions arrive as
// one short line each, on the reactor's screen and the peer's; a reaction
// that changes nothing says so; reopening the conversation shows the sum beside the message.
func TestRun_ReactAndUnreact(t *testing.T) {
	s := startServer(t)
	bob, _ := newUser(t, s, "bob")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret", "--register")
	waitOutput(t, r.out, "* logged in as alice", 1)
	aliceID := userID(t, bob, "alice")
	send(t, bob, aliceID, "lunch?") // #1
	waitOutput(t, r.out, "] bob #1: lunch?", 1)

	for _, tc := range []struct{ line, want string }{
		{line: "/to bob", want: "* chatting with bob"},
		{line: "/react 1", want: "! usage: /react #<seq> <emoji> or /unreact #<seq> <emoji>"},
		{line: "/react #x 👍", want: "! usage: /react #<seq> <emoji>"},
		{line: "/react #1 👍", want: "* #2 alice reacted 👍 to #1"},
		{line: "/react #1 👍", want: "* you already reacted 👍 to #1"},
		{line: "/unreact #1 🎉", want: "* you have no 🎉 on #1"},
		{line: "/react #2 🎉", want: "only a text or binary message may change"}, // an event
		{line: "/react #99 🎉",
			want: "! no #99 in this conversation (cleared from your history, or never sent)"},
		{line: "/unreact #1 👍", want: "* #3 alice took back 👍 from #1"},
		{line: "/react #1 🎉", want: "* #4 alice reacted 🎉 to #1"},
		{line: "/to bob", want: "] bob #1: lunch? [🎉 1]"},
	} {
		r.say(t, tc.line)
		waitOutput(t, r.out, tc.want, 1)
	}
	if n := s.Requests(protocol.Op_REACT); n != 7 {
		t.Errorf("%d REACT requests, want 7 (none for the malformed lines)", n)
	}

	// The peer's side: bob's reaction arrives as a line of its own.
	if _, err := bob.React(context.Background(), "p2p:1:2", 1, "😂", false); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, r.out, "* #5 bob reacted 😂 to #1", 1)
	r.say(t, "/quit")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

// /reply to a seq the conversation does not have says so in the client's
// words, as /edit does, and sends nothing; a reply to a message goes out.
func TestRun_ReplyToAMissingSeq(t *testing.T) {
	s := startServer(t)
	bob, _ := newUser(t, s, "bob")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret",
		"--register", "--to", "bob")
	waitOutput(t, r.out, "* chatting with bob", 1)
	send(t, bob, userID(t, bob, "alice"), "lunch?") // #1
	waitOutput(t, r.out, "] bob #1: lunch?", 1)

	r.say(t, "/reply #99999 hi")
	waitOutput(t, r.out, "! no #99999 in this conversation", 1)
	r.say(t, "/reply #1 sure")
	waitOutput(t, r.out, `alice #2: (re #1 bob: "lunch?") sure`, 1)
	if n := s.Requests(protocol.Op_SEND); n != 2 {
		t.Fatalf("%d sends, want 2 (bob's and the reply to #1)", n)
	}
}
