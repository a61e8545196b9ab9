package chat_test

import (
	"context"
	"testing"

	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// /pin and /unpin send PIN for the #seq typed; each pin shows as one line
// on the pinner's screen and the peer's; a pin that changes nothing says
// so; /pins lists the pinned messages from the server's summary, most
// recently pinned first, the peer's pins included.
func TestRun_PinUnpinAndPins(t *testing.T) {
	s := startServer(t)
	bob, _ := newUser(t, s, "bob")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret", "--register")
	waitOutput(t, r.out, "* logged in as alice", 1)
	aliceID := userID(t, bob, "alice")
	send(t, bob, aliceID, "lunch?")  // #1
	send(t, bob, aliceID, "at noon") // #2
	waitOutput(t, r.out, "] bob #2: at noon", 1)

	for _, tc := range []struct{ line, want string }{
		{line: "/to bob", want: "* chatting with bob"},
		{line: "/pins", want: "* nothing pinned in this conversation"},
		{line: "/pin", want: "! usage: /pin #<seq> or /unpin #<seq>"},
		{line: "/pin #x", want: "! usage: /pin #<seq> or /unpin #<seq>"},
		{line: "/pin #1", want: "* #3 alice pinned #1"},
		{line: "/pin #1", want: "* #1 is pinned already"},
		{line: "/unpin #2", want: "* #2 is not pinned"},
		{line: "/pin #3", want: "only a text, binary or file message may change"}, // an event
		{line: "/pin #99",
			want: "! no #99 in this conversation (cleared from your history, or never sent)"},
		{line: "/reply #3 ok", want: "! #3 is an event (a pin of #1), not a message: /reply #1"},
	} {
		r.say(t, tc.line)
		waitOutput(t, r.out, tc.want, 1)
	}
	if n := s.Requests(protocol.Op_PIN); n != 5 {
		t.Errorf("%d PIN requests, want 5 (none for the malformed lines)", n)
	}

	// The peer's pin arrives as a line of its own, and /pins lists both.
	if _, err := bob.Pin(context.Background(), "p2p:1:2", 2, false); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, r.out, "* #4 bob pinned #2", 1)
	r.say(t, "/pins")
	waitOutput(t, r.out, "--- 2 pinned messages ---", 1)
	waitOutput(t, r.out, "] bob #2: at noon", 2)
	waitOutput(t, r.out, "] bob #1: lunch?", 2)
	r.say(t, "/unpin #1")
	waitOutput(t, r.out, "* #5 alice unpinned #1", 1)
	r.say(t, "/pins")
	waitOutput(t, r.out, "--- 1 pinned message ---", 1)
	r.say(t, "/quit")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}
