package chat

import (
	"fmt"
	"strings"
	"testing"
)

// clean leaves no invisible format character (Unicode Cf that a terminal
// prints as nothing): with one, a peer hides text inside a message or a
// group name, or makes two group names that print the same. The zero-width
// joiner and non-joiner stay: emoji sequences and Persian and Indic words
// need them. Tag characters (U+E0020-E007F) stay too: subdivision flags are
// spelled with them.
func TestClean_LeavesNoInvisibleFormatCharacter(t *testing.T) {
	tests := []struct {
		name  string
		runes []rune
	}{
		{name: "soft hyphen", runes: []rune{0x00ad}},
		{name: "Mongolian vowel separator", runes: []rune{0x180e}},
		{name: "zero width space", runes: []rune{0x200b}},
		{name: "word joiner and invisible operators",
			runes: []rune{0x2060, 0x2061, 0x2062, 0x2063, 0x2064}},
		{name: "deprecated shaping and swapping controls",
			runes: []rune{0x206a, 0x206b, 0x206c, 0x206d, 0x206e, 0x206f}},
		{name: "byte order mark", runes: []rune{0xfeff}},
		{name: "interlinear annotation", runes: []rune{0xfff9, 0xfffa, 0xfffb}},
		{name: "language tag", runes: []rune{0xe0001}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range tt.runes {
				in := "al" + string(r) + "ice"
				if got := clean(in); strings.ContainsRune(got, r) || isClean(in) {
					t.Errorf("clean(%q) = %q keeps %s", in, got, fmt.Sprintf("U+%04X", r))
				}
			}
		})
	}
}
