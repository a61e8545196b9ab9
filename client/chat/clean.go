package chat

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Everything the client prints from the network (message text, user and
// group names, conversation ids, the server's error and close messages)
// reaches the terminal through session.printf, which cleans each string
// argument: a peer must not be able to move the cursor, recolour or clear
// the screen, reorder what follows with a bidi override, or start what
// looks like a line of its own ("\n[12:00:00] alice: ...").

// clean returns s fit for one terminal line. C0 controls and DEL, \n \r \t
// included, become their visible Control Pictures (␀, ␛, ␊, ␡, ...); C1
// controls, bidi embeddings, overrides, isolates and marks, the line and
// paragraph separators, invisible format characters (unsafeRune) and
// invalid UTF-8 become U+FFFD.
func clean(s string) string {
	if isClean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for _, r := range s {
		switch {
		case r < 0x20:
			b.WriteRune(0x2400 + r) // ␀ (U+2400) onwards, in C0 order
		case r == 0x7f:
			b.WriteRune('\u2421') // ␡
		case unsafeRune(r):
			b.WriteRune(utf8.RuneError)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// isClean reports whether clean would return s unchanged, without
// allocating: most lines are.
func isClean(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || unsafeRune(r) {
			return false
		}
		i += size
	}
	return true
}

// unsafeRune reports the non-ASCII runes clean replaces. An invalid byte
// decodes as utf8.RuneError, which is replaced by itself.
func unsafeRune(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f: // C1, CSI (0x9b) among them
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069: // bidi overrides, isolates
		return true
	case r == 0x200e, r == 0x200f, r == 0x061c: // bidi marks
		return true
	case r == 0x2028, r == 0x2029: // line and paragraph separators
		return true
	case r == 0x200c, r == 0x200d: // (non-)joiners: emoji sequences and scripts need them
		return false
	case r >= 0xe0020 && r <= 0xe007f: // tags: subdivision flags are spelled with them
		return false
	case r >= 0x0600 && r <= 0x0605, r == 0x06dd, r == 0x070f, r == 0x0890, r == 0x0891,
		r == 0x08e2, r == 0x110bd, r == 0x110cd: // prepended concatenation marks: visible
		return false
	}
	// Any other format character prints as nothing: soft hyphen, zero width
	// space, word joiner, byte order mark, invisible operators, language
	// tag... With one, a peer hides text inside a message or makes two
	// names that print alike.
	return unicode.Is(unicode.Cf, r)
}

// cleanArg cleans one printf argument: strings, errors and Stringers; other
// values (numbers) print as they are.
func cleanArg(a any) any {
	switch v := a.(type) {
	case string:
		return clean(v)
	case error:
		return clean(v.Error())
	case fmt.Stringer:
		return clean(v.String())
	}
	return a
}
