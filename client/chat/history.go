package chat

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// History in the terminal. Opening a conversation (at start, /to, /group)
// prints every message not read yet, or the newest unreadCap of them with
// the number left for /history; with nothing unread, the last historyLines
// messages. /history [N] then pages back from the oldest line printed.
// Lines are counted in messages: the events among them (group changes,
// edits, recalls, reactions) are printed beside them, not counted.

const (
	// historyLines is how many messages /history prints when not told.
	historyLines = 20
	// maxHistoryLines caps the N of /history N.
	maxHistoryLines = 500
	// unreadCap bounds the unread messages printed when a conversation
	// opens; a longer backlog shows its newest, and /history the rest.
	unreadCap = 100
	// historyPage is the size of one backward SYNC; the server may answer
	// fewer.
	historyPage = 100
	// maxHistoryItems bounds the messages and events one page reads, so
	// that a long run of events (reactions) cannot make it read for ever.
	maxHistoryItems = 2000
)

// historyView is what the conversation on screen printed of its history
// since it was opened.
type historyView struct {
	conv string
	// oldest is the lowest seq printed, where /history goes on from; 0
	// before anything was.
	oldest int64
	// unreadBelow is set while unread messages older than oldest are not
	// printed: the conversation is not marked read until they are, since
	// a read position covers everything below it.
	unreadBelow bool
	// floor is the seq up to which the conversation was read (or cleared)
	// when opened, while unreadBelow is set.
	floor int64
	// left is set for a group the user left, opened to be read.
	left bool
}

// printedLive notes a line of the stream printed in the conversation on
// screen: when it is the first line there, /history pages back from it.
func (v *historyView) printedLive(m *common.Message) {
	if v.conv == m.ConvId && v.oldest == 0 {
		v.oldest = m.Seq
	}
}

// historyRead is one backward read of a conversation: its messages oldest
// first, and whether older ones were left unread for the page's bound.
type historyRead struct {
	msgs []*common.Message
	more bool
}

// openHistory prints the history of the conversation just opened: its
// unread messages, else its last historyLines.
func (s *session) openHistory(ctx context.Context) error {
	conv := s.conv()
	s.view = historyView{conv: conv}
	sum, err := s.convSummary(ctx, conv)
	if err != nil {
		return err
	}
	if sum == nil || sum.Unread == 0 {
		return s.printLast(ctx, conv)
	}
	return s.printUnread(ctx, conv, sum)
}

// printLast prints the last historyLines messages of conv.
func (s *session) printLast(ctx context.Context, conv string) error {
	read, err := s.readBack(ctx, conv, client.LatestSeq, 0, historyLines)
	if err != nil {
		return err
	}
	n := countMessages(read.msgs)
	if n == 0 { // events alone, such as a group's creation, follow
		s.printf("--- no messages with %s yet ---", s.withLabel())
	} else {
		s.printf("--- last %d message%s with %s ---", n, plural(n), s.withLabel())
	}
	s.printPage(ctx, conv, read.msgs)
	return nil
}

// printUnread prints the messages of conv after the read position sum
// gives, or the newest unreadCap of them and which are left.
func (s *session) printUnread(ctx context.Context, conv string,
	sum *protocol.ConvSummary) error {
	floor := max(sum.ReadSeq, sum.ClearedSeq)
	read, err := s.readBack(ctx, conv, client.LatestSeq, floor, unreadCap)
	if err != nil {
		return err
	}
	if !read.more {
		s.printf("--- %d unread message%s with %s ---", sum.Unread, plural(int(sum.Unread)),
			s.withLabel())
		s.printPage(ctx, conv, read.msgs)
		return nil
	}
	// The seqs left are counted, not the server's unread (which leaves
	// out reactions): each holds one message at most, so /history of
	// that many reaches back to them all.
	first, last := floor+1, read.msgs[0].Seq-1
	s.printf("--- %d unread messages with %s: the newest %d follow; /history %d shows "+
		"the earlier ones (#%d-#%d) ---", sum.Unread, s.withLabel(),
		countMessages(read.msgs), min(last-first+1, maxHistoryLines), first, last)
	s.view.unreadBelow, s.view.floor = true, floor
	s.printPage(ctx, conv, read.msgs)
	return nil
}

// pageBack runs /history [N]: the N messages (historyLines when arg is
// empty, at most maxHistoryLines) before the oldest line printed.
func (s *session) pageBack(ctx context.Context, arg string) error {
	conv := s.conv()
	if conv == "" {
		return fmt.Errorf("no conversation yet: /to <user> or /group")
	}
	n, err := s.historyCount(arg)
	if err != nil {
		return err
	}
	if s.view.conv != conv {
		s.view = historyView{conv: conv}
	}
	before := client.LatestSeq
	if s.view.oldest > 0 {
		before = s.view.oldest
	}
	if before <= 1 {
		s.printf("--- no earlier messages with %s ---", s.withLabel())
		return nil
	}
	read, err := s.readBack(ctx, conv, before, 0, n)
	if err != nil {
		return err
	}
	if len(read.msgs) == 0 {
		s.printf("--- no earlier messages with %s ---", s.withLabel())
		return nil
	}
	got := countMessages(read.msgs)
	s.printf("--- %d earlier message%s with %s ---", got, plural(got), s.withLabel())
	s.printPage(ctx, conv, read.msgs)
	return nil
}

// historyCount reads the N of /history N, at most maxHistoryLines.
func (s *session) historyCount(arg string) (int, error) {
	if arg == "" {
		return historyLines, nil
	}
	n, err := strconv.Atoi(arg)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("usage: /history [N], N a number of messages up to %d",
			maxHistoryLines)
	}
	if n > maxHistoryLines {
		s.printf("* /history prints at most %d messages at a time; /history again pages "+
			"further back", maxHistoryLines)
		n = maxHistoryLines
	}
	return n, nil
}

// withLabel names the conversation on screen for a history heading.
func (s *session) withLabel() string {
	if s.group != "" {
		return "group " + s.groupName
	}
	return s.peer.name
}

// printPage prints a page of history, oldest first, folding the edits,
// recalls and reactions of messages it prints: their lines show the result.
func (s *session) printPage(ctx context.Context, conv string, msgs []*common.Message) {
	printed := make(map[int64]bool, len(msgs))
	for _, m := range msgs {
		if isMessage(m.ContentType) {
			printed[m.Seq] = true
		}
	}
	for _, m := range msgs {
		// A LEAVE read here is not read again from the stream, which skips
		// what the history showed: its sender's name is asked again now.
		s.forgetSenderOfLeave(m)
		s.shown[conv] = max(s.shown[conv], m.Seq)
		if target, ok := eventTarget(m); ok && printed[target] {
			s.forgetQuoted(m)
			continue
		}
		s.printf("%s", s.format(ctx, m))
	}
	if len(msgs) == 0 {
		return
	}
	if s.view.oldest == 0 || msgs[0].Seq < s.view.oldest {
		s.view.oldest = msgs[0].Seq
	}
	if s.view.unreadBelow && s.view.oldest <= s.view.floor+1 {
		s.view.unreadBelow = false
	}
	s.unread = conv
}

// eventTarget returns the seq an edit, recall or reaction changes.
func eventTarget(m *common.Message) (int64, bool) {
	switch m.ContentType {
	case common.ContentType_EDIT:
		if ev, err := client.EditEventOf(m); err == nil {
			return ev.Seq, true
		}
	case common.ContentType_RECALL:
		if ev, err := client.RecallEventOf(m); err == nil {
			return ev.Seq, true
		}
	case common.ContentType_REACTION:
		if ev, err := client.ReactionEventOf(m); err == nil {
			return ev.Seq, true
		}
	}
	return 0, false
}

// countMessages counts the messages of msgs, events aside.
func countMessages(msgs []*common.Message) int {
	n := 0
	for _, m := range msgs {
		if isMessage(m.ContentType) {
			n++
		}
	}
	return n
}

// readBack reads conv backward from before (exclusive) down to floor
// (exclusive) until it holds want messages, with the events among and just
// before them. more says that older messages above floor were left.
func (s *session) readBack(ctx context.Context, conv string, before, floor int64,
	want int) (historyRead, error) {
	var newestFirst []*common.Message
	messages := 0
	for {
		page, hasMore, err := s.syncBefore(ctx, conv, before)
		if err != nil {
			return historyRead{}, err
		}
		for i := len(page) - 1; i >= 0; i-- {
			m := page[i]
			switch {
			case m.Seq <= floor:
				return historyRead{msgs: oldestFirst(newestFirst)}, nil
			case isMessage(m.ContentType) && messages == want,
				len(newestFirst) == maxHistoryItems:
				return historyRead{msgs: oldestFirst(newestFirst), more: true}, nil
			case isMessage(m.ContentType):
				messages++
			}
			newestFirst = append(newestFirst, m)
		}
		if !hasMore || len(page) == 0 || page[0].Seq >= before {
			// The last guard: a page that does not move back would repeat.
			return historyRead{msgs: oldestFirst(newestFirst)}, nil
		}
		before = page[0].Seq
	}
}

// syncBefore reads one backward page of conv, oldest first.
func (s *session) syncBefore(ctx context.Context, conv string,
	before int64) ([]*common.Message, bool, error) {
	var resp *protocol.SyncResp
	err := s.request(ctx, func(ctx context.Context, c *client.Client) error {
		var err error
		resp, err = c.SyncBefore(ctx, conv, before, historyPage)
		return err
	})
	if client.CodeOf(err) == common.ErrorCode_NOT_FOUND {
		// The IDL does not say how a server answers for a conversation
		// with no message yet; NOT_FOUND is read as empty.
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return resp.Messages, resp.HasMore, nil
}

// oldestFirst reverses msgs, read newest first, in place.
func oldestFirst(msgs []*common.Message) []*common.Message {
	slices.Reverse(msgs)
	return msgs
}

// convSummary returns the user's summary of conv, nil when the listing has
// none (a conversation with no message yet).
func (s *session) convSummary(ctx context.Context,
	conv string) (*protocol.ConvSummary, error) {
	// TODO: SYNC_CONVS lists every conversation to find one; a look-up of
	// one conversation's read position would spare that for many.
	convs, err := s.allConvs(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range convs {
		if c.ConvId == conv {
			return c, nil
		}
	}
	return nil, nil
}
