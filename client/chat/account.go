package chat

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// handleAccountCommand runs /block, /unblock, /devices, /password and
// /delete-account (/sign-out, which may quit, runs in handleLine); false means cmd is none of them.
func (s *session) handleAccountCommand(ctx context.Context, cmd, arg string) bool {
	switch cmd {
	case "/block", "/unblock":
		s.report(s.block(ctx, arg, cmd == "/block"))
	case "/devices":
		s.report(s.printDevices(ctx))
	case "/delete-account":
		s.startDelete()
	case "/password":
		s.startChange()
	default:
		return false
	}
	return true
}

// block blocks or unblocks the user named arg.
func (s *session) block(ctx context.Context, arg string, blocked bool) error {
	ids, err := s.userIDs(ctx, strings.Fields(arg))
	switch {
	case err != nil:
		return err
	case len(ids) != 1:
		return fmt.Errorf("usage: /block <user> or /unblock <user>")
	case ids[0] == s.me:
		return fmt.Errorf("cannot block yourself")
	}
	err = s.request(ctx, func(ctx context.Context, c *client.Client) error {
		return c.Block(ctx, ids[0], blocked)
	})
	if err != nil {
		return err
	}
	name := s.names[ids[0]]
	if blocked {
		s.printf("* blocked %s: neither of you can message the other 1:1, and %s sees you "+
			"offline", name, name)
		return nil
	}
	// The server took us out of name's watched set at the block and does
	// not put us back: name hears our changes again only once their client
	// sends its set again (a /presence or a reconnect there).
	s.printf("* unblocked %s: %s sees you as you are again, and hears your changes after "+
		"their next /presence or reconnect", name, name)
	return nil
}

// printDevices lists the user's devices, this one marked.
func (s *session) printDevices(ctx context.Context) error {
	var devices []*protocol.Device
	err := s.request(ctx, func(ctx context.Context, c *client.Client) error {
		var err error
		devices, err = c.ListDevices(ctx)
		return err
	})
	if err != nil {
		return err
	}
	s.printf("--- %d device%s ---", len(devices), plural(len(devices)))
	for _, d := range devices {
		state := onlineWord(d.Online)
		if d.Current {
			state += ", this one"
		}
		last := time.UnixMilli(d.LastLoginMs).Format("2006-01-02 15:04")
		s.printf("  %s (%s, %s; last login %s)", deviceLabel(d.DeviceId), d.Platform, state,
			last)
	}
	return nil
}

// deviceLabel is a device id as /devices shows it, so that /sign-out takes
// it back as typed: bare when it is one word of printable characters, else
// in double quotes with Go's escapes, which show an invisible character
// and where an id's spaces begin and end.
func deviceLabel(id string) string {
	plain := id != "" && !strings.HasPrefix(id, `"`)
	for _, r := range id {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			plain = false
		}
	}
	if plain {
		return id
	}
	return strconv.Quote(id)
}

// deviceArg returns the device id /sign-out's argument names: the quoted
// form /devices shows, unquoted, or else the whole text as it is.
func deviceArg(text string) (string, bool) {
	if !strings.HasPrefix(text, `"`) {
		return text, text != ""
	}
	id, err := strconv.Unquote(text)
	return id, err == nil && id != ""
}

// deleteStep is the line a /delete-account waits for next.
type deleteStep int

const (
	deleteNone     deleteStep = iota
	deletePassword            // the account's password
	deleteConfirm             // the confirmation phrase
)

// confirmPhrase is what the user types to confirm a deletion.
func (s *session) confirmPhrase() string { return "delete " + s.names[s.me] }

// startDelete begins a /delete-account: the next line is the password.
func (s *session) startDelete() {
	s.deleting = deletePassword
	s.printf("* deleting account %s: you leave every group (one you own passes to an admin "+
		"or the earliest member), every device is signed out, and the name is free for "+
		"anyone; messages you sent stay with their readers", s.names[s.me])
	s.hideInput()
	s.printf("* type your password (%s), or /cancel", s.secretHint())
}

// continueDelete takes line as the step of a /delete-account it waits for.
// Anything but the exact phrase at the confirmation cancels.
func (s *session) continueDelete(ctx context.Context, line string) error {
	if isCancel(line) {
		s.cancelDelete("cancelled")
		return nil
	}
	if s.deleting == deletePassword {
		s.rememberSecret(line)
		s.takeDeletePassword(line)
		return nil
	}
	password := s.deletePassword
	if strings.TrimSpace(line) != s.confirmPhrase() {
		s.cancelDelete("not confirmed")
		return nil
	}
	s.deleting, s.deletePassword = deleteNone, ""
	return s.deleteAccount(ctx, password)
}

// takeDeletePassword takes line as the password of a /delete-account, or
// refuses it at once when it is none this client could log in with now
// (session.current), rather than after the confirmation; the prompt stays
// open, so that the next line typed is not sent as a message.
func (s *session) takeDeletePassword(line string) {
	if s.current[sha256.Sum256([]byte(line))] {
		s.deleting, s.deletePassword, s.deleteTry = deleteConfirm, line, 0
		s.printf("* type %q to delete the account for good; anything else cancels",
			s.confirmPhrase())
		return
	}
	s.deleteTry++
	if s.deleteTry >= changeTries {
		s.deleting, s.deletePassword, s.deleteTry = deleteNone, "", 0
		s.printf("! not your password %d times; account %s not deleted", changeTries,
			s.names[s.me])
		return
	}
	s.printf("! that is not your password; type it again, try %d of %d, or /cancel",
		s.deleteTry+1, changeTries)
}

func (s *session) cancelDelete(why string) {
	s.deleting, s.deletePassword, s.deleteTry = deleteNone, "", 0
	s.printf("* %s; account %s not deleted", why, s.names[s.me])
}

// deleteAccount deletes the account and quits, or says why not.
func (s *session) deleteAccount(ctx context.Context, password string) error {
	ctx, cancel := context.WithTimeout(ctx, requestDeadline)
	defer cancel()
	err := s.sess.DeleteAccount(ctx, password)
	var se *client.Error
	switch {
	case err == nil:
		s.printf("* account %s deleted; every device of it is signed out. Goodbye.",
			s.names[s.me])
		return errQuit
	case errors.Is(err, client.ErrOutcomeUnknown):
		s.printf("! the answer was lost: the account may be deleted or not; if it was, this " +
			"session ends and the password logs in no more")
	case errors.As(err, &se) && se.Code == common.ErrorCode_INVALID_CREDENTIALS:
		s.printf("! wrong password; account %s not deleted", s.names[s.me])
	default:
		s.printf("! account not deleted: %s", describe(err))
	}
	return nil
}
