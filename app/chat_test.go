package app

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client/chat"
	"github.com/resonance-im/resonance/internal/syncbuf"
	"github.com/resonance-im/resonance/internal/testwait"
)

// chatProc is the terminal client run in-process, fed through a pipe.
type chatProc struct {
	in  *io.PipeWriter
	out syncbuf.Buffer
}

func (c *chatProc) text() string { return c.out.String() }

func runChat(t *testing.T, addr, user string) *chatProc {
	t.Helper()
	c := startChat(t, addr, "--user", user)
	c.wait(t, "logged in as "+user)
	return c
}

// startChat runs the client with args after the address, password,
// --register and --device; it does not wait for the login.
func startChat(t *testing.T, addr string, args ...string) *chatProc {
	t.Helper()
	pr, pw := io.Pipe()
	c := &chatProc{in: pw}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	args = append([]string{"--addr", addr, "--password", "correct horse", "--register",
		"--device", "term"}, args...)
	go func() {
		defer close(done)
		_ = chat.Run(ctx, args, pr, &c.out)
	}()
	t.Cleanup(func() { cancel(); _ = pw.Close(); <-done })
	return c
}

func (c *chatProc) say(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(c.in, line+"\n"); err != nil {
		t.Fatal(err)
	}
}

// to opens the conversation with peer and waits until the client says so.
func (c *chatProc) to(t *testing.T, peer string) {
	t.Helper()
	c.say(t, "/to "+peer)
	c.wait(t, "chatting with "+peer)
}

func (c *chatProc) wait(t *testing.T, want string) {
	t.Helper()
	c.waitTimeout(t, want, 10*time.Second)
}

func (c *chatProc) waitTimeout(t *testing.T, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(c.text(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("output lacks %q:\n%s", want, c.text())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The terminal client's group, read, recall and edit commands against the
// real system.
func TestChat_GroupCommands(t *testing.T) {
	sys := startSystem(t, baseConfig(t, RoleAll))
	addr := sys.GatewayAddr().String()
	ann, bob := runChat(t, addr, "tann"), runChat(t, addr, "tbob")

	ann.say(t, "/group new Friends tbob")
	ann.wait(t, `created group Friends`)
	bob.wait(t, `* #1 tann created "Friends" with tbob`)
	ann.say(t, "hello friends")
	bob.wait(t, "tann #2: hello friends")

	out := bob.text()
	i := strings.Index(out, "(g:")
	group := out[i+1 : i+1+28]
	bob.say(t, "/group Nope")
	bob.wait(t, `no group of yours is named "Nope"`)
	bob.say(t, "/group Friends") // by name
	bob.wait(t, "chatting in group Friends ("+group+")")
	bob.say(t, "hi ann")
	ann.wait(t, "tbob #3: hi ann")

	ann.say(t, "/edit 2 hello, friends")
	bob.wait(t, "* #4 tann edited #2: hello, friends")
	ann.say(t, "/recall 2")
	bob.wait(t, "* #5 tann recalled #2")
	bob.say(t, "/group Friends") // opened again: the unread events, then the page before
	bob.wait(t, "--- 2 unread messages with group Friends ---")
	bob.say(t, "/history")
	bob.wait(t, "tann #2: (recalled)")

	ann.say(t, "/members")
	ann.wait(t, "tann (owner)")
	ann.wait(t, "tbob (member)")
	bob.say(t, "/read")
	bob.wait(t, "read up to #5")
	bob.say(t, "/convs")
	bob.wait(t, group+"  Friends  unread 0")
	bob.say(t, "/remove tann")
	bob.wait(t, "a member may not remove")
	ann.say(t, "/remove tbob")
	bob.wait(t, "* #6 tann removed tbob")

	// A message of another conversation says which one it belongs to.
	ann.to(t, "tbob")
	ann.say(t, "psst")
	bob.wait(t, "[with tann] ")
	bob.wait(t, "tann #1: psst")
}

// TestChat_MarksShownMessagesRead checks that messages printed in the open
// conversation count as read, for the reader's other devices and for the
// sender's read receipt, while those of another conversation stay unread.
func TestChat_MarksShownMessagesRead(t *testing.T) {
	sys := startSystem(t, baseConfig(t, RoleAll))
	addr := sys.GatewayAddr().String()
	ann, bob := runChat(t, addr, "rann"), runChat(t, addr, "rbob")
	carl := runChat(t, addr, "rcarl")
	bob.to(t, "rann")
	carl.to(t, "rbob")

	ann.to(t, "rbob")
	ann.say(t, "one")
	ann.say(t, "two")
	bob.wait(t, "rann #2: two")
	carl.say(t, "elsewhere")
	bob.wait(t, "rcarl #1: elsewhere")

	deadline := time.Now().Add(10 * time.Second)
	for {
		bob.say(t, "/convs")
		out := bob.text()
		if strings.Contains(out, "rann  unread 0") && strings.Contains(out, "rcarl  unread 1") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("bob's conversations never showed rann read and rcarl unread:\n%s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestChat_TooLargeMessages checks the limits against the real system:
// 16384 bytes of content are taken, 16385 refused (TOO_LARGE) and 70 KiB
// over the gateway's frame limit are refused by the SDK before sending;
// each refusal is one short line and the session goes on.
func TestChat_TooLargeMessages(t *testing.T) {
	sys := startSystem(t, baseConfig(t, RoleAll))
	addr := sys.GatewayAddr().String()
	ann, bob := runChat(t, addr, "lann"), runChat(t, addr, "lbob")
	ann.to(t, "lbob")
	bob.to(t, "lann")

	ann.say(t, strings.Repeat("x", 16384))
	bob.wait(t, "lann #1: "+strings.Repeat("x", 16384))
	ann.say(t, strings.Repeat("y", 16385))
	ann.wait(t, `! not sent: "`+strings.Repeat("y", 40)+`…" (16385 bytes) is too large`)
	ann.say(t, strings.Repeat("z", 70<<10))
	ann.wait(t, `! not sent: "`+strings.Repeat("z", 40)+`…" (71680 bytes) is too large`)
	ann.say(t, "still here")
	bob.wait(t, "lann #2: still here")
	if out := ann.text(); strings.Contains(out, "connection lost") {
		t.Fatalf("a refusal cost the connection:\n%.2000s", out)
	}
}

// TestChat_GroupNamesPrintInert checks that the server refuses a group
// name with control characters, naming the fault, and that one it takes
// with other invisible characters (a bidirectional override) prints as a
// visible stand-in wherever the client shows it.
func TestChat_GroupNamesPrintInert(t *testing.T) {
	sys := startSystem(t, baseConfig(t, RoleAll))
	addr := sys.GatewayAddr().String()
	ann, bob := runChat(t, addr, "iann"), runChat(t, addr, "ibob")
	ann.say(t, "/group new x\x1b[2Jy ibob")
	ann.wait(t, "! bad request: name has control characters")
	ann.say(t, "/group new x\u202ey ibob")
	bob.wait(t, `* #1 iann created "x`+"\uFFFD"+`y" with ibob`)
	ann.say(t, "hello")
	bob.wait(t, "[x\uFFFDy] [")
	bob.say(t, "/convs")
	bob.wait(t, "  x\uFFFDy  unread")
	for _, out := range []string{ann.text(), bob.text()} {
		if strings.ContainsAny(out, "\x1b\u202e") {
			t.Fatalf("output has a raw escape:\n%q", out)
		}
	}
}

// TestChat_NamesAndRefusals checks that the client shows the server's
// spelling of names, says which user a command could not find, refuses a
// conversation with oneself at once, and shows groups by name.
func TestChat_NamesAndRefusals(t *testing.T) {
	sys := startSystem(t, baseConfig(t, RoleAll))
	addr := sys.GatewayAddr().String()
	runChat(t, addr, "nbob")
	ann := startChat(t, addr, "--user", "NANN", "--to", "NBOB")
	ann.wait(t, "logged in as nann")
	ann.wait(t, "--- no messages with nbob yet ---")
	ann.say(t, "hi")
	ann.wait(t, "] nann #1: hi")

	ann.say(t, "/to NANN")
	ann.wait(t, "! cannot message yourself")
	ann.say(t, "/history") // still nbob's conversation, all of it printed
	ann.wait(t, "--- no earlier messages with nbob ---")

	ann.say(t, "/group new solo nann")
	ann.wait(t, `* #1 nann created "solo" with no one else yet (g:`)
	ann.say(t, "/group new g2 nbob nosuchuser ghost")
	ann.wait(t, "! no such user: nosuchuser, ghost")
	ann.say(t, "/presence ghost")
	ann.wait(t, "! no such user: ghost")

	ann.say(t, "/group new Friends nbob")
	ann.wait(t, "created group Friends")
	ann.say(t, "/to nbob")
	ann.say(t, "/group Friends")
	ann.wait(t, "* chatting in group Friends (g:")
	ann.wait(t, "--- no messages with group Friends yet ---") // events are not counted
	ann.wait(t, `* #1 nann created "Friends" with nbob`)
	ann.say(t, "/dismiss")
	ann.wait(t, "* #2 nann dismissed the group")
	ann.wait(t, "* Friends was dismissed; /to <user> or /group <name or id> to chat on")
	ann.say(t, "/group Friends") // a dismissed group stays readable
	testwait.For(t, 10*time.Second, "the dismissal printed again on opening", func() bool {
		return strings.Count(ann.text(), "* #2 nann dismissed the group") == 2
	})
	ann.say(t, "/members")
	ann.wait(t, "--- Friends (dismissed): 2 members ---")

	if out := ann.text(); strings.Contains(out, "NANN") || strings.Contains(out, "NBOB") ||
		strings.Contains(out, "chatting with nann") {
		t.Fatalf("output shows a name as typed or a chat with oneself:\n%s", out)
	}
}

// TestChat_LongPaste pastes 600 lines, as in the new-user trial (64 were
// sent, 535 dropped): every line reaches the peer once, in order, and the
// gateway's frame rate limit does not cut the connection.
func TestChat_LongPaste(t *testing.T) {
	const lines = 600
	sys := startSystem(t, baseConfig(t, RoleAll))
	addr := sys.GatewayAddr().String()
	bob := runChat(t, addr, "pbob")
	ann := startChat(t, addr, "--user", "pann", "--to", "pbob")
	ann.wait(t, "chatting with pbob")

	var paste strings.Builder
	for i := range lines {
		fmt.Fprintf(&paste, "p%d\n", i)
	}
	go func() { _, _ = io.WriteString(ann.in, paste.String()) }()
	bob.waitTimeout(t, fmt.Sprintf("pann #%d: p%d\n", lines, lines-1), 60*time.Second)
	out := bob.text()
	for i := range lines {
		if n := strings.Count(out, fmt.Sprintf("pann #%d: p%d\n", i+1, i)); n != 1 {
			t.Fatalf("line p%d printed %d times", i, n)
		}
	}
	if strings.Contains(ann.text(), "connection lost") {
		t.Fatalf("the paste cost the connection:\n%s", ann.text())
	}
}

// TestChat_BlockAndDevices checks /block, /unblock and /devices against
// the real system.
func TestChat_BlockAndDevices(t *testing.T) {
	sys := startSystem(t, baseConfig(t, RoleAll))
	addr := sys.GatewayAddr().String()
	ann, bob := runChat(t, addr, "bann"), runChat(t, addr, "bbob")
	bob.to(t, "bann")

	ann.say(t, "/block bbob")
	ann.wait(t, "* blocked bbob")
	bob.say(t, "let me in")
	bob.wait(t, `! not sent: "let me in": `)
	ann.say(t, "/unblock bbob")
	ann.wait(t, "* unblocked bbob")
	bob.say(t, "thanks")
	ann.wait(t, "bbob #1: thanks")
	ann.say(t, "/block bann")
	ann.wait(t, "! cannot block yourself")
	ann.say(t, "/block nobody")
	ann.wait(t, "! no such user: nobody")

	ann.say(t, "/devices")
	ann.wait(t, "--- 1 device ---")
	ann.wait(t, "  term (terminal, online, this one; last login ")
	if strings.Contains(ann.text(), ": let me in") {
		t.Fatalf("a message through the block:\n%s", ann.text())
	}
}

// TestChat_DevicesLeaveOutSignedOut checks that /devices, after /sign-out
// of another device, lists the live device alone: a signed-out device holds
// no sign-in, and offering it would only confuse.
func TestChat_DevicesLeaveOutSignedOut(t *testing.T) {
	sys := startSystem(t, baseConfig(t, RoleAll))
	addr := sys.GatewayAddr().String()
	desk := runChat(t, addr, "dann")
	phone := startChat(t, addr, "--user", "dann", "--device", "phone")
	phone.wait(t, "logged in as dann")
	desk.say(t, "/devices")
	desk.wait(t, "--- 2 devices ---")

	desk.say(t, "/sign-out phone")
	desk.wait(t, "* signed out phone")
	desk.say(t, "/devices")
	desk.wait(t, "--- 1 device ---")
	desk.wait(t, "  term (terminal, online, this one; last login ")
	if out := desk.text(); strings.Contains(out[strings.LastIndex(out, "--- 1 device ---"):],
		"  phone (") {
		t.Fatalf("the signed-out phone listed:\n%s", out)
	}
}

// TestChat_LeaveEndsTheGroupView checks /leave against the real system: the
// client leaves the group's view, so that a line typed next is not sent to
// the group, and the group's LEAVE event is still labelled with its name.
func TestChat_LeaveEndsTheGroupView(t *testing.T) {
	sys := startSystem(t, baseConfig(t, RoleAll))
	addr := sys.GatewayAddr().String()
	ann, bob := runChat(t, addr, "vann"), runChat(t, addr, "vbob")
	ann.say(t, "/group new Club vbob")
	bob.wait(t, `* #1 vann created "Club" with vbob`)
	bob.say(t, "/group Club")
	bob.wait(t, "chatting in group Club")
	bob.say(t, "/leave")
	bob.wait(t, "* you left group Club; /to <user> or /group <name or id> to chat on")
	ann.wait(t, "* #2 vbob left")
	bob.say(t, "still here?")
	bob.wait(t, "! no peer yet: /to <user>")
	bob.say(t, "/convs")
	bob.wait(t, "  Club  unread 0 (left)")
	if out := bob.text(); strings.Contains(out, "not a member") ||
		strings.Contains(out, "connection lost") {
		t.Fatalf("a line went to the group left, or the session failed:\n%s", out)
	}
}
