package chat

import (
	"context"
	"fmt"
)

// clearConv runs /clear and /hide: the conversation's history is cleared
// for the user on all of their devices (others keep theirs), and /hide also
// takes it off /convs until a new message comes.
func (s *session) clearConv(ctx context.Context, hide bool) error {
	conv := s.conv()
	if conv == "" {
		return fmt.Errorf("no conversation yet")
	}
	// The Session's ClearConv also moves the stream past the clear, so a
	// message it had missed there is not fetched and printed.
	ctx, cancel := context.WithTimeout(ctx, requestDeadline)
	defer cancel()
	// Up to what this client printed, not the server's newest: a message on
	// its way would otherwise be cleared unseen. 0 (nothing printed yet)
	// clears all there is.
	cleared, err := s.sess.ClearConv(ctx, conv, s.shown[conv], hide)
	if err != nil {
		return err
	}
	// History printed before the clear is not printed again, nor quoted.
	s.shown[conv] = max(s.shown[conv], cleared)
	s.quotes.forget(conv, cleared)
	if s.unread == conv {
		s.unread = "" // the server moved the read position with the clear
	}
	with := s.peer.name
	if s.group != "" {
		with = "group " + s.groupName
	}
	if hide {
		s.printf("* deleted the chat with %s for you: history cleared up to #%d on all your "+
			"devices, and gone from /convs until a new message comes", with, cleared)
		return nil
	}
	s.printf("* cleared the history with %s up to #%d on all your devices; the others "+
		"still have theirs", with, cleared)
	return nil
}
