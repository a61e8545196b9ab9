package chat

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// The prose closing /help is one filled paragraph: every line but its last
// runs close to the width of the others, none is broken off short, and
// none is wider than a terminal's 80 columns.
func TestHelp_ClosingParagraphIsFilled(t *testing.T) {
	lines := strings.Split(helpText, "\n")
	start := len(lines)
	for start > 0 && !strings.HasPrefix(lines[start-1], " ") {
		start--
	}
	prose := lines[start:]
	if len(prose) < 2 {
		t.Fatalf("no closing paragraph in /help:\n%s", helpText)
	}
	for i, line := range prose {
		n := utf8.RuneCountInString(line)
		if n > 80 || i < len(prose)-1 && n < 60 {
			t.Fatalf("line %q of /help's closing paragraph is %d runes; want 60 to 80 "+
				"(but the last):\n%s", line, n, strings.Join(prose, "\n"))
		}
	}
}

// Every command /help names but /quit, /help and /reply asks the server,
// and is refused at once while offline (serverCommands): one missing from
// the list would wait for a connection, then fail as a timeout.
func TestHelp_EveryCommandIsKnownToAskTheServer(t *testing.T) {
	commandRE := regexp.MustCompile(`(?m)^\s+(/[a-z][a-z-]*)|[,;] (/[a-z][a-z-]*)|or (/more)`)
	found := commandRE.FindAllStringSubmatch(helpText, -1)
	if len(found) < 20 {
		t.Fatalf("found %d commands in /help", len(found))
	}
	for _, m := range found {
		cmd := m[1] + m[2] + m[3]
		offline := cmd == "/quit" || cmd == "/help" || cmd == "/reply"
		if serverCommands[cmd] == offline {
			t.Errorf("serverCommands[%s] = %v", cmd, serverCommands[cmd])
		}
	}
}
