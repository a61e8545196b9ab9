package chat

import (
	"context"
	"fmt"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// notesSize bounds the NOTIFY frames waiting to be printed; past it they are
// dropped, as the server may drop them too.
const notesSize = 64

// onNotify hands a NOTIFY to Run's goroutine, which owns the names. It runs
// on the connection's reader and never blocks.
func (s *session) onNotify(n *protocol.Notify) {
	select {
	case s.notes <- n:
	default:
	}
}

// printNotify prints typing of the current peer, presence changes of
// watched users and clears made on the user's other devices; read
// positions are left out.
func (s *session) printNotify(ctx context.Context, n *protocol.Notify) {
	switch {
	case n.Typing != nil && n.Typing.UserId == s.peer.id && n.Typing.Typing:
		s.printf("* %s is typing…", s.nameOf(ctx, n.Typing.UserId))
	case n.Cleared != nil:
		s.clearedElsewhere(ctx, n.Cleared)
	case n.Presence != nil:
		s.printf("* %s is %s", s.nameOf(ctx, n.Presence.UserId), onlineWord(n.Presence.Online))
	}
}

// watchPresence resolves name, adds it to the users whose presence changes
// are printed, and prints its presence now.
func (s *session) watchPresence(ctx context.Context, name string) error {
	if name == "" {
		return fmt.Errorf("usage: /presence <user>")
	}
	u, err := s.lookUp(ctx, name)
	if client.CodeOf(err) == common.ErrorCode_NOT_FOUND {
		return fmt.Errorf("no such user: %s", name)
	}
	if err != nil {
		return err
	}
	s.watched[u.UserId] = true
	ids := make([]int64, 0, len(s.watched))
	for id := range s.watched {
		ids = append(ids, id)
	}
	ctx, cancel := context.WithTimeout(ctx, requestDeadline)
	defer cancel()
	now, err := s.sess.WatchPresence(ctx, ids)
	if err != nil {
		return err
	}
	for _, p := range now {
		if p.UserId == u.UserId {
			s.printf("* %s is %s", u.Username, onlineWord(p.Online))
		}
	}
	return nil
}

func onlineWord(online bool) string {
	if online {
		return "online"
	}
	return "offline"
}
