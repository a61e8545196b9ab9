package chat

import "testing"

func TestClean(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "plain text stays", in: "hello, 世界 👋 café", want: "hello, 世界 👋 café"},
		{name: "line ends and tab", in: "a\nb\r\nc\td", want: "a␊b␍␊c␉d"},
		{name: "NUL, BEL, ESC and DEL", in: "\x00\x07\x1b[2J\x7f", want: "␀␇␛[2J␡"},
		{name: "C1 controls", in: "a\u0085b\u009b31m", want: "a\uFFFDb\uFFFD31m"},
		{name: "bidi overrides", in: "\u202a\u202b\u202c\u202d\u202e",
			want: "\uFFFD\uFFFD\uFFFD\uFFFD\uFFFD"},
		{name: "bidi isolates", in: "\u2066\u2067\u2068\u2069", want: "\uFFFD\uFFFD\uFFFD\uFFFD"},
		{name: "bidi marks", in: "\u200e\u200f\u061c", want: "\uFFFD\uFFFD\uFFFD"},
		{name: "line separators", in: "a\u2028b\u2029c", want: "a\uFFFDb\uFFFDc"},
		{name: "invalid UTF-8", in: "a\xffb\xc3", want: "a\uFFFDb\uFFFD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := clean(tt.in); got != tt.want {
				t.Fatalf("clean(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if isClean(tt.in) != (tt.in == tt.want) {
				t.Fatalf("isClean(%q) = %t", tt.in, isClean(tt.in))
			}
		})
	}
}
