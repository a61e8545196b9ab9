package chat

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// handleConvCommand runs the group, read, recall, edit, reaction and pin commands; false
// means cmd is none of them.
func (s *session) handleConvCommand(ctx context.Context, cmd, arg string) bool {
	switch cmd {
	case "/group":
		s.report(s.groupCommand(ctx, arg))
	case "/members":
		s.report(s.printMembers(ctx))
	case "/add", "/remove":
		action := common.GroupAction_ADD
		if cmd == "/remove" {
			action = common.GroupAction_REMOVE
		}
		s.report(s.manageUsers(ctx, action, strings.Fields(arg)))
	case "/transfer":
		s.report(s.transfer(ctx, strings.Fields(arg)))
	case "/rename":
		s.report(s.manage(ctx, &protocol.ManageGroupReq{Action: common.GroupAction_RENAME, Name: arg}))
	case "/leave":
		s.report(s.leave(ctx))
	case "/dismiss":
		s.report(s.manage(ctx, &protocol.ManageGroupReq{Action: common.GroupAction_DISMISS}))
	case "/read":
		s.report(s.markRead(ctx))
	case "/recall", "/edit":
		s.report(s.changeMessage(ctx, cmd, arg))
	case "/react", "/unreact":
		s.report(s.react(ctx, arg, cmd == "/unreact"))
	case "/pin", "/unpin":
		s.report(s.pin(ctx, arg, cmd == "/unpin"))
	case "/pins":
		s.report(s.printPins(ctx))
	case "/convs":
		s.report(s.printConvs(ctx))
	case "/clear", "/hide":
		s.report(s.clearConv(ctx, cmd == "/hide"))
	case "/mute":
		s.report(s.mute(ctx, arg))
	case "/search", "/more":
		s.report(s.searchCommand(ctx, cmd, arg))
	default:
		return false
	}
	return true
}

// groupCommand creates a group (`new <name> <users...>`, a name with
// spaces in double quotes) or switches to one.
func (s *session) groupCommand(ctx context.Context, arg string) error {
	rest, creating := strings.CutPrefix(arg, "new ")
	if !creating && arg != "new" {
		if arg == "" {
			return errors.New(groupUsage)
		}
		name, users, ok := cutGroupName(arg)
		if !ok || len(users) > 0 && strings.HasPrefix(arg, `"`) {
			return errors.New(groupUsage)
		}
		if !strings.HasPrefix(arg, `"`) {
			name = strings.Join(strings.Fields(arg), " ")
		}
		g, err := s.findGroup(ctx, name)
		if err != nil {
			return err
		}
		s.group, s.groupName = g.ConvId, g.Name
		s.printf("* chatting in group %s (%s)", g.Name, g.ConvId)
		return s.openHistory(ctx)
	}
	name, users, ok := cutGroupName(rest)
	if !ok || len(users) == 0 {
		return errors.New(groupUsage)
	}
	ids, err := s.userIDs(ctx, users)
	if err != nil {
		if !strings.HasPrefix(strings.TrimSpace(rest), `"`) && len(users) > 1 {
			err = fmt.Errorf("%w (a group name with spaces goes in quotes: "+
				`/group new "%s %s" ...)`, err, name, users[0])
		}
		return err
	}
	// Bounded like the other commands: this runs on Run's goroutine,
	// which must not wait for a connection for ever.
	ctx, cancel := context.WithTimeout(ctx, requestDeadline)
	defer cancel()
	ack, err := s.sess.CreateGroup(ctx, name, ids)
	if err != nil {
		return err
	}
	s.group, s.groupName = ack.ConvId, name
	s.view = historyView{conv: ack.ConvId} // all of it is printed from here on
	s.printf("* created group %s (%s); you are chatting in it", name, ack.ConvId)
	return nil
}

const groupUsage = `usage: /group new <name> <user> [<user>...] (a name with spaces in ` +
	`quotes: /group new "Friday lunch" bob) or /group <name or id>`

// cutGroupName splits the arguments of /group new into the group's name,
// the first word or a double-quoted text, and the user names after it.
func cutGroupName(args string) (name string, users []string, ok bool) {
	args = strings.TrimSpace(args)
	quoted, found := strings.CutPrefix(args, `"`)
	if !found {
		fields := strings.Fields(args)
		if len(fields) == 0 {
			return "", nil, false
		}
		return fields[0], fields[1:], true
	}
	name, rest, closed := strings.Cut(quoted, `"`)
	name = strings.TrimSpace(name)
	if !closed || name == "" {
		return "", nil, false
	}
	return name, strings.Fields(rest), true
}

// findGroup returns the user's group named or identified by arg: its id,
// its name as spelt, or else its name in any case.
func (s *session) findGroup(ctx context.Context, arg string) (*protocol.ConvSummary, error) {
	convs, err := s.allConvs(ctx)
	if err != nil {
		return nil, err
	}
	var found, folded []*protocol.ConvSummary
	for _, c := range convs {
		if c.Type != common.ConvType_GROUP || c.Left {
			continue
		}
		switch {
		case c.ConvId == arg || c.Name == arg:
			found = append(found, c)
		case strings.EqualFold(c.Name, arg):
			folded = append(folded, c)
		}
	}
	if len(found) == 0 {
		found = folded // "friday lunch" finds "Friday lunch" unless spelt alike
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("no group of yours is named %q; /convs lists them", arg)
	case 1:
		return found[0], nil
	}
	ids := make([]string, len(found))
	for i, c := range found {
		ids[i] = c.ConvId
	}
	return nil, fmt.Errorf("%d groups are named %q; use an id: %s", len(found), arg,
		strings.Join(ids, ", "))
}

// userIDs resolves names, all of them: an error names every unknown one.
func (s *session) userIDs(ctx context.Context, names []string) ([]int64, error) {
	ids := make([]int64, 0, len(names))
	var unknown []string
	for _, name := range names {
		u, err := s.lookUp(ctx, name)
		switch {
		case client.CodeOf(err) == common.ErrorCode_NOT_FOUND:
			unknown = append(unknown, name)
		case err != nil:
			return nil, fmt.Errorf("user %s: %w", name, err)
		default:
			ids = append(ids, u.UserId)
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("no such user: %s", strings.Join(unknown, ", "))
	}
	return ids, nil
}

// lookUp resolves one user name and remembers the server's spelling.
func (s *session) lookUp(ctx context.Context, name string) (*protocol.GetUserResp, error) {
	var u *protocol.GetUserResp
	err := s.request(ctx, func(ctx context.Context, c *client.Client) error {
		var err error
		u, err = c.GetUser(ctx, name)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.learnName(u.UserId, u.Username)
	return u, nil
}

func (s *session) manageUsers(ctx context.Context, action common.GroupAction, names []string) error {
	switch {
	case len(names) == 0:
		return fmt.Errorf("usage: /add <user> or /remove <user>")
	case s.group == "":
		return errNoGroup
	}
	ids, err := s.userIDs(ctx, names)
	if err != nil {
		return err
	}
	return s.manage(ctx, &protocol.ManageGroupReq{Action: action, UserIds: ids})
}

// transfer hands the current group over to one of its members, who becomes
// its owner; the server makes the old owner an admin.
func (s *session) transfer(ctx context.Context, names []string) error {
	switch {
	case len(names) != 1:
		return fmt.Errorf("usage: /transfer <user>")
	case s.group == "":
		return errNoGroup
	case s.isMe(names[0]):
		return fmt.Errorf("cannot hand the group to yourself")
	}
	ids, err := s.userIDs(ctx, names)
	if err != nil {
		return err
	}
	return s.manage(ctx, &protocol.ManageGroupReq{Action: common.GroupAction_SET_ROLE,
		UserIds: ids, Role: common.GroupRole_OWNER})
}

// leave leaves the current group, and with it the group's view. The server
// refuses its owner in its own terms; the owner is told which commands
// would do instead.
func (s *session) leave(ctx context.Context) error {
	err := s.manage(ctx, &protocol.ManageGroupReq{Action: common.GroupAction_LEAVE})
	if err == nil {
		s.leftGroup(fmt.Sprintf("you left group %s", s.groupName))
		return nil
	}
	if client.CodeOf(err) != common.ErrorCode_FORBIDDEN {
		return err
	}
	var info *protocol.GroupInfo
	if s.request(ctx, func(ctx context.Context, c *client.Client) error {
		var gerr error
		info, gerr = c.GetGroup(ctx, s.group)
		return gerr
	}) != nil || info.OwnerId != s.me {
		return err
	}
	return errors.New("the owner cannot leave: /transfer <user> hands the group over " +
		"(then /leave), or /dismiss ends it")
}

// leftGroup puts the client in no conversation once its group is no
// longer one to chat in, saying why: lines typed next would go to the
// group, which refuses them now. The peer chatted with before is dropped
// too, so that a line meant for the group does not go to them; the user
// picks the next conversation.
func (s *session) leftGroup(why string) {
	// GET_GROUP no longer answers a former member: the name labels the
	// group's lines still to come (its LEAVE event) instead.
	s.convNames[s.group] = s.groupName
	if s.unread == s.group {
		s.unread = ""
	}
	s.printf("* %s; /to <user> or /group <name or id> to chat on", why)
	s.group, s.groupName, s.peer = "", "", peer{}
}

// followGroupEvent leaves the view of the group on screen when m, one of
// its events just printed, ends the user's part in it: a removal of the
// user, a DISMISS (this device's /dismiss too), or a LEAVE from another
// of the user's devices (this device's /leave has left the view already).
func (s *session) followGroupEvent(ctx context.Context, m *common.Message) {
	if s.group == "" || m.ConvId != s.group ||
		m.ContentType != common.ContentType_GROUP_EVENT {
		return
	}
	ev, err := client.GroupEventOf(m)
	if err != nil {
		return
	}
	switch {
	case ev.Action == common.GroupAction_REMOVE && slices.Contains(ev.Targets, s.me):
		s.leftGroup(fmt.Sprintf("%s removed you from %s", s.nameOf(ctx, m.SenderId),
			s.groupName))
	case ev.Action == common.GroupAction_DISMISS:
		s.leftGroup(fmt.Sprintf("%s was dismissed", s.groupName))
	case ev.Action == common.GroupAction_LEAVE && m.SenderId == s.me:
		s.leftGroup(fmt.Sprintf("you left group %s on another device", s.groupName))
	}
}

// manage applies one change to the current group; its event comes back
// through the message stream.
func (s *session) manage(ctx context.Context, req *protocol.ManageGroupReq) error {
	if s.group == "" {
		return errNoGroup
	}
	req.ConvId = s.group
	ctx, cancel := context.WithTimeout(ctx, requestDeadline)
	defer cancel()
	_, err := s.sess.ManageGroup(ctx, req)
	return err
}

func (s *session) printMembers(ctx context.Context) error {
	if s.group == "" {
		return errNoGroup
	}
	var info *protocol.GroupInfo
	err := s.request(ctx, func(ctx context.Context, c *client.Client) error {
		var err error
		info, err = c.GetGroup(ctx, s.group)
		return err
	})
	if err != nil {
		return err
	}
	state := ""
	if info.Dismissed {
		state = " (dismissed)" // the server keeps the members of a dismissed group
	}
	s.printf("--- %s%s: %d member%s ---", info.Name, state, len(info.Members),
		plural(len(info.Members)))
	for _, m := range info.Members {
		s.printf("  %s (%s)", s.nameOf(ctx, m.UserId), strings.ToLower(m.Role.String()))
	}
	return nil
}

func (s *session) markRead(ctx context.Context) error {
	conv := s.conv()
	if conv == "" {
		return fmt.Errorf("no conversation yet")
	}
	return s.request(ctx, func(ctx context.Context, c *client.Client) error {
		seq, err := c.MarkRead(ctx, conv, client.LatestSeq)
		if err == nil {
			s.printf("* read up to #%d", seq)
		}
		return err
	})
}

// parseSeq reads a seq as typed: "#3", as lines show it, or "3".
func parseSeq(text string) (int64, bool) {
	seq, err := strconv.ParseInt(strings.TrimPrefix(text, "#"), 10, 64)
	return seq, err == nil && seq > 0
}

// changeMessage runs "/recall #<seq>" or "/edit #<seq> <text>" (the # is
// optional, as everywhere a seq is taken).
func (s *session) changeMessage(ctx context.Context, cmd, arg string) error {
	conv := s.conv()
	seqText, text, _ := strings.Cut(arg, " ")
	seq, ok := parseSeq(seqText)
	switch {
	case conv == "":
		return fmt.Errorf("no conversation yet")
	case !ok || cmd == "/edit" && strings.TrimSpace(text) == "":
		return fmt.Errorf("usage: /recall #<seq> or /edit #<seq> <text>")
	case cmd == "/edit" && s.isSecret(strings.TrimSpace(text)):
		return fmt.Errorf("not edited: that text is a password typed in this run")
	}
	if err := s.checkChangeTarget(ctx, cmd, conv, seq); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, requestDeadline)
	defer cancel()
	if cmd == "/recall" {
		_, err := s.sess.Recall(ctx, conv, seq)
		return err
	}
	_, err := s.sess.Edit(ctx, conv, seq, strings.TrimSpace(typedText(text)))
	return err
}

// react runs "/react #<seq> <emoji>" and "/unreact #<seq> <emoji>". The
// server judges the target and the emoji; a reaction that changes nothing
// is said here, since no event line will show it.
func (s *session) react(ctx context.Context, arg string, remove bool) error {
	conv := s.conv()
	seqText, emoji, _ := strings.Cut(strings.TrimSpace(arg), " ")
	seq, ok := parseSeq(seqText)
	emoji = strings.TrimSpace(emoji)
	switch {
	case conv == "":
		return fmt.Errorf("no conversation yet")
	case !ok || emoji == "" || strings.ContainsAny(emoji, " \t"):
		return fmt.Errorf("usage: /react #<seq> <emoji> or /unreact #<seq> <emoji>")
	}
	ctx, cancel := context.WithTimeout(ctx, requestDeadline)
	defer cancel()
	resp, err := s.sess.React(ctx, conv, seq, emoji, remove)
	switch {
	case client.CodeOf(err) == common.ErrorCode_NOT_FOUND:
		// The server's "not found: message": no such seq, or one before
		// the user's clear.
		return fmt.Errorf("no #%d in this conversation (cleared from your history, or "+
			"never sent)", seq)
	case err != nil:
		return err
	case resp.Duplicate && resp.Seq == 0 && remove:
		s.printf("* you have no %s on #%d", clean(emoji), seq)
	case resp.Duplicate && resp.Seq == 0:
		s.printf("* you already reacted %s to #%d", clean(emoji), seq)
	}
	return nil
}

// checkChangeTarget reads #seq of conv and says why cmd, /recall or /edit,
// cannot change it when it is missing, an event, another user's message or,
// for /edit, a file. The server refuses these too, but in its own terms
// ("only a text or binary message may change"), which do not tell a user
// that the #seq typed was an event's. The server stays the judge of
// everything else; it recalls a FILE message but edits none.
func (s *session) checkChangeTarget(ctx context.Context, cmd, conv string, seq int64) error {
	target, err := s.readMessage(ctx, conv, seq)
	if err != nil {
		return err
	}
	switch {
	case target == nil:
		return fmt.Errorf("no #%d in this conversation", seq)
	case !isMessage(target.ContentType):
		return fmt.Errorf("#%d is an event (a group change, edit, recall, reaction or pin), "+
			"not a message; "+
			"/recall and /edit take the #seq shown beside one of your messages", seq)
	case target.SenderId != s.me:
		return fmt.Errorf("#%d is %s's message; /recall and /edit change only your own",
			seq, s.nameOf(ctx, target.SenderId))
	case cmd == "/edit" && target.ContentType == common.ContentType_FILE:
		if s.checkChangeWindow("/recall", target) != nil {
			return fmt.Errorf("#%d is a file, which cannot be edited, and it is past the "+
				"recall window", seq)
		}
		return fmt.Errorf("#%d is a file, which cannot be edited; /recall #%d takes it back",
			seq, seq)
	}
	return s.checkChangeWindow(cmd, target)
}

// checkChangeWindow refuses cmd on target once the window the server
// reported for it has passed, by the server's clock, which stamped the
// message: the server would refuse it as FORBIDDEN, in words that do not
// say which #seq. A server that reported no limits is left to judge: it
// may keep other windows than the defaults.
func (s *session) checkChangeWindow(cmd string, target *common.Message) error {
	lim, now := s.sess.Limits(), s.sess.ServerNow()
	if !lim.Reported {
		return nil
	}
	if cmd == "/recall" && !lim.RecallOpen(target, now) {
		return fmt.Errorf("#%d is past the recall window of %s; not recalled", target.Seq,
			lim.RecallWindow)
	}
	if cmd == "/edit" && !lim.EditOpen(target, now) {
		return fmt.Errorf("#%d is past the edit window of %s; not edited", target.Seq,
			lim.EditWindow)
	}
	return nil
}

// isMessage reports whether t is a message's, not an event's.
func isMessage(t common.ContentType) bool {
	switch t {
	case common.ContentType_TEXT, common.ContentType_BINARY, common.ContentType_FILE:
		return true
	}
	return false
}

// readMessage returns #seq of conv as the user's history has it, nil when
// it has none: never sent, or cleared for the user.
func (s *session) readMessage(ctx context.Context, conv string,
	seq int64) (*common.Message, error) {
	var target *common.Message
	err := s.request(ctx, func(ctx context.Context, c *client.Client) error {
		resp, err := c.Sync(ctx, conv, seq-1, 1)
		if err == nil && len(resp.Messages) > 0 && resp.Messages[0].Seq == seq {
			target = resp.Messages[0]
		}
		return err
	})
	if client.CodeOf(err) == common.ErrorCode_NOT_FOUND {
		// No message in the conversation yet (see syncBefore).
		return nil, nil
	}
	return target, err
}

func (s *session) printConvs(ctx context.Context) error {
	convs, err := s.allConvs(ctx)
	if err != nil {
		return err
	}
	s.printf("--- %d conversation%s ---", len(convs), plural(len(convs)))
	for _, c := range convs {
		name := c.Name
		if c.Type == common.ConvType_P2P {
			name = s.nameOf(ctx, c.PeerUserId)
		}
		mention := ""
		if client.UnreadMention(c) {
			mention = " @" // a mention not read yet
		}
		s.printf("  %s  %s  unread %d%s%s", c.ConvId, name, c.Unread, mention,
			s.convState(ctx, c))
	}
	return nil
}

// convState says when a conversation is no longer one to chat in: the
// group was dismissed, or the user left it.
func (s *session) convState(ctx context.Context, c *protocol.ConvSummary) string {
	// A failed look-back (only for a server that does not send dismissed)
	// leaves the state the summary gives: /convs is still worth printing
	// without it.
	if dismissed, _ := s.dismissedGroup(ctx, c); dismissed {
		return " (dismissed)"
	}
	if c.Left {
		return " (left)"
	}
	return ""
}

// dismissPage is how many messages one look-back of dismissedGroup reads.
const dismissPage = 100

// dismissedGroup reports whether c is a group that was dismissed, as its
// summary's dismissed says. A server from before that field leaves it
// unset; the group's history tells then. DISMISS is not always a group's
// last event: each member, the owner too, may LEAVE a dismissed group, and
// nothing else may follow it (docs/protocol.md). So the group was
// dismissed when the newest event before its trailing LEAVEs is a DISMISS;
// those LEAVEs are paged back through, usually none or a few. GET_GROUP's
// dismissed would not answer a user who left, whose summary c may be.
func (s *session) dismissedGroup(ctx context.Context, c *protocol.ConvSummary) (bool, error) {
	if c.Type != common.ConvType_GROUP {
		return false, nil
	}
	if c.IsSetDismissed() {
		return c.GetDismissed(), nil
	}
	if c.LastMessage == nil {
		return false, nil
	}
	if done, dismissed := dismissVerdict(c.LastMessage); done {
		return dismissed, nil
	}
	for before := c.LastMessage.Seq; before > 1; {
		var page []*common.Message
		err := s.request(ctx, func(ctx context.Context, cl *client.Client) error {
			resp, err := cl.SyncBefore(ctx, c.ConvId, before, dismissPage)
			if err == nil {
				page = resp.Messages
			}
			return err
		})
		if err != nil || len(page) == 0 {
			return false, err
		}
		for i := len(page) - 1; i >= 0; i-- {
			if done, dismissed := dismissVerdict(page[i]); done {
				return dismissed, nil
			}
		}
		before = page[0].Seq
	}
	return false, nil
}

// dismissVerdict reads one message of a group, newest first, for
// dismissedGroup: a DISMISS says dismissed; a LEAVE says nothing yet
// (done false), the DISMISS may lie before it; anything else says not.
func dismissVerdict(m *common.Message) (done, dismissed bool) {
	if m.ContentType != common.ContentType_GROUP_EVENT {
		return true, false
	}
	ev, err := client.GroupEventOf(m)
	switch {
	case err != nil:
		return true, false
	case ev.Action == common.GroupAction_LEAVE:
		return false, false
	}
	return true, ev.Action == common.GroupAction_DISMISS
}

// allConvs lists every conversation of the user, all pages.
func (s *session) allConvs(ctx context.Context) ([]*protocol.ConvSummary, error) {
	var convs []*protocol.ConvSummary
	err := s.request(ctx, func(ctx context.Context, c *client.Client) error {
		cursor := ""
		for {
			resp, err := c.SyncConvs(ctx, cursor, 0)
			if err != nil {
				return err
			}
			for _, c := range resp.Convs {
				if !c.Hidden { // deleted by the user (/hide) and nothing new since
					convs = append(convs, c)
				}
			}
			if cursor = resp.Cursor; !resp.HasMore {
				return nil
			}
		}
	})
	return convs, err
}

// formatEvent describes a group, recall, edit, reaction or pin event, as "alice left";
// "" for a message. format adds the event's own #seq.
func (s *session) formatEvent(ctx context.Context, m *common.Message) string {
	who := s.nameOf(ctx, m.SenderId)
	switch m.ContentType {
	case common.ContentType_GROUP_EVENT:
		ev, err := client.GroupEventOf(m)
		if err != nil {
			return err.Error()
		}
		names := make([]string, len(ev.Targets))
		for i, id := range ev.Targets {
			names[i] = s.nameOf(ctx, id)
		}
		targets := strings.Join(names, ", ")
		switch ev.Action {
		case common.GroupAction_CREATE:
			if targets == "" {
				targets = "no one else yet"
			}
			return fmt.Sprintf("%s created %q with %s (%s)", who, clean(ev.Name), targets,
				m.ConvId)
		case common.GroupAction_ADD:
			return fmt.Sprintf("%s added %s", who, targets)
		case common.GroupAction_REMOVE:
			return fmt.Sprintf("%s removed %s", who, targets)
		case common.GroupAction_LEAVE:
			return fmt.Sprintf("%s left", who)
		case common.GroupAction_RENAME:
			s.renamed(m.ConvId, ev.Name)
			return fmt.Sprintf("%s renamed the group %q", who, clean(ev.Name))
		case common.GroupAction_SET_ROLE:
			return fmt.Sprintf("%s made %s %s", who, targets, strings.ToLower(ev.Role.String()))
		case common.GroupAction_DISMISS:
			return fmt.Sprintf("%s dismissed the group", who)
		}
		return fmt.Sprintf("%s changed the group", who)
	case common.ContentType_RECALL:
		if ev, err := client.RecallEventOf(m); err == nil {
			return fmt.Sprintf("%s recalled #%d", who, ev.Seq)
		}
	case common.ContentType_REACTION:
		if ev, err := client.ReactionEventOf(m); err == nil && ev.Removed {
			return fmt.Sprintf("%s took back %s from #%d", who, clean(ev.Emoji), ev.Seq)
		} else if err == nil {
			return fmt.Sprintf("%s reacted %s to #%d", who, clean(ev.Emoji), ev.Seq)
		}
	case common.ContentType_PIN:
		return pinEventText(who, m)
	case common.ContentType_EDIT:
		if ev, err := client.EditEventOf(m); err == nil && m.Recalled {
			return fmt.Sprintf("%s edited #%d (since recalled)", who, ev.Seq)
		} else if err == nil {
			return fmt.Sprintf("%s edited #%d: %s", who, ev.Seq,
				contentText(ev.ContentType, ev.Content))
		}
	}
	return ""
}

// renamed keeps the names shown for a group current after a RENAME.
func (s *session) renamed(convID, name string) {
	if convID == s.group {
		s.groupName = name
	}
	if _, ok := s.convNames[convID]; ok {
		s.convNames[convID] = name
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
