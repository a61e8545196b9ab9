package chat_test

import (
	"testing"
	"time"

	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// A Ctrl-L typed before /password (a habit to clear the screen) or a
// zero-width space pasted before it does not turn the command into a
// message, and neither do the passwords typed after it. A new password
// typed differently the second time is asked again, and a line that is a
// password typed at a prompt of this run is not sent.
func TestRun_CommandAfterInvisibleCharactersIsACommand(t *testing.T) {
	s := startServer(t)
	bob, _ := newUser(t, s, "bob")
	newUser(t, s, "alice")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret",
		"--to", "bob")
	waitOutput(t, r.out, "* chatting with bob", 1)

	r.say(t, "\x0c/password")
	waitOutput(t, r.out, "* type your current password", 1)
	r.say(t, "\u200b /cancel")
	waitOutput(t, r.out, "* cancelled; password not changed", 1)

	r.say(t, "\u200b\x0c /password")
	waitOutput(t, r.out, "* type your current password", 2)
	r.say(t, "pw-secret")
	waitOutput(t, r.out, "* type the new password (8 to 128 bytes)", 1)
	r.say(t, "new-secret-1")
	waitOutput(t, r.out, "* type the new password again", 1)
	r.say(t, "new-secret-2")
	waitOutput(t, r.out, "! the new passwords differ; type the new password (8 to 128 "+
		"bytes) again, try 2 of 3, or /cancel", 1)
	r.say(t, "new-secret-1")
	waitOutput(t, r.out, "* type the new password again", 2)
	r.say(t, "new-secret-1")
	waitOutput(t, r.out, "* password changed", 1)

	// The user retypes a password, thinking the prompt still open.
	r.say(t, "new-secret-1")
	waitOutput(t, r.out, "! not sent: that line is a password typed in this run", 1)
	r.say(t, "\x0c/nosuch")
	waitOutput(t, r.out, "! unknown command /nosuch", 1)
	r.say(t, "hello")
	waitOutput(t, r.out, "alice #1: hello", 1)
	// Indentation is seen and meant: a pasted comment line is text.
	r.say(t, "  // a comment in pasted code")
	waitOutput(t, r.out, "alice #2:   // a comment in pasted code", 1)
	for _, want := range []string{"hello", "  // a comment in pasted code"} {
		select {
		case m := <-bob.Messages():
			if string(m.Content) != want {
				t.Fatalf("bob got %q, want %q; output:\n%s", m.Content, want, r.out.String())
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("bob never got %q", want)
		}
	}
}

// After three mismatches the change ends without a password changed.
func TestRun_PasswordMismatchEndsAfterThreeTries(t *testing.T) {
	s := startServer(t)
	newUser(t, s, "alice")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret")
	waitOutput(t, r.out, "* logged in as alice", 1)
	r.say(t, "/password")
	r.say(t, "pw-secret")
	for i := range 3 {
		r.say(t, "new-secret-1")
		r.say(t, "new-secret-x")
		waitOutput(t, r.out, "! the new passwords differ", i+1)
	}
	waitOutput(t, r.out, "! the new passwords differ 3 times; password not changed", 1)
	r.say(t, "/quit")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

// A password typed in this run goes neither as a reply nor as an edit.
func TestRun_PasswordIsNotSentAsReplyOrEdit(t *testing.T) {
	s := startServer(t)
	newUser(t, s, "bob")
	newUser(t, s, "alice")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret",
		"--to", "bob")
	waitOutput(t, r.out, "* chatting with bob", 1)
	r.say(t, "mine")
	waitOutput(t, r.out, "alice #1: mine", 1)
	r.say(t, "/reply #1 pw-secret")
	waitOutput(t, r.out, "! not sent: that line is a password typed in this run", 1)
	r.say(t, "/edit #1 pw-secret")
	waitOutput(t, r.out, "! not edited: that text is a password typed in this run", 1)
	r.say(t, "/quit")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if n := s.Requests(protocol.Op_EDIT); n != 0 {
		t.Fatalf("%d edits asked of the server, want none", n)
	}
}

// A new password outside the server's length rule is refused as soon as
// it is typed, and asked again, rather than after it is typed twice.
func TestRun_PasswordTooShortIsRefusedAtOnce(t *testing.T) {
	s := startServer(t)
	newUser(t, s, "alice")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret")
	waitOutput(t, r.out, "* logged in as alice", 1)
	r.say(t, "/password")
	r.say(t, "pw-secret")
	r.say(t, "short")
	waitOutput(t, r.out, "! that password is 5 bytes; the server takes 8 to 128: type the "+
		"new password again, try 2 of 3, or /cancel", 1)
	r.say(t, "new-secret-1")
	waitOutput(t, r.out, "* type the new password again", 1)
	r.say(t, "new-secret-1")
	waitOutput(t, r.out, "* password changed", 1)
}

// A pasted block of code or a path is text though its lines start with '/':
// no command's name starts with another '/', a '*' or a space, nor holds a
// '/' ("/usr/local/bin"). Each such line reaches the peer in its place,
// where it was refused as an unknown command and the paste arrived with
// holes. A word that could be a command's name mistyped is still refused.
func TestRun_PastedSlashLinesThatCannotBeCommandsAreText(t *testing.T) {
	s := startServer(t)
	bob, _ := newUser(t, s, "bob")
	newUser(t, s, "alice")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret",
		"--to", "bob")
	waitOutput(t, r.out, "* chatting with bob", 1)

	paste := []string{"func f() {", "// Sum adds.", "/* block */", "/usr/local/bin is on PATH",
		"/", "/ 2 = half", "/3 of it", "}"}
	for _, line := range paste {
		r.say(t, line)
	}
	r.say(t, "/hsitory")
	waitOutput(t, r.out, "! unknown command /hsitory", 1)
	for _, want := range paste {
		select {
		case m := <-bob.Messages():
			if string(m.Content) != want {
				t.Fatalf("bob got %q, want %q; output:\n%s", m.Content, want, r.out.String())
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("bob never got %q; output:\n%s", want, r.out.String())
		}
	}
}
