package chat

import (
	"context"
	"fmt"
	"strings"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/kitex_gen/common"
)

// pin runs "/pin #<seq>" and "/unpin #<seq>". The server judges the target
// and who may pin; a pin that changes nothing is said here, since no event
// line will show it.
func (s *session) pin(ctx context.Context, arg string, unpin bool) error {
	conv := s.conv()
	seq, ok := parseSeq(strings.TrimSpace(arg))
	switch {
	case conv == "":
		return fmt.Errorf("no conversation yet")
	case !ok:
		return fmt.Errorf("usage: /pin #<seq> or /unpin #<seq>")
	}
	ctx, cancel := context.WithTimeout(ctx, requestDeadline)
	defer cancel()
	resp, err := s.sess.Pin(ctx, conv, seq, unpin)
	switch {
	case client.CodeOf(err) == common.ErrorCode_NOT_FOUND:
		return fmt.Errorf("no #%d in this conversation (cleared from your history, or "+
			"never sent)", seq)
	case client.CodeOf(err) == common.ErrorCode_TOO_LARGE:
		return fmt.Errorf("this conversation has the most pinned messages it may have (%d); "+
			"/unpin one first", s.sess.Limits().MaxPins)
	case err != nil:
		return err
	case resp.Duplicate && resp.Seq == 0 && unpin:
		s.printf("* #%d is not pinned", seq)
	case resp.Duplicate && resp.Seq == 0:
		s.printf("* #%d is pinned already", seq)
	}
	return nil
}

// printPins prints the current conversation's pinned messages, most
// recently pinned first, as the server lists them in SYNC_CONVS: a client
// that missed the PIN events (an earlier run, another device) shows them
// all the same.
func (s *session) printPins(ctx context.Context) error {
	conv := s.conv()
	if conv == "" {
		return fmt.Errorf("no conversation yet")
	}
	convs, err := s.allConvs(ctx)
	if err != nil {
		return err
	}
	var pins []int64
	for _, c := range convs {
		if c.ConvId == conv {
			pins = c.PinnedSeqs
		}
	}
	if len(pins) == 0 {
		s.printf("* nothing pinned in this conversation")
		return nil
	}
	s.printf("--- %d pinned message%s ---", len(pins), plural(len(pins)))
	for _, seq := range pins {
		m, err := s.readMessage(ctx, conv, seq)
		switch {
		case err != nil:
			return err
		case m == nil:
			s.printf("#%d (not in your history)", seq)
		default:
			s.printf("%s", s.format(ctx, m))
		}
	}
	return nil
}

// pinEventText describes a PIN event, as "alice pinned #3"; "" when its
// content does not decode.
func pinEventText(who string, m *common.Message) string {
	ev, err := client.PinEventOf(m)
	if err != nil {
		return ""
	}
	if ev.Unpinned {
		return fmt.Sprintf("%s unpinned #%d", who, ev.Seq)
	}
	return fmt.Sprintf("%s pinned #%d", who, ev.Seq)
}
