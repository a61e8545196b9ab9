package chat

import (
	"context"
	"fmt"
	"strings"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
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
	s.passCleared(conv, cleared)
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

// passCleared moves the client past conv's history cleared up to cleared:
// what was printed before is not printed again, nor quoted.
func (s *session) passCleared(conv string, cleared int64) {
	s.shown[conv] = max(s.shown[conv], cleared)
	s.quotes.forget(conv, cleared)
	if s.unread == conv {
		s.unread = "" // the server moved the read position with the clear
	}
	if s.view.conv == conv {
		s.view.unreadBelow = false // nothing below the clear is left to show
	}
}

// clearedElsewhere applies a clear made on another of the user's devices
// (NOTIFY cleared), which the client session has applied to the stream
// already, and says so: the history on screen above is gone there too.
func (s *session) clearedElsewhere(ctx context.Context, n *protocol.ConvCleared) {
	if n.ConvId == "" {
		return
	}
	s.passCleared(n.ConvId, n.ClearedSeq)
	var label string
	switch {
	case n.ConvId == s.group:
		label = "of group " + s.groupName
	case strings.HasPrefix(n.ConvId, "p2p:"):
		label = s.convLabel(ctx, n.ConvId) // "with bob"
	default:
		label = "of group " + s.convLabel(ctx, n.ConvId)
	}
	if n.Hidden {
		s.printf("* the chat %s was deleted on another of your devices: history cleared "+
			"up to #%d, and gone from /convs until a new message comes", label, n.ClearedSeq)
		return
	}
	s.printf("* the history %s was cleared up to #%d on another of your devices",
		label, n.ClearedSeq)
}

// mute runs "/mute" and "/mute off": the conversation chatted in is muted
// or unmuted for the user on all of their devices, which stops or resumes
// its offline notifications (a mention still notifies). The server's mute
// lasts until undone: it takes no duration.
func (s *session) mute(ctx context.Context, arg string) error {
	var muted bool
	switch strings.ToLower(arg) {
	case "":
		muted = true
	case "off":
	default:
		return fmt.Errorf("usage: /mute or /mute off (a mute lasts until /mute off)")
	}
	conv := s.conv()
	if conv == "" {
		return fmt.Errorf("no conversation yet: /to <user> or /group")
	}
	err := s.request(ctx, func(ctx context.Context, c *client.Client) error {
		return c.MuteConv(ctx, conv, muted)
	})
	if err != nil {
		return err
	}
	with := "your conversation with " + s.peer.name
	if s.group != "" {
		with = "group " + s.groupName
	}
	if !muted {
		s.printf("* unmuted %s: its offline notifications come again", with)
		return nil
	}
	s.printf("* muted %s: no offline notifications for it on any of your devices; "+
		"/mute off undoes it", with)
	return nil
}
