package chat_test

import (
	"context"
	"strings"
	"testing"

	"github.com/resonance-im/resonance/client"
)

// /clear empties the history on screen and says so; /hide also takes the
// chat off /convs, until a new message lists it again.
func TestRun_ClearAndHide(t *testing.T) {
	s := startServer(t)
	bob, _ := newUser(t, s, "bob")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret",
		"--register")
	waitOutput(t, r.out, "* logged in as alice", 1)
	aliceID := userID(t, bob, "alice")
	ctx := context.Background()
	send := func(text string) {
		t.Helper()
		if _, err := bob.Send(ctx, client.SendParams{ToUserID: aliceID, Text: text}); err != nil {
			t.Fatal(err)
		}
	}
	send("one")
	send("two")

	r.say(t, "/to bob")
	waitOutput(t, r.out, "two", 1)
	r.say(t, "/clear")
	waitOutput(t, r.out, "* cleared the history with bob up to #2 on all your devices; "+
		"the others still have theirs", 1)
	r.say(t, "/history")
	waitOutput(t, r.out, "--- no earlier messages with bob ---", 1)
	r.say(t, "/convs")
	waitOutput(t, r.out, "--- 1 conversation ---", 1)

	send("three")
	waitOutput(t, r.out, "three", 1)
	r.say(t, "/hide")
	waitOutput(t, r.out, "* deleted the chat with bob for you: history cleared up to #3 on "+
		"all your devices, and gone from /convs until a new message comes", 1)
	r.say(t, "/convs")
	waitOutput(t, r.out, "--- 0 conversations ---", 1)
	send("four")
	waitOutput(t, r.out, "four", 1)
	r.say(t, "/convs")
	waitOutput(t, r.out, "--- 1 conversation ---", 2)
	r.say(t, "/quit")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

// A reply that quotes cleared history shows no excerpt of it: /clear
// forgets the texts it keeps for quotes, as a new run would not have them.
func TestRun_ClearForgetsQuotedTexts(t *testing.T) {
	s := startServer(t)
	bob, _ := newUser(t, s, "bob")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret",
		"--register")
	waitOutput(t, r.out, "* logged in as alice", 1)
	aliceID := userID(t, bob, "alice")
	ctx := context.Background()
	if _, err := bob.Send(ctx, client.SendParams{ToUserID: aliceID, Text: "the secret"}); err != nil {
		t.Fatal(err)
	}
	r.say(t, "/to bob")
	waitOutput(t, r.out, "the secret", 1)
	r.say(t, "/clear")
	waitOutput(t, r.out, "* cleared the history with bob up to #1", 1)

	if _, err := bob.Send(ctx, client.SendParams{ToUserID: aliceID, Text: "as I said",
		ReplyToSeq: 1}); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, r.out, "as I said", 1)
	if out := r.out.String(); strings.Contains(out, `(re #1 bob: "the secret")`) ||
		!strings.Contains(out, "(re #1) as I said") {
		t.Fatalf("the cleared text is quoted again:\n%s", out)
	}
}

// A clear on one device shows at once on another open client of the user
// (NOTIFY cleared): a line says so, and /history shows nothing before it.
func TestRun_ClearOnAnotherDeviceIsShown(t *testing.T) {
	s := startServer(t)
	bob, _ := newUser(t, s, "bob")
	_, aliceID := newUser(t, s, "alice")
	t.Setenv("RESONANCE_PASSWORD", "pw-secret")
	desk := startChat(t, "--addr", s.Addr(), "--user", "alice", "--device", "desk", "--to", "bob")
	waitOutput(t, desk.out, "* chatting with bob", 1)
	phone := startChat(t, "--addr", s.Addr(), "--user", "alice", "--device", "phone", "--to", "bob")
	waitOutput(t, phone.out, "* chatting with bob", 1)
	send(t, bob, aliceID, "one")
	send(t, bob, aliceID, "two")
	waitOutput(t, phone.out, "bob #2: two", 1)
	waitOutput(t, desk.out, "bob #2: two", 1)

	desk.say(t, "/clear")
	waitOutput(t, desk.out, "* cleared the history with bob up to #2", 1)
	waitOutput(t, phone.out, "* the history with bob was cleared up to #2 on another of your "+
		"devices", 1)

	send(t, bob, aliceID, "three")
	waitOutput(t, phone.out, "bob #3: three", 1)
	// The desk clears up to what it has shown: #3 must be on it first.
	waitOutput(t, desk.out, "bob #3: three", 1)
	desk.say(t, "/hide")
	waitOutput(t, phone.out, "* the chat with bob was deleted on another of your devices: "+
		"history cleared up to #3", 1)
}
