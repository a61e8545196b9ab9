//go:build linux

package chat_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/resonance-im/resonance/client/chat"
	"github.com/resonance-im/resonance/internal/syncbuf"
)

// pty is a pseudo-terminal: the client reads tty, the test types into
// master and reads back what the terminal echoed.
type pty struct {
	master, tty *os.File
	echo        *syncbuf.Buffer
}

func openPTY(t *testing.T) *pty {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Skipf("pty number: %v", err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open pty: %v", err)
	}
	p := &pty{master: master, tty: tty, echo: &syncbuf.Buffer{}}
	go func() {
		buf := make([]byte, 1024)
		for {
			n, err := master.Read(buf)
			_, _ = p.echo.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		_ = master.Close()
		_ = tty.Close()
	})
	return p
}

// typeLine types line and Enter on the terminal.
func (p *pty) typeLine(t *testing.T, line string) {
	t.Helper()
	if _, err := p.master.WriteString(line + "\n"); err != nil {
		t.Fatal(err)
	}
}

// startChatOn runs the client with the terminal p as its input.
func startChatOn(t *testing.T, p *pty, args ...string) *chatRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &chatRun{out: &syncbuf.Buffer{}, errc: make(chan error, 1), cancel: cancel}
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.errc <- chat.Run(ctx, args, p.tty, r.out)
	}()
	// Registered after openPTY's, so run before it: Run restores the
	// terminal as it returns, which must be before the pty is closed.
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after its context was cancelled")
		}
	})
	return r
}

// waitEcho waits until the terminal has echoed want.
func (p *pty) waitEcho(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.echo.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the terminal never echoed %q:\n%q", want, p.echo.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// noEcho fails the test when the terminal echoed secret. The driver echoes
// in the order typed: once after, a line typed after secret has been
// echoed (waitEcho), so would secret have been.
func (p *pty) noEcho(t *testing.T, secret string) {
	t.Helper()
	if strings.Contains(p.echo.String(), secret) {
		t.Fatalf("the terminal echoed the password %q:\n%q", secret, p.echo.String())
	}
}

// Without --password or $RESONANCE_PASSWORD, a terminal is asked for the
// password without echo; --register goes on with it.
func TestRun_AsksPasswordOnTerminalWithoutEcho(t *testing.T) {
	s := startServer(t)
	t.Setenv("RESONANCE_PASSWORD", "")
	p := openPTY(t)
	r := startChatOn(t, p, "--addr", s.Addr(), "--user", "dan", "--register")
	waitOutput(t, r.out, "password for dan (not shown): ", 1)
	p.typeLine(t, "dans-secret-pw")
	waitOutput(t, r.out, "again, to confirm (not shown): ", 1)
	p.typeLine(t, "dans-secret-pw")
	waitOutput(t, r.out, "* logged in as dan", 1)
	p.typeLine(t, "/help")
	p.waitEcho(t, "/help")
	p.noEcho(t, "dans-secret-pw")
	if out := r.out.String(); strings.Contains(out, "usage:") {
		t.Fatalf("usage printed instead of a prompt:\n%s", out)
	}
}

// --register asks for the password twice on a terminal: a typo would
// create an account nobody can log in to. A mismatch asks again, up to
// three times; without --register the password is asked once.
func TestRun_RegisterConfirmsPassword(t *testing.T) {
	s := startServer(t)
	t.Setenv("RESONANCE_PASSWORD", "")
	p := openPTY(t)
	r := startChatOn(t, p, "--addr", s.Addr(), "--user", "eve", "--register")
	waitOutput(t, r.out, "password for eve (not shown): ", 1)
	p.typeLine(t, "eves-secret-pw")
	waitOutput(t, r.out, "again, to confirm (not shown): ", 1)
	p.typeLine(t, "eves-secret-pq")
	waitOutput(t, r.out, "! the passwords differ; try 2 of 3", 1)
	waitOutput(t, r.out, "password for eve (not shown): ", 2)
	p.typeLine(t, "eves-secret-pw")
	waitOutput(t, r.out, "again, to confirm (not shown): ", 2)
	p.typeLine(t, "eves-secret-pw")
	waitOutput(t, r.out, "* logged in as eve", 1)
	p.typeLine(t, "/quit")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if out := r.out.String(); strings.Contains(out, "eves-secret") {
		t.Fatalf("the output holds the password:\n%s", out)
	}

	// Three mismatches end it before anything is registered.
	p2 := openPTY(t)
	r2 := startChatOn(t, p2, "--addr", s.Addr(), "--user", "fay", "--register")
	for i := 0; i < 3; i++ {
		waitOutput(t, r2.out, "password for fay (not shown): ", i+1)
		p2.typeLine(t, "fays-secret-pw")
		waitOutput(t, r2.out, "again, to confirm (not shown): ", i+1)
		p2.typeLine(t, "fays-other-pw")
	}
	if err := r2.wait(t); !errors.Is(err, chat.ErrUsage) {
		t.Fatalf("Run after three mismatches = %v, want ErrUsage", err)
	}
	if slices.Contains(s.Usernames(), "fay") {
		t.Fatal("fay was registered after three mismatched passwords")
	}

	// Logging in without --register asks once.
	p3 := openPTY(t)
	r3 := startChatOn(t, p3, "--addr", s.Addr(), "--user", "eve")
	waitOutput(t, r3.out, "password for eve (not shown): ", 1)
	p3.typeLine(t, "eves-secret-pw")
	waitOutput(t, r3.out, "* logged in as eve", 1)
	if strings.Contains(r3.out.String(), "again, to confirm") {
		t.Fatalf("a login without --register asked twice:\n%s", r3.out.String())
	}
}

// /delete-account reads the password without echo on a terminal; the
// lines around it echo as usual.
func TestRun_DeleteAccountPasswordIsNotEchoed(t *testing.T) {
	s := startServer(t)
	_, id := newUser(t, s, "dora")
	t.Setenv("RESONANCE_PASSWORD", "pw-secret")
	p := openPTY(t)
	r := startChatOn(t, p, "--addr", s.Addr(), "--user", "dora")
	waitOutput(t, r.out, "* logged in as dora", 1)

	p.typeLine(t, "/delete-account")
	waitOutput(t, r.out, "* type your password", 1)
	p.typeLine(t, "pw-secret")
	waitOutput(t, r.out, `* type "delete dora"`, 1)
	p.typeLine(t, "delete dora")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil after the deletion", err)
	}
	if !s.Deleted(id) {
		t.Fatalf("not deleted; output:\n%s", r.out.String())
	}
	p.waitEcho(t, "delete dora")
	p.noEcho(t, "pw-secret")
}

// /password reads the current and the new password without echo on a
// terminal.
func TestRun_ChangePasswordOnTerminalIsNotEchoed(t *testing.T) {
	s := startServer(t)
	newUser(t, s, "dora")
	t.Setenv("RESONANCE_PASSWORD", "pw-secret")
	p := openPTY(t)
	r := startChatOn(t, p, "--addr", s.Addr(), "--user", "dora")
	waitOutput(t, r.out, "* logged in as dora", 1)

	p.typeLine(t, "/password")
	waitOutput(t, r.out, "* type your current password (it is not shown)", 1)
	p.typeLine(t, "pw-secret")
	waitOutput(t, r.out, "* type the new password", 1)
	p.typeLine(t, "new-secret-1")
	waitOutput(t, r.out, "* type the new password again", 1)
	p.typeLine(t, "new-secret-1")
	waitOutput(t, r.out, "* password changed", 1)
	p.typeLine(t, "/help")
	p.waitEcho(t, "/help")
	p.noEcho(t, "secret")
}

// A password typed the moment its prompt shows is not echoed, however late
// the read of it begins: the echo is off before the prompt is printed.
func TestRun_PasswordTypedBeforeItsReadBeginsIsNotEchoed(t *testing.T) {
	s := startServer(t)
	newUser(t, s, "dora")
	t.Setenv("RESONANCE_PASSWORD", "pw-secret")
	typed := make(chan struct{})
	var hold sync.Once
	t.Cleanup(chat.SetSecretReadHook(func() { hold.Do(func() { <-typed }) }))
	p := openPTY(t)
	r := startChatOn(t, p, "--addr", s.Addr(), "--user", "dora")
	waitOutput(t, r.out, "* logged in as dora", 1)

	p.typeLine(t, "/password")
	waitOutput(t, r.out, "* type your current password (it is not shown)", 1)
	p.typeLine(t, "pw-secret")
	close(typed)
	waitOutput(t, r.out, "* type the new password", 1)
	p.typeLine(t, "/cancel")
	waitOutput(t, r.out, "* cancelled; password not changed", 1)
	p.typeLine(t, "/help")
	p.waitEcho(t, "/help")
	p.noEcho(t, "pw-secret")
}

// On a terminal, a Ctrl-L typed before /password reaches the client in the
// line; the command still runs and the password typed next is not echoed
// nor sent.
func TestRun_CtrlLBeforePasswordOnTerminal(t *testing.T) {
	s := startServer(t)
	newUser(t, s, "dora")
	t.Setenv("RESONANCE_PASSWORD", "pw-secret")
	p := openPTY(t)
	r := startChatOn(t, p, "--addr", s.Addr(), "--user", "dora")
	waitOutput(t, r.out, "* logged in as dora", 1)

	p.typeLine(t, "\x0c/password")
	waitOutput(t, r.out, "* type your current password (it is not shown)", 1)
	p.typeLine(t, "pw-secret")
	waitOutput(t, r.out, "* type the new password", 1)
	p.typeLine(t, "/cancel")
	waitOutput(t, r.out, "* cancelled; password not changed", 1)
	p.typeLine(t, "/help")
	p.waitEcho(t, "/help")
	p.noEcho(t, "pw-secret")
}

// A password mistyped at the terminal's prompt is asked again, up to three
// times, as a login prompt does, rather than ending the client: the user
// would start it again for a typo. One from the environment is not: no one
// typed it, and asking would not change it.
func TestRun_WrongPasswordOnTerminalIsAskedAgain(t *testing.T) {
	s := startServer(t)
	newUser(t, s, "dan") // password "pw-secret"
	t.Setenv("RESONANCE_PASSWORD", "")
	p := openPTY(t)
	r := startChatOn(t, p, "--addr", s.Addr(), "--user", "dan")
	waitOutput(t, r.out, "password for dan (not shown): ", 1)
	p.typeLine(t, "pw-sceret")
	waitOutput(t, r.out, "! invalid username or password", 1)
	waitOutput(t, r.out, "password for dan, try 2 of 3 (not shown): ", 1)
	p.typeLine(t, "pw-secret")
	waitOutput(t, r.out, "* logged in as dan", 1)
	p.typeLine(t, "/quit")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}

	r = startChatOn(t, p, "--addr", s.Addr(), "--user", "dan", "--device", "two")
	for i := 1; i <= 3; i++ {
		waitOutput(t, r.out, "password for dan", i)
		p.typeLine(t, "pw-sceret")
	}
	if err := r.wait(t); !errors.Is(err, chat.ErrBadCredentials) {
		t.Fatalf("Run = %v, want %v; output:\n%s", err, chat.ErrBadCredentials, r.out.String())
	}
	if n := strings.Count(r.out.String(), "password for dan"); n != 3 {
		t.Fatalf("asked %d times, want 3:\n%s", n, r.out.String())
	}

	t.Setenv("RESONANCE_PASSWORD", "pw-sceret")
	r = startChatOn(t, p, "--addr", s.Addr(), "--user", "dan", "--device", "three")
	if err := r.wait(t); !errors.Is(err, chat.ErrBadCredentials) {
		t.Fatalf("Run = %v, want %v; output:\n%s", err, chat.ErrBadCredentials, r.out.String())
	}
}

// A current password that is not the one this client logged in with (or
// set since) is refused as soon as it is typed, and asked again, rather
// than after the new password was typed twice.
func TestRun_WrongCurrentPasswordIsToldAtOnce(t *testing.T) {
	s := startServer(t)
	newUser(t, s, "dora")
	t.Setenv("RESONANCE_PASSWORD", "pw-secret")
	r := startChat(t, "--addr", s.Addr(), "--user", "dora")
	waitOutput(t, r.out, "* logged in as dora", 1)

	r.say(t, "/password")
	r.say(t, "pw-sceret")
	waitOutput(t, r.out, "! that is not your current password; type it again, try 2 of 3, "+
		"or /cancel", 1)
	r.say(t, "pw-secret")
	waitOutput(t, r.out, "* type the new password", 1)
	r.say(t, "new-secret-1")
	r.say(t, "new-secret-1")
	waitOutput(t, r.out, "* password changed", 1)

	// The old one is not current any more; the new one is.
	r.say(t, "/password")
	r.say(t, "pw-secret")
	waitOutput(t, r.out, "! that is not your current password", 2)
	r.say(t, "new-secret-1")
	waitOutput(t, r.out, "* type the new password", 2)
	r.say(t, "/cancel")
	waitOutput(t, r.out, "* cancelled; password not changed", 1)

	r.say(t, "/password")
	for range 3 {
		r.say(t, "wrong-pass-1")
	}
	waitOutput(t, r.out, "! not your current password 3 times; password not changed", 1)
}

// A password outside the server's length rule is refused at --register's
// prompt as soon as it is typed, and asked again, rather than after its
// confirmation by the server, which ended the client.
func TestRun_RegisterRefusesAShortPasswordAtThePrompt(t *testing.T) {
	s := startServer(t)
	t.Setenv("RESONANCE_PASSWORD", "")
	p := openPTY(t)
	r := startChatOn(t, p, "--addr", s.Addr(), "--user", "dan", "--register")
	waitOutput(t, r.out, "password for dan (not shown): ", 1)
	p.typeLine(t, "short")
	waitOutput(t, r.out, "! that password is 5 bytes; the server takes 8 to 128; try 2 of 3", 1)
	waitOutput(t, r.out, "password for dan (not shown): ", 2)
	p.typeLine(t, "dans-secret-pw")
	waitOutput(t, r.out, "again, to confirm (not shown): ", 1)
	p.typeLine(t, "dans-secret-pw")
	waitOutput(t, r.out, "* registered a new account", 1)
}
