package chat

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/kitex_gen/common"
)

// searchPages bounds the pages one /search or /more asks for while they
// come back without a match: the server reads a bounded part of the
// history per page, so a rare word can take several.
const searchPages = 5

// maxQueryRunes is the longest query the server takes, in characters
// (SearchMessagesReq.query).
const maxQueryRunes = 64

// unquoteQuery takes the text of /search "a phrase" as the other commands
// take a quoted name: without its quotes, which no message is meant to
// hold around the words searched.
func unquoteQuery(arg string) string {
	if len(arg) >= 2 && arg[0] == '"' && arg[len(arg)-1] == '"' {
		if inner := strings.TrimSpace(arg[1 : len(arg)-1]); inner != "" {
			return inner
		}
	}
	return arg
}

// searchState is the last /search: its text and where /more continues, 0
// when it reached the oldest message.
type searchState struct {
	query  string
	cursor int64
}

// searchCommand runs /search <text>, which starts a search of all the
// user's conversations, and /search alone or /more, which continue the
// last one.
func (s *session) searchCommand(ctx context.Context, cmd, arg string) error {
	last := s.search
	switch {
	case cmd == "/search" && arg != "":
		query := unquoteQuery(arg)
		if n := utf8.RuneCountInString(query); n > maxQueryRunes {
			return fmt.Errorf("a search takes at most %d characters; this one has %d",
				maxQueryRunes, n)
		}
		s.search = searchState{query: query}
	case s.search.query == "":
		return fmt.Errorf("no search yet: /search <text>")
	case s.search.cursor == 0:
		s.printf("* no older matches of %q", s.search.query)
		return nil
	}
	found, err := s.searchPage(ctx)
	if err != nil {
		if arg != "" {
			s.search = last // a refused search is not the one /more continues
		}
		return err
	}
	switch {
	case s.search.cursor != 0 && found == 0:
		s.printf("* no matches of %q in the newest messages; /more searches older ones",
			s.search.query)
	case s.search.cursor != 0:
		s.printf("* /more for older matches of %q", s.search.query)
	case found == 0 && arg != "":
		s.printf("* no messages with %q", s.search.query)
	default:
		s.printf("* no older matches of %q", s.search.query)
	}
	return nil
}

// searchPage asks for pages of the search until one has matches, the
// search ends or searchPages were asked, prints the matches and returns
// how many there were.
func (s *session) searchPage(ctx context.Context) (int, error) {
	var msgs []*common.Message
	for range searchPages {
		p := client.SearchParams{Query: s.search.query, Cursor: s.search.cursor}
		err := s.request(ctx, func(ctx context.Context, c *client.Client) error {
			var err error
			msgs, p.Cursor, err = c.SearchMessages(ctx, p)
			return err
		})
		if err != nil {
			return 0, err
		}
		s.search.cursor = p.Cursor
		if len(msgs) > 0 || p.Cursor == 0 {
			break
		}
	}
	for _, m := range msgs {
		s.printf("%s", s.formatFound(ctx, m))
	}
	return len(msgs), nil
}

// formatFound renders a match as "[with bob] 2026-12-06 15:04:05 bob #2:
// text": its conversation, and the date, since a match may be old.
func (s *session) formatFound(ctx context.Context, m *common.Message) string {
	at := time.UnixMilli(m.SendTimeMs).Format("2006-01-02 15:04:05")
	return fmt.Sprintf("[%s] %s %s #%d: %s", s.convLabel(ctx, m.ConvId), at,
		s.nameOf(ctx, m.SenderId), m.Seq, messageText(m))
}
