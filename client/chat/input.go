package chat

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// readMode says how the next line of input is read.
type readMode int

const (
	// readPlain reads a line as typed, echoed by the terminal.
	readPlain readMode = iota
	// readSecret reads a password: with the terminal's echo off when the
	// input is one, else as a plain line (a pipe or a file shows nothing).
	readSecret
)

// terminalOf returns in as a file when it is a terminal, else nil.
func terminalOf(in io.Reader) *os.File {
	f, ok := in.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return f
}

// readSecretLine reads one line of in without echo when in is a terminal
// and br holds nothing typed ahead (a terminal passes one line per read,
// so it holds nothing unless the user typed before the prompt, and then
// the text was echoed already). Otherwise it reads a plain line of br.
func readSecretLine(br *bufio.Reader, in io.Reader, limit int) (string, error) {
	tty := terminalOf(in)
	if tty == nil || br.Buffered() > 0 {
		line, _, err := readLine(br, limit)
		return strings.TrimSuffix(line, "\r"), err
	}
	if secretReadHook != nil {
		secretReadHook()
	}
	b, err := term.ReadPassword(int(tty.Fd()))
	return string(b), err
}

// secretReadHook, when set by a test, runs as readSecretLine is about to
// read a password from the terminal: it holds the read back, as a loaded
// machine may, to show what the terminal does with keys typed meanwhile.
var secretReadHook func()

// hideInput turns the terminal's echo off before a password prompt is
// printed, until askNext reads plain lines again: what the user types the
// moment the prompt shows is not echoed. Without a terminal, or where
// echoOff cannot, the read of the password turns it off (readSecretLine).
func (s *session) hideInput() {
	if s.ttyFd < 0 || s.echoBack != nil {
		return
	}
	if back, err := echoOff(s.ttyFd); err == nil {
		s.echoBack = back
	}
}

// secretHint says how a password typed next is read: without echo on a
// terminal; from a pipe or a file, as the next line.
func (s *session) secretHint() string {
	if s.tty {
		return "it is not shown"
	}
	return "the input is not a terminal, so the next line is read as the password"
}

// askPassword asks for the password on the terminal tty, without echo,
// when none was given. It returns with ctx done too, leaving the read
// behind: Run restores the terminal's echo as it returns.
func askPassword(ctx context.Context, cfg *config, tty *os.File, out io.Writer) error {
	if cfg.password != "" {
		return nil
	}
	if tty == nil {
		fmt.Fprintf(out, "! no password: set $%s (the input is not a terminal to ask "+
			"for it on)\n", passwordEnv)
		return fmt.Errorf("%w: %w: no password and no terminal to ask on", ErrReported,
			ErrUsage)
	}
	prompt := fmt.Sprintf("password for %s (not shown): ", cfg.user)
	pw, err := readHidden(ctx, tty, out, prompt)
	if err != nil || !cfg.register {
		cfg.password = pw
		return err
	}
	// --register may create the account with it, and a typo would lock
	// the user out of an account no one can recover: ask again, as
	// /password does. One the server would refuse for its length is
	// refused before its confirmation is typed.
	for try := 1; ; try++ {
		why := passwordLengthFault(pw)
		if why == "" {
			again, err := readHidden(ctx, tty, out, "again, to confirm (not shown): ")
			if err != nil {
				return err
			}
			if again == pw {
				cfg.password = pw
				return nil
			}
			why = "the passwords differ"
		}
		if try == registerTries {
			fmt.Fprintf(out, "! %s\n", why)
			return fmt.Errorf("%w: %w: %s", ErrReported, ErrUsage, why)
		}
		fmt.Fprintf(out, "! %s; try %d of %d\n", why, try+1, registerTries)
		if pw, err = readHidden(ctx, tty, out, prompt); err != nil {
			return err
		}
	}
}

// passwordLengthFault says why the server would refuse password for its
// length, "" when it would take it.
func passwordLengthFault(password string) string {
	if n := len(password); n < minPasswordLen || n > maxPasswordLen {
		return fmt.Sprintf("that password is %d bytes; the server takes %d to %d", n,
			minPasswordLen, maxPasswordLen)
	}
	return ""
}

// registerTries is how many times --register asks for a password and its
// confirmation before it gives up; loginTries how many passwords typed at
// the terminal a refused login takes.
const (
	registerTries = 3
	loginTries    = 3
)

// login opens the session. A password typed at the terminal's prompt
// (asked) that the server refuses is asked again, up to loginTries in all,
// as a login prompt does: a typo would otherwise end the client. One from
// the environment or --password is not; nobody is there to retype it.
func (s *session) login(ctx context.Context, tty *os.File, asked bool) error {
	for try := 2; ; try++ {
		err := s.open(ctx)
		if !asked || tty == nil || !errors.Is(err, ErrBadCredentials) || try > loginTries {
			return err
		}
		pw, err := readHidden(ctx, tty, s.out, fmt.Sprintf(
			"password for %s, try %d of %d (not shown): ", s.cfg.user, try, loginTries))
		if err != nil {
			return err
		}
		s.cfg.password = pw
		s.rememberSecret(pw)
	}
}

// readHidden prints prompt and reads a line from tty without echo. An empty
// line, or ctx done first, fails with the reason printed.
func readHidden(ctx context.Context, tty *os.File, out io.Writer, prompt string) (string, error) {
	if back, err := echoOff(int(tty.Fd())); err == nil {
		defer back() // off before the prompt shows (hideInput)
	}
	fmt.Fprint(out, prompt)
	type answer struct {
		pw  []byte
		err error
	}
	done := make(chan answer, 1)
	go func() {
		pw, err := term.ReadPassword(int(tty.Fd()))
		done <- answer{pw, err}
	}()
	select {
	case <-ctx.Done():
		fmt.Fprintln(out)
		return "", fmt.Errorf("%w: %w", ErrReported, ctx.Err())
	case a := <-done:
		fmt.Fprintln(out) // the Enter typed was not echoed either
		if a.err != nil || len(a.pw) == 0 {
			fmt.Fprintln(out, "! no password typed")
			return "", fmt.Errorf("%w: %w: no password typed", ErrReported, ErrUsage)
		}
		return string(a.pw), nil
	}
}

// keepTerminal saves the terminal state of tty and returns the function
// that restores it: a password prompt interrupted by Ctrl-C or by the end
// of the session must not leave the echo off. nil tty does nothing.
func keepTerminal(tty *os.File) func() {
	if tty == nil {
		return func() {}
	}
	st, err := term.GetState(int(tty.Fd()))
	if err != nil {
		return func() {}
	}
	return func() { _ = term.Restore(int(tty.Fd()), st) }
}

// passwordFlagWarning is printed when --password is given on the command
// line.
const passwordFlagWarning = "! --password on the command line is visible to other users of " +
	"this machine (ps) and stays in your shell history; leave it out to be asked, or set $" +
	passwordEnv
