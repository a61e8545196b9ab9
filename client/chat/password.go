package chat

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/kitex_gen/common"
)

// changeStep is the line a /password waits for next.
type changeStep int

const (
	changeNone  changeStep = iota
	changeOld              // the current password
	changeNew              // the new one
	changeAgain            // the new one again
)

// changeTries is how many times /password asks for the new password when
// the two typed differ. Ending at the first mismatch turned the echo back
// on at once, and a user retyping the password sent it as a message.
const changeTries = 3

// newPrompt asks for the new password.
const newPrompt = "type the new password (8 to 128 bytes)"

// startChange begins a /password: the next three lines are the current
// password and the new one twice, read without echo on a terminal.
func (s *session) startChange() {
	s.changing, s.changeAnswers, s.changeTry = changeOld, nil, 1
	s.printf("* changing the password of %s: every other device is signed out and logs in "+
		"with the new one", s.names[s.me])
	s.hideInput()
	s.printf("* type your current password (%s), or /cancel", s.secretHint())
}

// continueChange takes line as the step of a /password it waits for.
func (s *session) continueChange(ctx context.Context, line string) error {
	if isCancel(line) {
		s.endChange("* cancelled; password not changed")
		return nil
	}
	s.rememberSecret(line)
	if s.changing == changeOld {
		s.takeOld(line)
		return nil
	}
	s.changeAnswers = append(s.changeAnswers, line)
	switch s.changing {
	case changeNew:
		return s.takeNew(line)
	}
	old, new, again := s.changeAnswers[0], s.changeAnswers[1], s.changeAnswers[2]
	switch {
	case new != again && s.changeTry < changeTries:
		s.changeTry++
		s.changing, s.changeAnswers = changeNew, s.changeAnswers[:1]
		s.printf("! the new passwords differ; %s again, try %d of %d, or /cancel", newPrompt,
			s.changeTry, changeTries)
		return nil
	case new != again:
		s.endChange(fmt.Sprintf("! the new passwords differ %d times; password not changed",
			changeTries))
		return nil
	}
	s.endChange("")
	s.changePassword(ctx, old, new)
	return nil
}

// takeOld takes line as the current password of a /password, or refuses
// it at once when it is none this client could log in with now: the server
// would refuse it only after the new one was typed twice. A refusal counts
// as a try, as takeNew's do.
func (s *session) takeOld(line string) {
	if s.current[sha256.Sum256([]byte(line))] {
		s.changeAnswers, s.changeTry = []string{line}, 1
		s.changing = changeNew
		s.printf("* %s", newPrompt)
		return
	}
	if s.changeTry >= changeTries {
		s.endChange(fmt.Sprintf("! not your current password %d times; password not changed",
			changeTries))
		return
	}
	s.changeTry++
	s.printf("! that is not your current password; type it again, try %d of %d, or /cancel",
		s.changeTry, changeTries)
}

// takeNew takes line as the new password of a /password, or refuses it at
// once when it is outside the server's length rule, which would otherwise
// refuse it only after it was typed twice; a refusal counts as a try.
func (s *session) takeNew(line string) error {
	fault := passwordLengthFault(line)
	if fault == "" {
		s.changing = changeAgain
		s.printf("* type the new password again")
		return nil
	}
	s.changeAnswers = s.changeAnswers[:1]
	why := "! " + fault
	if s.changeTry >= changeTries {
		s.endChange(why + "; password not changed")
		return nil
	}
	s.changeTry++
	s.printf("%s: type the new password again, try %d of %d, or /cancel", why, s.changeTry,
		changeTries)
	return nil
}

// endChange ends a /password, forgetting what was typed, and prints why
// unless why is "".
func (s *session) endChange(why string) {
	s.changing, s.changeAnswers = changeNone, nil
	if why != "" {
		s.printf("%s", why)
	}
}

// isCancel reports whether line is /cancel, typed at a prompt of
// /password or /delete-account.
func isCancel(line string) bool {
	cmd, ok := commandOf(line)
	return ok && cmd == "/cancel"
}

// minPasswordLen and maxPasswordLen bound the passwords the server takes,
// in bytes.
const (
	minPasswordLen = 8
	maxPasswordLen = 128
)

// rememberSecret keeps the hash of a line typed as a password in this run
// (at the login or a prompt), so that the same line typed where a message
// goes is refused (isSecret): a user who thinks a prompt is still open
// types it there in clear. A line shorter than any password is not kept,
// so that no short everyday message is refused.
func (s *session) rememberSecret(line string) {
	if len(line) >= minPasswordLen {
		s.secrets[sha256.Sum256([]byte(line))] = true
	}
}

// isSecret reports whether line is a password typed in this run.
func (s *session) isSecret(line string) bool {
	return len(line) >= minPasswordLen && s.secrets[sha256.Sum256([]byte(line))]
}

// changePassword changes the password through the client session, which
// keeps the new one for its reconnects, and says what came of it.
func (s *session) changePassword(ctx context.Context, old, new string) {
	ctx, cancel := context.WithTimeout(ctx, requestDeadline)
	defer cancel()
	_, err := s.sess.ChangePassword(ctx, old, new)
	sum := sha256.Sum256([]byte(new))
	switch {
	case err == nil:
		s.current = map[[32]byte]bool{sum: true}
		s.printf("* password changed; your other devices are signed out and log in with " +
			"the new one")
	case errors.Is(err, client.ErrOutcomeUnknown):
		s.current[sum] = true // either may be current now
		s.printf("! the answer was lost: the password may have changed or not; this " +
			"session tries the new one, then the old, at its next login")
	case client.CodeOf(err) == common.ErrorCode_INVALID_CREDENTIALS:
		s.printf("! wrong current password; password not changed")
	default:
		s.printf("! password not changed: %s", describe(err))
	}
}

// signOut runs "/sign-out <device>": it revokes the tokens of one of the
// user's devices, as /devices names them, and closes its connections. This
// device's own is a logout, which ends the session.
func (s *session) signOut(ctx context.Context, arg string) error {
	device, ok := deviceArg(arg)
	switch {
	case !ok:
		s.printf("! usage: /sign-out <device>, a device as /devices lists it")
		return nil
	case device == s.cfg.device:
		ctx, cancel := context.WithTimeout(ctx, requestDeadline)
		defer cancel()
		if err := s.sess.Logout(ctx); err != nil {
			s.printf("! not signed out: %s", describe(err))
			return nil
		}
		s.printf("* signed out this device (%s); its login no longer works", device)
		return errQuit
	}
	err := s.request(ctx, func(ctx context.Context, c *client.Client) error {
		return c.SignOutDevice(ctx, device)
	})
	switch {
	case client.CodeOf(err) == common.ErrorCode_NOT_FOUND:
		s.printf("! no device %q of yours; /devices lists them", device)
	case err != nil:
		s.printf("! %s not signed out: %s", device, describe(err))
	default:
		// A client there that keeps the password (this one does while it
		// runs) logs in again with it; only a new password stops that.
		s.printf("* signed out %s: its tokens no longer log in and its connections are "+
			"closed; if it may know your password, /password changes it and signs out "+
			"every other device", device)
	}
	return nil
}
