package chat_test

import (
	"strings"
	"testing"
)

// Control characters typed into a line (a Ctrl-L to clear the screen, a
// stray Ctrl-G) are dropped from the text sent, a tab kept, as a command
// already ignores them before its '/'; a line of nothing else is not sent.
func TestRun_TypedControlCharactersAreNotSent(t *testing.T) {
	s := startServer(t)
	newUser(t, s, "bob")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret",
		"--register", "--to", "bob")
	waitOutput(t, r.out, "* chatting with bob", 1)

	r.say(t, "\x0cA-dual 1")
	waitOutput(t, r.out, "alice #1: A-dual 1\n", 1)
	r.say(t, "\x01\x02")
	r.say(t, "mid\x07dle\tcol\x1b")
	waitOutput(t, r.out, "alice #2: mid", 1)
	r.say(t, "/reply #1 \x0cre\x00ply")
	waitOutput(t, r.out, "alice #3: ", 1)
	out := r.out.String()
	for _, want := range []string{"alice #2: middle␉col\n", "reply\n"} {
		if !strings.Contains(out, want) {
			t.Fatalf("want %q in:\n%s", want, out)
		}
	}
	if s.SendCount() != 3 {
		t.Fatalf("%d messages sent, want 3:\n%s", s.SendCount(), out)
	}
}
