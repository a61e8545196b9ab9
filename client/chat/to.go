package chat

import (
	"context"
	"fmt"
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
	if c.Type == common.ConvType_GROUP {
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

// openPeer opens the 1:1 conversation with the user of id, read-only when
// the account was deleted.
func (s *session) openPeer(ctx context.Context, id int64) error {
	var u *protocol.GetUserResp
	err := s.request(ctx, func(ctx context.Context, c *client.Client) error {
		var err error
		u, err = c.GetUserByID(ctx, id)
		return err
	})
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

// deletedName is the name shown for the user of id, who deleted the
// account and has no username left.
func deletedName(id int64) string {
	return fmt.Sprintf("user#%d%s", id, deletedSuffix)
}
