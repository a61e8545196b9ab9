package chat_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/client/chat"
	"github.com/resonance-im/resonance/client/clienttest"
	"github.com/resonance-im/resonance/internal/syncbuf"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

func waitOutput(t *testing.T, out *syncbuf.Buffer, want string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(out.String(), want) < n {
		if time.Now().After(deadline) {
			t.Fatalf("output never had %q %d times; output:\n%s", want, n, out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// chatRun is a chat.Run in the background, fed through a pipe.
type chatRun struct {
	in     *io.PipeWriter
	out    *syncbuf.Buffer
	errc   chan error
	cancel context.CancelFunc // Ctrl-C
}

func startChat(t *testing.T, args ...string) *chatRun {
	t.Helper()
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	r := &chatRun{in: pw, out: &syncbuf.Buffer{}, errc: make(chan error, 1), cancel: cancel}
	go func() { r.errc <- chat.Run(ctx, args, pr, r.out) }()
	t.Cleanup(func() {
		cancel()
		_ = pw.Close()
	})
	return r
}

func (r *chatRun) say(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(r.in, line+"\n"); err != nil {
		t.Fatalf("write %q: %v", line, err)
	}
}

func (r *chatRun) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.errc:
		return err
	case <-time.After(5 * time.Second):
		t.Fatalf("Run did not return; output:\n%s", r.out.String())
	}
	return nil
}

// newUser registers and logs in a user through the SDK.
func newUser(t *testing.T, s *clienttest.Server, name string) (*client.Client, int64) {
	t.Helper()
	ctx := context.Background()
	c, err := client.Dial(ctx, s.Addr(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.Register(ctx, name, "pw-secret"); err != nil {
		t.Fatal(err)
	}
	resp, err := c.Login(ctx, client.LoginParams{Username: name, Password: "pw-secret",
		DeviceID: "sdk"})
	if err != nil {
		t.Fatal(err)
	}
	return c, resp.UserId
}

func startServer(t *testing.T) *clienttest.Server {
	t.Helper()
	return startServerWith(t, clienttest.Options{})
}

// startServerWith starts a fake server with opts, closed at the test's end.
func startServerWith(t *testing.T, opts clienttest.Options) *clienttest.Server {
	t.Helper()
	s, err := clienttest.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// userID looks a user up through c.
func userID(t *testing.T, c *client.Client, name string) int64 {
	t.Helper()
	u, err := c.GetUser(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return u.UserId
}

func send(t *testing.T, c *client.Client, to int64, text string) {
	t.Helper()
	_, err := c.Send(context.Background(), client.SendParams{ToUserID: to, Text: text})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRun_ChatReconnectsWithoutLossOrRepeat(t *testing.T) {
	s := startServer(t)
	bob, _ := newUser(t, s, "bob")

	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret",
		"--register", "--to", "bob", "--device", "d1")
	waitOutput(t, r.out, "* chatting with bob", 1)
	aliceID := userID(t, bob, "alice")

	// A line is sent, acked and echoed once with its seq.
	r.say(t, "hello bob")
	waitOutput(t, r.out, "alice #1: hello bob", 1)
	if m := <-bob.Messages(); string(m.Content) != "hello bob" {
		t.Fatalf("bob got %q", m.Content)
	}

	// A push prints as "[hh:mm:ss] bob #2: text", with its seq.
	send(t, bob, aliceID, "hi alice")
	waitOutput(t, r.out, "] bob #2: hi alice", 1)

	// Drop alice and send while she is away: she catches up exactly once.
	s.CloseUser("alice", protocol.CloseReason_SERVER_SHUTDOWN, 0)
	waitOutput(t, r.out, "reconnecting in", 1)
	send(t, bob, aliceID, "while away")
	waitOutput(t, r.out, "* logged in as alice", 2)
	waitOutput(t, r.out, "] bob #3: while away", 1)
	send(t, bob, aliceID, "after")
	waitOutput(t, r.out, "] bob #4: after", 1)

	r.say(t, "/quit")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	out := r.out.String()
	for _, line := range []string{"hello bob", "bob #2: hi alice", "bob #3: while away",
		"bob #4: after"} {
		if n := strings.Count(out, line); n != 1 {
			t.Fatalf("%q printed %d times; output:\n%s", line, n, out)
		}
	}
}

func TestRun_StartsOnTheNextGatewayWhenTheFirstIsDown(t *testing.T) {
	s := startServer(t)
	bob, _ := newUser(t, s, "bob")
	down := clienttest.ClosedAddr(t)

	r := startChat(t, "--addr", down+", "+s.Addr(), "--user", "alice", "--password", "pw-secret",
		"--register", "--to", "bob")
	waitOutput(t, r.out, "* logged in as alice (id 2) at "+s.Addr(), 1)
	waitOutput(t, r.out, "* chatting with bob", 1)
	send(t, bob, userID(t, bob, "alice"), "found you")
	waitOutput(t, r.out, "] bob #1: found you", 1)
	r.say(t, "/quit")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

func TestRun_MovesToTheNextGatewayWhenItGoesDown(t *testing.T) {
	first, second := startServer(t), startServer(t)
	newUser(t, first, "alice")
	newUser(t, second, "alice") // the fakes share no accounts
	bob, _ := newUser(t, second, "bob")

	r := startChat(t, "--addr", first.Addr()+","+second.Addr(), "--user", "alice",
		"--password", "pw-secret")
	waitOutput(t, r.out, "* logged in as alice (id 1) at "+first.Addr(), 1)

	// The first gateway's token means nothing to the second: the password
	// logs in there.
	first.Close()
	waitOutput(t, r.out, "reconnecting in", 1)
	waitOutput(t, r.out, "* logged in as alice (id 1) at "+second.Addr(), 1)
	send(t, bob, userID(t, bob, "alice"), "over here")
	waitOutput(t, r.out, "bob #1: over here", 1)
	r.say(t, "/quit")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

func TestRun_FallsBackToPasswordWhenTokenIsRefused(t *testing.T) {
	s := startServer(t)
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret", "--register")
	waitOutput(t, r.out, "* logged in as alice", 1)

	// The reconnect's tokens expired: the password logs in again.
	s.ExpireTokens()
	s.CloseUser("alice", protocol.CloseReason_SERVER_SHUTDOWN, 0)
	waitOutput(t, r.out, "reconnecting in", 1)
	waitOutput(t, r.out, "* logged in as alice", 2)
	r.say(t, "/quit")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

func TestRun_PrintsHistoryAndWaitsForPeer(t *testing.T) {
	s := startServer(t)
	_, bobID := newUser(t, s, "bob")
	carol, _ := newUser(t, s, "carol")
	send(t, carol, bobID, "old news")

	r := startChat(t, "--addr", s.Addr(), "--user", "bob", "--password", "pw-secret", "--to", "dave")
	waitOutput(t, r.out, "dave does not exist yet", 1)
	r.say(t, "anyone?")
	waitOutput(t, r.out, "message not sent", 1)

	r.say(t, "/to carol")
	waitOutput(t, r.out, "--- 1 unread message with carol ---", 1)
	waitOutput(t, r.out, "] carol #1: old news", 1)

	newUser(t, s, "dave")
	r.say(t, "/to dave")
	waitOutput(t, r.out, "* chatting with dave", 1)
	r.say(t, "/help")
	waitOutput(t, r.out, "/history [N] print", 1)
	r.say(t, "/nope")
	waitOutput(t, r.out, "unknown command /nope", 1)
	_ = r.in.Close() // end of input ends the session
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

func TestRun_FatalErrors(t *testing.T) {
	s := startServer(t)
	newUser(t, s, "bob")
	tests := []struct {
		name    string
		args    []string
		wantErr error
		wantOut string
	}{
		{
			name:    "missing password and no terminal to ask on",
			args:    []string{"--addr", s.Addr(), "--user", "bob"},
			wantErr: chat.ErrUsage,
			wantOut: "! no password: set $RESONANCE_PASSWORD",
		},
		{
			name: "wrong password hints at register",
			args: []string{"--addr", s.Addr(), "--user", "nobody", "--password",
				"x-password"},
			wantErr: chat.ErrBadCredentials,
			wantOut: "add --register",
		},
		{
			// Refused before a password is asked for (twice, on a
			// terminal), since no server would take it.
			name: "register a name no server takes",
			args: []string{"--addr", s.Addr(), "--user", "ålice", "--password", "x-password",
				"--register"},
			wantErr: chat.ErrUsage,
			wantOut: "! ålice cannot be a username: a username is 3 to 32 ASCII letters, " +
				"digits, '_', '.' or '-'",
		},
		{
			// The name exists (bob's), so the password was not its own.
			name: "register a taken name with another password",
			args: []string{"--addr", s.Addr(), "--user", "bob", "--password", "other-pw",
				"--register"},
			wantErr: chat.ErrBadCredentials,
			wantOut: "! the username bob is taken: log in with its password, or --register " +
				"another name",
		},
		{
			name:    "empty address list",
			args:    []string{"--addr", " , ", "--user", "bob", "--password", "x"},
			wantErr: chat.ErrUsage,
			wantOut: "usage: resonance chat",
		},
		{
			// The server's port moved, its host left out.
			name:    "a port alone",
			args:    []string{"--addr", "7001", "--user", "bob", "--password", "x"},
			wantErr: chat.ErrUsage,
			wantOut: "! --addr 7001: a port alone; want host:port, 127.0.0.1:7001",
		},
		{
			// A stray word would stop the flags: --to would be dropped.
			name:    "stray argument",
			args:    []string{"--addr", s.Addr(), "--user", "bob", "--password", "x", "hi", "--to", "al"},
			wantErr: chat.ErrUsage,
		},
		{
			// The metrics port, say, given for the gateway's.
			name: "a server of another protocol is named as the wrong address",
			args: []string{"--addr", clienttest.OtherProtocolAddr(t), "--user", "bob",
				"--password", "x"},
			wantErr: chat.ErrUnreachable,
			wantOut: "does not speak the Resonance protocol",
		},
		{
			name: "a server of another protocol, registering",
			args: []string{"--addr", clienttest.OtherProtocolAddr(t), "--user", "bob",
				"--password", "x", "--register"},
			wantErr: chat.ErrUnreachable,
			wantOut: "does not speak the Resonance protocol",
		},
		{
			// A client started before its server, the most common case.
			name:    "unreachable server is reported, not retried forever",
			args:    []string{"--addr", clienttest.ClosedAddr(t), "--user", "bob", "--password", "x"},
			wantErr: chat.ErrUnreachable,
			wantOut: "connection refused (nothing listens there: start the server first, " +
				"or give --addr its --addr)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("RESONANCE_PASSWORD", "")
			r := startChat(t, tt.args...)
			if err := r.wait(t); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Run = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(r.out.String(), tt.wantOut) {
				t.Fatalf("output lacks %q:\n%s", tt.wantOut, r.out.String())
			}
		})
	}
}

func TestRun_PasswordFromEnvAndKick(t *testing.T) {
	s := startServer(t)
	newUser(t, s, "bob")
	t.Setenv("RESONANCE_PASSWORD", "pw-secret")

	r := startChat(t, "--addr", s.Addr(), "--user", "bob")
	waitOutput(t, r.out, "* logged in as bob", 1)
	s.CloseUser("bob", protocol.CloseReason_KICKED, -time.Millisecond)

	var ce *client.CloseError
	if err := r.wait(t); !errors.As(err, &ce) || ce.Reason != protocol.CloseReason_KICKED {
		t.Fatalf("Run = %v, want the KICKED close", err)
	}
	// A second client of the same user and device is the likely cause:
	// the user is told how to run two side by side.
	devices := slices.DeleteFunc(s.Devices("bob"), func(d string) bool { return d == "sdk" })
	waitOutput(t, r.out, "! another connection signed in as bob with this device ("+
		"--device "+devices[0]+") and ended this one; to run two clients at once, give "+
		"each its own --device", 1)
}

func TestRun_QuitWhileOfflineEndsAfterGrace(t *testing.T) {
	s := startServer(t)
	newUser(t, s, "bob")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret",
		"--register", "--to", "bob")
	waitOutput(t, r.out, "* chatting with bob", 1)

	s.Close() // the server is gone for good
	waitOutput(t, r.out, "reconnecting in", 1)
	r.say(t, "into the void")
	r.say(t, strings.Repeat("0123456789", 5))
	r.say(t, "/quit")
	select {
	case err := <-r.errc:
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Run did not return; output:\n%s", r.out.String())
	}
	// The lines left are named, shortened, so that they can be typed again.
	waitOutput(t, r.out, "! 2 messages not sent before quitting:\n"+
		"!   \"into the void\"\n!   \"0123456789012345678901234567890123456789…\"\n", 1)
}

// A quit while offline in a long paste names the first lines left unsent
// and counts the rest.
func TestRun_QuitWhileOfflineNamesAFewLines(t *testing.T) {
	s := startServer(t)
	newUser(t, s, "bob")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret",
		"--register", "--to", "bob")
	waitOutput(t, r.out, "* chatting with bob", 1)
	s.Close()
	waitOutput(t, r.out, "reconnecting in", 1)
	for i := range 8 {
		r.say(t, fmt.Sprintf("line %d", i))
	}
	r.say(t, "/quit")
	select {
	case <-r.errc:
	case <-time.After(10 * time.Second):
		t.Fatalf("Run did not return; output:\n%s", r.out.String())
	}
	waitOutput(t, r.out, "! 8 messages not sent before quitting:\n!   \"line 0\"\n", 1)
	waitOutput(t, r.out, "!   \"line 4\"\n!   ... and 3 more\n", 1)
}

// A message of ours sent from another device to someone other than the
// peer on screen is labelled with that someone, as their own messages are,
// not with the conversation's raw id.
func TestRun_LabelsOwnMessageFromAnotherDeviceWithItsPeer(t *testing.T) {
	s := startServer(t)
	newUser(t, s, "bob")
	_, carolID := newUser(t, s, "carol")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret",
		"--register", "--to", "bob")
	waitOutput(t, r.out, "* chatting with bob", 1)

	phone, err := client.Dial(context.Background(), s.Addr(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = phone.Close() })
	if _, err := phone.Login(context.Background(), client.LoginParams{Username: "alice",
		Password: "pw-secret", DeviceID: "phone"}); err != nil {
		t.Fatal(err)
	}
	send(t, phone, carolID, "from my phone")
	waitOutput(t, r.out, "[with carol] ", 1)
	if strings.Contains(r.out.String(), "[p2p:") {
		t.Fatalf("a conversation labelled by its id:\n%s", r.out.String())
	}
}

// Input that ends right after its lines (a file piped in) still shows
// every line sent, as typed lines are: the echoes are printed before Run
// returns.
func TestRun_EndOfInputShowsTheLinesSent(t *testing.T) {
	s := startServer(t)
	newUser(t, s, "bob")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret",
		"--register", "--to", "bob")
	waitOutput(t, r.out, "* chatting with bob", 1)

	lines := []string{"one", "two", "three", "four", "five"}
	if _, err := io.WriteString(r.in, strings.Join(lines, "\n")+"\n"); err != nil {
		t.Fatal(err)
	}
	_ = r.in.Close()
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	out := r.out.String()
	for i, line := range lines {
		if want := fmt.Sprintf("alice #%d: %s\n", i+1, line); !strings.Contains(out, want) {
			t.Fatalf("output lacks %q; output:\n%s", want, out)
		}
	}
}

// A line far over any limit is refused with a notice, and the client goes
// on reading (it used to end silently, exit status 0).
func TestRun_SurvivesAnOverLongLine(t *testing.T) {
	s := startServer(t)
	_, _ = newUser(t, s, "bob")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret", "--register",
		"--to", "bob")
	waitOutput(t, r.out, "chatting with bob", 1)
	r.say(t, strings.Repeat("y", 300<<10))
	waitOutput(t, r.out, "a line of 307200 bytes is too long; not sent", 1)
	r.say(t, "still here")
	waitOutput(t, r.out, "still here", 1)
	r.say(t, "/quit")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

// A message over the server's content limit (16 KiB) or frame limit
// (64 KiB) is reported in one short line and the session goes on; the
// content limit itself is sent whole.
func TestRun_ReportsTooLargeMessagesAndGoesOn(t *testing.T) {
	s := startServer(t)
	bob, _ := newUser(t, s, "bob")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret", "--register",
		"--to", "bob")
	waitOutput(t, r.out, "chatting with bob", 1)

	r.say(t, strings.Repeat("x", 16384))
	waitOutput(t, r.out, "alice #1: xxxx", 1)
	if m := <-bob.Messages(); len(m.Content) != 16384 {
		t.Fatalf("bob got %d bytes, want 16384", len(m.Content))
	}
	r.say(t, strings.Repeat("y", 16385))
	waitOutput(t, r.out, `! not sent: "`+strings.Repeat("y", 40)+`…" (16385 bytes) is too large`, 1)
	r.say(t, strings.Repeat("z", 70<<10))
	waitOutput(t, r.out, `! not sent: "`+strings.Repeat("z", 40)+`…" (71680 bytes) is too large`, 1)
	r.say(t, "/group new "+strings.Repeat("g", 70<<10)+" bob")
	waitOutput(t, r.out, "! a request of 71", 1)
	r.say(t, "still here")
	waitOutput(t, r.out, "alice #2: still here", 1)
	r.say(t, "/quit")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	for _, line := range strings.Split(r.out.String(), "\n") {
		if len(line) > 200 && !strings.Contains(line, "alice #1: ") {
			t.Fatalf("a line of %d bytes: %.100s…", len(line), line)
		}
	}
}

// checkPrintable fails on any rune in out that could act on a terminal:
// controls other than the line ends the client writes, C1, bidi
// overrides and isolates, invalid UTF-8.
func checkPrintable(t *testing.T, out string) {
	t.Helper()
	for i, r := range out {
		bad := r < 0x20 && r != '\n' || r == 0x7f || r >= 0x80 && r <= 0x9f ||
			r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 ||
			r == utf8.RuneError && !strings.HasPrefix(out[i:], "\uFFFD")
		if bad {
			t.Fatalf("output has %U at byte %d:\n%q", r, i, out)
		}
	}
}

// A peer cannot reach the terminal through what the client prints: control
// characters, escapes and bidi overrides in a message or a user name are
// shown as visible stand-ins, and a message never prints as two lines.
func TestRun_PrintsNetworkTextInert(t *testing.T) {
	s := startServer(t)
	bob, _ := newUser(t, s, "bob")
	evil, _ := newUser(t, s, "ev\x1b[2Jil\r")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret", "--register",
		"--to", "bob")
	waitOutput(t, r.out, "chatting with bob", 1)
	aliceID := userID(t, bob, "alice")

	send(t, bob, aliceID, "a\x00b\x1b[31mred\x07\r\n[12:00:00] alice: forged\u202egnp.exe"+
		"\u2066x\u2069\u0085\u009b\x7f\tend\xff")
	waitOutput(t, r.out, "] bob #1: a␀b␛[31mred␇␍␊[12:00:00] alice: forged\uFFFDgnp.exe"+
		"\uFFFDx\uFFFD\uFFFD\uFFFD␡␉end\uFFFD", 1)
	send(t, evil, aliceID, "hi")
	waitOutput(t, r.out, "[with ev␛[2Jil␍] ", 1)
	r.say(t, "/quit")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	out := r.out.String()
	checkPrintable(t, out)
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "forged") && !strings.Contains(line, "] bob #1: a") {
			t.Fatalf("a message line of its own: %q", line)
		}
	}
}

// chatChildEnv, set to a server address, makes TestChatChild run one chat
// client that logs in as alice and quits: a process of its own, as every
// run of `resonance chat` is.
const chatChildEnv = "RESONANCE_TEST_CHAT_CHILD_ADDR"

func TestChatChild(t *testing.T) {
	addr := os.Getenv(chatChildEnv)
	if addr == "" {
		t.Skip("run by TestRun_DefaultDeviceIsTheSameEveryRun")
	}
	err := chat.Run(context.Background(), []string{"--addr", addr, "--user", "Alice",
		"--password", "pw-secret"}, strings.NewReader("/quit\n"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
}

// Without --device, every run of the client on one machine is the same
// device: it was one per process, leaving a device and its refresh token
// behind at each start.
func TestRun_DefaultDeviceIsTheSameEveryRun(t *testing.T) {
	s := startServer(t)
	newUser(t, s, "Alice") // the fake keeps names as given
	for range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestChatChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), chatChildEnv+"="+s.Addr())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("chat process: %v\n%s", err, out)
		}
	}
	devices := s.Devices("Alice")
	if len(devices) != 2 || !slices.Contains(devices, "sdk") {
		t.Fatalf("devices %q, want sdk and one chat device", devices)
	}
}

// A paste of more lines than the outbox holds (64) is sent whole, in
// order: reading stdin waits for room instead of dropping lines, and says
// so once.
func TestRun_PasteWaitsForRoomInsteadOfDropping(t *testing.T) {
	const lines = 300
	s := startServer(t)
	bob, _ := newUser(t, s, "bob")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret", "--register",
		"--to", "bob")
	waitOutput(t, r.out, "chatting with bob", 1)

	var paste strings.Builder
	for i := range lines {
		fmt.Fprintf(&paste, "p%d\n", i)
	}
	go func() { _, _ = io.WriteString(r.in, paste.String()) }()
	for i := range lines {
		select {
		case m := <-bob.Messages():
			if want := fmt.Sprintf("p%d", i); string(m.Content) != want {
				t.Fatalf("bob got %q, want %q", m.Content, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("bob got %d of %d lines; output:\n%s", i, lines, r.out.String())
		}
	}
	r.say(t, "/quit")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if out := r.out.String(); strings.Contains(out, "dropped") ||
		strings.Count(out, "messages wait to be sent") > 1 {
		t.Fatalf("lines dropped or the wait told more than once:\n%s", out)
	}
}

// TestRun_QuitInAPasteCountsTheHeldLine: Ctrl-C while offline in the middle
// of a paste reports every line read and not sent, the one held for room in
// the outbox included.
func TestRun_QuitInAPasteCountsTheHeldLine(t *testing.T) {
	s := startServer(t)
	newUser(t, s, "bob")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret", "--register",
		"--to", "bob")
	waitOutput(t, r.out, "chatting with bob", 1)
	s.Close() // offline: sends wait for a reconnect that never comes

	var paste strings.Builder
	for i := range 200 {
		fmt.Fprintf(&paste, "p%d\n", i)
	}
	go func() { _, _ = io.WriteString(r.in, paste.String()) }()
	waitOutput(t, r.out, "messages wait to be sent", 1)
	r.cancel()
	if err := r.wait(t); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	// One send in flight, the outbox full, one line held.
	if want := fmt.Sprintf("%d messages not sent", 1+64+1); !strings.Contains(r.out.String(), want) {
		t.Fatalf("output lacks %q:\n%s", want, r.out.String())
	}
}

// A flag the client does not know is printed once, with the usage, by the
// flag package: Run's error says so, and that it was a usage mistake, so
// that main does not print it a second time under the usage.
func TestRun_UnknownFlagIsReportedOnce(t *testing.T) {
	var out strings.Builder
	err := chat.Run(context.Background(), []string{"--usr", "bob"}, strings.NewReader(""), &out)
	if !errors.Is(err, chat.ErrUsage) || !errors.Is(err, chat.ErrReported) {
		t.Fatalf("Run = %v, want both %v and %v", err, chat.ErrUsage, chat.ErrReported)
	}
	if n := strings.Count(out.String(), "flag provided but not defined: -usr"); n != 1 {
		t.Fatalf("the unknown flag is named %d times, want once:\n%s", n, out.String())
	}
	if !strings.Contains(out.String(), "usage: resonance chat") {
		t.Fatalf("no usage printed:\n%s", out.String())
	}
}

// A server that takes the connection and never answers (a port of another
// service that waits for its own protocol) is named as the address that
// failed, once the login's request times out.
func TestRun_SilentServerIsNamedAsTheAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 16) // held open, unread, until the end
	t.Cleanup(func() {
		_ = ln.Close()
		for len(accepted) > 0 {
			_ = (<-accepted).Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case accepted <- c:
			default:
				_ = c.Close()
			}
		}
	}()
	addr := ln.Addr().String()
	r := startChat(t, "--addr", addr, "--user", "bob", "--password", "x")
	select {
	case err = <-r.errc:
	case <-time.After(30 * time.Second): // past the SDK's 10s request timeout
		t.Fatalf("Run did not return; output:\n%s", r.out.String())
	}
	if !errors.Is(err, chat.ErrUnreachable) {
		t.Fatalf("Run = %v, want %v", err, chat.ErrUnreachable)
	}
	if want := "cannot connect to " + addr + ": the server there took the connection " +
		"but did not answer in time"; !strings.Contains(r.out.String(), want) {
		t.Fatalf("output lacks %q:\n%s", want, r.out.String())
	}
}
