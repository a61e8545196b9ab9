package chat

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

const helpText = `commands:
  /to <user>   chat with another user; also opens any conversation /convs
               lists, by its id or the name shown (user#9 for a deleted user),
               a group you left too, to read
  /history [N] print the N messages (20 if not given, at most 500) before the
               oldest shown; again to page further back
  /group new <name> <user> [<user>...]
               create a group with these users and chat in it; a name with
               spaces goes in quotes: /group new "Friday lunch" bob
  /group <name or id>
               chat in a group you are in (its name in any case, in quotes
               or not)
  /members     list the group's members and roles
  /add <user>  add a user to the group; /remove <user> removes one
  /transfer <user>
               make a member the group's owner; you become an admin
  /rename <name>, /leave, /dismiss
               rename, leave or end the group
  /reply #<seq> <text>
               reply to a message, quoting it (a seq is taken as #3 or 3)
  /read        mark the conversation read up to its newest message
  /recall #<seq>, /edit #<seq> <text>
               recall one of your messages (a file too), or edit one's text
  /react #<seq> <emoji>, /unreact #<seq> <emoji>
               react to a message with an emoji, or take the reaction back
  /pin #<seq>, /unpin #<seq>, /pins
               pin a message for everyone in the conversation (in a group:
               owner and admins), unpin it, or list the pinned messages
  /send-file <path>
               upload a file and send it to the conversation; a path may go
               in double quotes, and ~/ is your home directory
  /save #<seq> [<path>]
               download the file of a message under its name (made safe),
               here or in the directory given, or to the path given; never
               overwrites; a cut-short download resumes from its <path>.part
  /convs       list your conversations with unread counts
  /search <text>
               find messages with this text in all your conversations,
               newest first; /search alone or /more prints older matches
  /clear       clear this conversation's history for you, on all your devices
  /hide        clear it and remove it from /convs until a new message comes
  /mute, /mute off
               stop or resume offline notifications of this conversation on
               all your devices (a mention still notifies)
  /presence <user>
               print whether a user is online, and tell when that changes;
               a user who blocked you always reads offline
  /block <user>, /unblock <user>
               stop or allow 1:1 messages between you and a user; while
               blocked, they see you offline and hear no change of yours
  /devices     list your devices (each --device you logged in with)
  /sign-out <device>
               sign a device out, as /devices names it (an id with spaces
               in quotes, as shown, or as typed): its tokens log in no
               more and its connections close; this device's own logs out
  /password    change your password (asked without echo on a terminal; the
               new one again, up to 3 tries, when the two typed differ);
               every other device is signed out
  /delete-account
               delete your account for good, after your password (asked
               without echo on a terminal) and a typed confirmation; the
               messages you sent stay with their readers
  /quit        leave
  /help        this text
a line whose first visible character is / and a letter after it is a
command, never sent (an unknown one is refused), unless indented with a space
or tab or its first word holds another / (a path); any other line is sent to
the current conversation, without the control characters typed in it (a tab
stays), but for a password typed in this run; in a group, @name mentions a
member and @all everyone (owner and admins)`

// commandOf returns line as a command, without what comes before its '/',
// when the first visible character of line is '/' and a letter follows it:
// spaces and control or format characters before it are dropped. A Ctrl-L
// typed to clear the screen, or a zero-width space pasted, must not turn
// "/password" into a message, and the passwords typed next into messages
// too. A line indented with a space or a tab is text, though: indentation
// is seen and meant. So is a line that no command's name could start
// (mayBeCommand): pasted code's "// comment" or "/* */", or a path.
func commandOf(line string) (string, bool) {
	if strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") {
		return "", false
	}
	cmd := strings.TrimLeftFunc(line, invisible)
	if !mayBeCommand(cmd) {
		return "", false
	}
	return strings.TrimRightFunc(cmd, invisible), true
}

// mayBeCommand reports whether text starts as a command does, or as one
// mistyped would: a '/' and a letter, and no other '/' before the first
// space ("/usr/local/bin" is a path). Such a line is refused when no
// command has its name, rather than sent: a typo of "/password" must not
// go out, nor the password typed after it.
func mayBeCommand(text string) bool {
	name, ok := strings.CutPrefix(text, "/")
	if !ok {
		return false
	}
	first, _ := utf8.DecodeRuneInString(name)
	word, _, _ := strings.Cut(name, " ")
	return unicode.IsLetter(first) && !strings.Contains(word, "/")
}

// invisible reports whether r shows nothing of its own on a line: a space,
// a control character or a format character (U+200B, U+FEFF).
func invisible(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
}

// typedText returns text without the control characters a terminal lets
// through into a line (Ctrl-L to clear the screen, a stray Ctrl-G or Esc):
// C0 controls and DEL are dropped, a tab is kept. Typed, they are never
// meant as text; a peer would see them as ␌ or ␇. Text from a file piped
// in is a line too, and loses them as well.
func typedText(text string) string {
	control := func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }
	if !strings.ContainsFunc(text, control) {
		return text
	}
	return strings.Map(func(r rune) rune {
		if control(r) {
			return -1
		}
		return r
	}, text)
}

// handleLine runs a command or queues a line to send. It returns errQuit;
// failures are printed.
func (s *session) handleLine(ctx context.Context, line string) error {
	if n, ok := strings.CutPrefix(line, tooLongPrefix); ok {
		s.printf("! a line of %s bytes is too long; not sent", n)
		return nil
	}
	if n, ok := strings.CutPrefix(line, mayBeCutPrefix); ok {
		s.printf("! not sent: a line of %s bytes is the terminal's limit, so it may have been "+
			"cut; send longer text from a file (resonance chat ... < file)", n)
		return nil
	}
	if s.deleting != deleteNone {
		return s.continueDelete(ctx, line)
	}
	if s.changing != changeNone {
		return s.continueChange(ctx, line)
	}
	command, ok := commandOf(line)
	if !ok {
		s.sendText(ctx, line)
		return nil
	}
	cmd, arg, _ := strings.Cut(command, " ")
	arg = strings.TrimSpace(arg)
	s.command = cmd
	defer func() { s.command = "" }()
	switch {
	case cmd == "/quit":
		return errQuit
	case cmd == "/help":
		for _, l := range strings.Split(helpText, "\n") {
			s.printf("%s", l)
		}
		return nil
	case serverCommands[cmd] && s.offlineNow():
		// Every other command asks the server: each would wait for a
		// connection, then fail with the same words. A reply is a message,
		// which waits in the outbox.
		s.report(errOffline)
		return nil
	}
	return s.runCommand(ctx, cmd, arg)
}

// serverCommands are the commands that ask the server, all but /quit,
// /help and /reply (a message, which waits in the outbox while offline).
// An unknown command is not among them: offline, a typo is told as one.
var serverCommands = map[string]bool{
	"/add": true, "/block": true, "/clear": true, "/convs": true, "/delete-account": true,
	"/devices": true, "/dismiss": true, "/edit": true, "/group": true, "/hide": true,
	"/history": true, "/leave": true, "/members": true, "/more": true, "/mute": true,
	"/password": true, "/pin": true, "/pins": true, "/presence": true, "/react": true,
	"/read": true, "/recall": true, "/remove": true, "/rename": true, "/save": true,
	"/search": true, "/send-file": true, "/sign-out": true, "/to": true, "/transfer": true,
	"/unblock": true, "/unpin": true, "/unreact": true,
}

// runCommand runs a command other than /quit and /help. It returns errQuit;
// failures are printed.
func (s *session) runCommand(ctx context.Context, cmd, arg string) error {
	switch cmd {
	case "/history":
		s.report(s.pageBack(ctx, arg))
	case "/presence":
		s.report(s.watchPresence(ctx, arg))
	case "/reply":
		s.report(s.replyCommand(ctx, arg))
	case "/sign-out":
		return s.signOut(ctx, arg)
	case "/to":
		switch {
		case arg == "":
			s.printf("! usage: /to <user>")
		case s.isMe(arg):
			s.printf("! cannot message yourself")
		default:
			s.report(s.openTo(ctx, arg))
		}
	default:
		if !s.handleConvCommand(ctx, cmd, arg) && !s.handleAccountCommand(ctx, cmd, arg) &&
			!s.handleFileCommand(ctx, cmd, arg) {
			s.printf("! unknown command %s; /help lists them", cmd)
		}
	}
	return nil
}

// isMe reports whether name is the user's own, folded as the server folds
// names.
func (s *session) isMe(name string) bool {
	return strings.EqualFold(name, s.names[s.me])
}

// conv returns the conversation chatted in, "" when none yet.
func (s *session) conv() string {
	switch {
	case s.group != "":
		return s.group
	case s.peer.id != 0:
		return client.P2PConvID(s.me, s.peer.id)
	}
	return ""
}

// sendText queues a typed line for the current conversation; in a group,
// its @names become mentions (reply.go).
func (s *session) sendText(ctx context.Context, text string) {
	s.sendReply(ctx, text, 0)
}

// sendP2P queues p, a message without its recipient, to the peer.
func (s *session) sendP2P(p client.SendParams) {
	switch {
	case s.peer.name == "":
		s.printf("! no peer yet: /to <user>")
		return
	case s.peer.id == 0:
		s.printf("! %s does not exist yet; message not sent", s.peer.name)
		return
	}
	p.ToUserID, p.ClientMsgID = s.peer.id, client.NewClientMsgID()
	s.enqueue(p)
}

// burstGap is how long input must go without waiting for the outbox before
// a new wait is announced again: a paste drains the outbox in spurts, and
// one burst is announced once.
const burstGap = time.Second

// enqueue puts a line in the outbox or, when it is full, holds it: serve
// then stops reading stdin until the line fits (see serve), so a burst
// waits in the terminal instead of being dropped, and memory stays
// bounded. The first hold of a burst is announced once.
func (s *session) enqueue(p client.SendParams) {
	switch offline := s.offline.Load(); {
	case !offline:
		s.queueTold = false
	case !s.queueTold:
		s.queueTold = true
		s.printf("* offline: messages typed now wait and go once back online " +
			"(Ctrl-C names those not sent)")
	}
	select {
	case s.outbox <- p:
		if len(s.outbox) <= 1 && time.Since(s.heldAt) > burstGap {
			s.backlogNoted = false // the burst, if any, has gone out
		}
		return
	default:
	}
	s.held, s.holding, s.heldAt = p, true, time.Now()
	if !s.backlogNoted {
		s.backlogNoted = true
		s.printf("* %d messages wait to be sent; more input is read as they go "+
			"(Ctrl-C quits at once)", outboxSize)
	}
}

// resolvePeer looks the peer's name up and, once found, prints the history.
// A peer that does not exist yet is retried by serve every few seconds;
// announce says so the first time.
func (s *session) resolvePeer(ctx context.Context, announce bool) error {
	var u *protocol.GetUserResp
	err := s.request(ctx, func(ctx context.Context, c *client.Client) error {
		var err error
		u, err = c.GetUser(ctx, s.peer.name)
		return err
	})
	if client.CodeOf(err) == common.ErrorCode_NOT_FOUND {
		if id := s.knownID(s.peer.name, 0); id != 0 {
			return s.nameGone(ctx, s.peer.name, id)
		}
		if announce {
			if group, ok := s.groupNamed(ctx, s.peer.name); ok {
				s.peer = peer{}
				return s.groupCommand(ctx, group)
			}
			s.printf("! %s does not exist yet; retrying every %s (or /to %s)",
				s.peer.name, resolveEvery, s.peer.name)
		}
		return nil
	}
	var se *client.Error
	if errors.As(err, &se) && !se.IsRetryable() &&
		se.Code != common.ErrorCode_RATE_LIMITED {
		// A name the server refuses as such (malformed): no later lookup
		// can find it, so serve does not ask again.
		s.peer = peer{}
		return err
	}
	if err != nil {
		return err
	}
	if u.UserId == s.me {
		// A name the server folds to ours in a way isMe does not.
		s.peer = peer{}
		s.printf("! cannot message yourself")
		return nil
	}
	s.warnNewAccount(ctx, u.Username, u.UserId)
	s.peer = peer{name: u.Username, id: u.UserId}
	s.learnName(u.UserId, u.Username)
	s.printf("* chatting with %s", u.Username)
	return s.openHistory(ctx)
}

// printMessage prints a message of the stream unless the history printed
// it already.
func (s *session) printMessage(ctx context.Context, m *common.Message) {
	s.forgetMembers(m)
	s.forgetSenderOfLeave(m)
	if m.Seq <= s.shown[m.ConvId] {
		return
	}
	s.shown[m.ConvId] = m.Seq
	if m.ConvId != s.conv() {
		// Not the conversation on screen: say which one it is.
		s.printf("[%s] %s", s.convLabel(ctx, m.ConvId), s.format(ctx, m))
		return
	}
	s.printf("%s", s.format(ctx, m))
	s.view.printedLive(m)
	if m.SenderId != s.me {
		s.unread = m.ConvId // on screen, so read: see markShownRead
	}
	s.followGroupEvent(ctx, m)
}

// convLabel names a conversation for a line printed outside it: the peer
// of a 1:1 conversation, a group's name (asked once), else its id.
func (s *session) convLabel(ctx context.Context, convID string) string {
	if name, ok := s.convNames[convID]; ok {
		return name
	}
	if strings.HasPrefix(convID, "p2p:") {
		// Not kept in convNames: the peer's name is nameOf's to keep
		// current (an account deleted meanwhile).
		if peer, ok := p2pPeer(convID, s.me); ok {
			return "with " + s.nameOf(ctx, peer)
		}
		return convID
	}
	label := convID
	_ = s.request(ctx, func(ctx context.Context, c *client.Client) error {
		info, err := c.GetGroup(ctx, convID)
		if err == nil {
			label = info.Name
		}
		return err
	})
	if label != convID {
		s.convNames[convID] = label
	}
	return label
}

// p2pPeer returns the user other than me in a 1:1 conversation's id,
// "p2p:<lower user id>:<higher user id>"; ok is false when convID is not
// one of me's.
func p2pPeer(convID string, me int64) (peer int64, ok bool) {
	a, b, found := strings.Cut(strings.TrimPrefix(convID, "p2p:"), ":")
	low, errLow := strconv.ParseInt(a, 10, 64)
	high, errHigh := strconv.ParseInt(b, 10, 64)
	switch {
	case !found || errLow != nil || errHigh != nil:
		return 0, false
	case low == me:
		return high, true
	case high == me:
		return low, true
	}
	return 0, false
}

// format renders a message as "[15:04:05] bob #2: text" and an event as
// "* #3 bob left": the #seq of every line, since /recall and /edit take one
// and the events of recalls and edits name the one they change.
func (s *session) format(ctx context.Context, m *common.Message) string {
	if ev := s.formatEvent(ctx, m); ev != "" {
		s.forgetQuoted(m)
		return fmt.Sprintf("* #%d %s", m.Seq, ev)
	}
	return s.decorate(m, s.nameOf(ctx, m.SenderId))
}

// nameMaxAge bounds how long a cached name is shown without asking the
// server again: an account deleted meanwhile (and its name perhaps taken by
// a new user) is told by its GET_USER, and nothing else reaches a client
// that shares no group with it.
const nameMaxAge = 5 * time.Minute

// nameOf returns a user's name, asking the server once per unknown id and
// again once the name is older than nameMaxAge; when that fails, the old
// name stands.
func (s *session) nameOf(ctx context.Context, id int64) string {
	name, ok := s.names[id]
	if ok && (id == s.me || time.Since(s.namedAt[id]) < nameMaxAge) {
		return name
	}
	u, err := s.userByID(ctx, id)
	switch {
	case err != nil:
	case u.Deleted:
		// A deleted account has no username left; its id names it.
		s.learnName(id, deletedName(id))
	default:
		s.noteNewAccount(ctx, u.Username, id)
		s.learnName(id, u.Username)
	}
	switch {
	case err == nil:
		return s.names[id]
	case ok:
		return name
	}
	return fmt.Sprintf("user#%d", id)
}

// learnName caches the name of user id. A username belongs to one live
// account at a time, so another id cached under the same name is an
// account deleted since, whose name was taken again: it is dropped, to be
// asked again (as deleted) rather than shown as the new owner's.
func (s *session) learnName(id int64, name string) {
	for other, known := range s.names {
		if other != id && strings.EqualFold(known, name) {
			delete(s.names, other)
			delete(s.namedAt, other)
		}
	}
	s.names[id], s.namedAt[id] = name, time.Now()
	s.rememberID(id, name)
}

// forgetSenderOfLeave drops the cached name of the sender of a group's
// LEAVE, which a deleted account's departure from its groups is: its lines
// ask GET_USER again, which says whether it still exists.
func (s *session) forgetSenderOfLeave(m *common.Message) {
	if m.ContentType != common.ContentType_GROUP_EVENT || m.SenderId == s.me {
		return
	}
	if ev, err := client.GroupEventOf(m); err == nil && ev.Action == common.GroupAction_LEAVE {
		delete(s.names, m.SenderId)
		delete(s.namedAt, m.SenderId)
	}
}
