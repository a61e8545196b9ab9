package chat

import (
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
