package chat

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// deletedSuffix ends the name shown for a user who deleted the account.
const deletedSuffix = " (deleted)"

// openTo runs "/to <user>": a user by name, or any conversation /convs
// lists, by its id or the name it shows there. A user who deleted the
// account has no name to look up ("user#9 (deleted)" in /convs), yet the
// conversation with them must open to be read and its unread count
// cleared.
func (s *session) openTo(ctx context.Context, arg string) error {
	if usernameLike(arg) {
		s.peer, s.group = peer{name: arg}, ""
		return s.resolvePeer(ctx, true)
	}
	c, err := s.listedConv(ctx, arg)
	if err != nil {
		return err
	}
	switch {
	case c.Type == common.ConvType_GROUP && c.Left:
		return s.openLeftGroup(ctx, c)
	case c.Type == common.ConvType_GROUP:
		return s.groupCommand(ctx, c.ConvId)
	}
	return s.openPeer(ctx, c.PeerUserId)
}

// usernameLike reports whether name is made as usernames are: 3-32 ASCII
// letters, digits, '_', '.' or '-'. Anything else is looked for among the
// conversations instead, since the server refuses it as a name.
func usernameLike(name string) bool {
	if len(name) < 3 || len(name) > 32 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// listedConv returns the conversation of /convs whose id is arg, or whose
// name as /convs shows it is arg (the " (deleted)" of a deleted user's may
// be left out).
func (s *session) listedConv(ctx context.Context, arg string) (*protocol.ConvSummary, error) {
	convs, err := s.allConvs(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range convs {
		if c.ConvId == arg {
			return c, nil
		}
	}
	for _, c := range convs {
		name := c.Name
		if c.Type == common.ConvType_P2P {
			name = s.nameOf(ctx, c.PeerUserId)
		}
		if strings.EqualFold(name, arg) ||
			strings.EqualFold(strings.TrimSuffix(name, deletedSuffix), arg) {
			return c, nil
		}
	}
	return nil, fmt.Errorf("no user or conversation is %q; /convs lists your conversations "+
		"(a deleted user's as user#<id>)", arg)
}

// openLeftGroup opens a group the user left, to read what came before the
// leaving: GET_GROUP answers members only, so the listing names it.
func (s *session) openLeftGroup(ctx context.Context, c *protocol.ConvSummary) error {
	s.group, s.groupName, s.peer = c.ConvId, c.Name, peer{}
	s.printf("* reading group %s (%s): you left it, so nothing can be sent there", c.Name,
		c.ConvId)
	err := s.openHistory(ctx)
	s.view.left = true
	return err
}

// readOnly says why nothing can be sent to the conversation on screen, nil
// when it can: the peer deleted the account, or the user left the group.
func (s *session) readOnly() error {
	switch {
	case s.group != "" && s.view.conv == s.group && s.view.left:
		return fmt.Errorf("you left group %s", s.groupName)
	case s.group == "" && s.peer.deleted:
		return fmt.Errorf("%s deleted the account; nothing can be sent to them", s.peer.name)
	}
	return nil
}

// groupNamed returns the id of the group /convs lists as name, for a /to
// that names no user.
func (s *session) groupNamed(ctx context.Context, name string) (string, bool) {
	c, err := s.listedConv(ctx, name)
	if err != nil || c.Type != common.ConvType_GROUP {
		return "", false
	}
	return c.ConvId, true
}

// openPeer opens the 1:1 conversation with the user of id, read-only when
// the account was deleted.
func (s *session) openPeer(ctx context.Context, id int64) error {
	u, err := s.userByID(ctx, id)
	if err != nil {
		return err
	}
	s.group = ""
	if !u.Deleted {
		s.peer = peer{name: u.Username, id: id}
		s.learnName(id, u.Username)
		s.printf("* chatting with %s", u.Username)
		return s.openHistory(ctx)
	}
	name := deletedName(id)
	s.learnName(id, name)
	s.peer = peer{name: name, id: id, deleted: true}
	s.printf("* reading your conversation with %s: the account was deleted, so nothing can "+
		"be sent to it", name)
	return s.openHistory(ctx)
}

// userByID looks the user of id up, a deleted one too.
func (s *session) userByID(ctx context.Context, id int64) (*protocol.GetUserResp, error) {
	var u *protocol.GetUserResp
	err := s.request(ctx, func(ctx context.Context, c *client.Client) error {
		var err error
		u, err = c.GetUserByID(ctx, id)
		return err
	})
	return u, err
}

// knownID returns the last id other than not that the client learnt name
// for, 0 when none.
func (s *session) knownID(name string, not int64) int64 {
	ids := s.knownIDs[strings.ToLower(name)]
	for i := len(ids) - 1; i >= 0; i-- {
		if ids[i] != not {
			return ids[i]
		}
	}
	return 0
}

// rememberID records that name named the user of id: a name is freed when
// its account is deleted and may be taken by someone else, whom /to must
// not take for the user talked with before.
func (s *session) rememberID(id int64, name string) {
	if !usernameLike(name) {
		return // a deleted user's label
	}
	key := strings.ToLower(name)
	if !slices.Contains(s.knownIDs[key], id) {
		s.knownIDs[key] = append(s.knownIDs[key], id)
	}
}

// nameGone handles /to name when no account has the name now, but the
// client knew it as the user of id: that user deleted the account (or, on
// a server that renames, took another name). Their conversation opens,
// rather than a wait for the name, which would go to whoever takes it next.
func (s *session) nameGone(ctx context.Context, name string, id int64) error {
	s.peer = peer{}
	u, err := s.userByID(ctx, id)
	if err != nil {
		return err
	}
	if u.Deleted {
		s.printf("! %s deleted the account (user #%d)", name, id)
	} else {
		s.printf("! no account is named %s now; user #%d is %s", name, id, u.Username)
	}
	return s.openPeer(ctx, id)
}

// noteNewAccount runs warnNewAccount once per account, for a name learnt
// to print a line: the lines of the new account look like the old one's.
func (s *session) noteNewAccount(ctx context.Context, name string, id int64) {
	if !s.warnedNew[id] {
		s.warnNewAccount(ctx, name, id)
	}
}

// warnNewAccount says so when name, just resolved to the user of id, named
// another user the client knew: the one talked with before deleted the
// account and someone else took the name.
func (s *session) warnNewAccount(ctx context.Context, name string, id int64) {
	old := s.knownID(name, id)
	if old == 0 {
		return
	}
	s.warnedNew[id] = true
	state, tail := "deleted", fmt.Sprintf("/to user#%d reads that conversation", old)
	if u, err := s.userByID(ctx, old); err != nil {
		state, tail = "unknown now", fmt.Sprintf("/to user#%d reads that conversation", old)
	} else if !u.Deleted {
		state, tail = "now named "+u.Username, "/to "+u.Username+" chats with them"
	}
	s.printf("* %s is a new account (user #%d), not the %s you talked with before "+
		"(user #%d, %s): %s", name, id, name, old, state, tail)
}

// learnPeers learns the name of every user the user has a 1:1
// conversation with, so that a name freed by a deletion later in this run
// and taken by someone else is told apart (warnNewAccount, nameGone).
//
// TODO: the names are kept for the run only; a client started after a
// deletion cannot tell whose the freed name was (the server keeps no name
// of a deleted account), so /to says the name does not exist yet, and then
// takes whoever registers it. A store of names beside the device id would
// keep them across runs.
func (s *session) learnPeers(ctx context.Context) {
	convs, err := s.allConvs(ctx)
	if err != nil {
		return // only a better notice is lost
	}
	for _, c := range convs {
		if c.Type == common.ConvType_P2P {
			s.nameOf(ctx, c.PeerUserId)
		}
	}
}

// deletedName is the name shown for the user of id, who deleted the
// account and has no username left.
func deletedName(id int64) string {
	return fmt.Sprintf("user#%d%s", id, deletedSuffix)
}
