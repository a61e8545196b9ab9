package chat

import (
	"context"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/resonance-im/resonance/internal/syncbuf"
)

// A terminal hands over at most linuxLineMax bytes of a line and drops
// the rest, so a line of exactly that length is refused with a notice
// rather than sent as if it were the whole text; shorter lines, and lines
// from input that is not a terminal, go as typed.
func TestReadLines_RefusesALineATerminalMayHaveCut(t *testing.T) {
	cut := strings.Repeat("x", linuxLineMax)
	below := strings.Repeat("y", linuxLineMax-1)
	input := cut + "\n" + below + "\nshort\n"

	tests := []struct {
		name  string
		cutAt int
		want  []string
	}{
		{name: "terminal", cutAt: linuxLineMax,
			want: []string{mayBeCutPrefix + "4095", below, "short"}},
		{name: "pipe", cutAt: 0, want: []string{cut, below, "short"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			next := make(chan readMode, 1)
			for line := range readLines(context.Background(), strings.NewReader(input), maxLine,
				tt.cutAt, next) {
				got = append(got, line)
				next <- readPlain
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d lines, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("line %d = %.50q (%d bytes), want %.50q (%d bytes)",
						i, got[i], len(got[i]), tt.want[i], len(tt.want[i]))
				}
			}
		})
	}
}

// The notice says why the line was not sent and how to send longer text.
func TestHandleLine_ExplainsALineATerminalMayHaveCut(t *testing.T) {
	var out syncbuf.Buffer
	s := newSession(config{}, &out)
	if err := s.handleLine(context.Background(), mayBeCutPrefix+"4095"); err != nil {
		t.Fatalf("handleLine = %v", err)
	}
	want := "! not sent: a line of 4095 bytes is the terminal's limit, so it may have been cut; " +
		"send longer text from a file (resonance chat ... < file)\n"
	if got := out.String(); got != want {
		t.Fatalf("output %q, want %q", got, want)
	}
}

// Only a terminal cuts lines: a pipe's lines come whole.
func TestCutLineAt_PipeIsNotATerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if got := cutLineAt(r); got != 0 {
		t.Fatalf("cutLineAt(pipe) = %d, want 0", got)
	}
	if got := cutLineAt(strings.NewReader("")); got != 0 {
		t.Fatalf("cutLineAt(strings.Reader) = %d, want 0", got)
	}
}

// linuxLineMax is the line limit of Linux's terminal driver.
const linuxLineMax = 4095

// A terminal (here the master side of a pseudo-terminal) may cut lines at
// its system's limit.
func TestCutLineAt_Terminal(t *testing.T) {
	want := terminalLineLimit(runtime.GOOS)
	if want == 0 {
		t.Skipf("no known terminal line limit on %s", runtime.GOOS)
	}
	f, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer f.Close()
	if got := cutLineAt(f); got != want {
		t.Fatalf("cutLineAt(terminal) = %d, want %d", got, want)
	}
}

// Each Unix the client builds for has its own terminal line limit: Linux
// passes on 4095 bytes of a line; macOS and the BSDs that keep the classic
// driver hold 1024 bytes of input, the line's end included, so a line that
// comes through has at most 1023. Windows has no such driver here, and
// FreeBSD sizes its input queue by the terminal's speed, which no constant
// states.
func TestTerminalLineLimit_PerSystem(t *testing.T) {
	tests := []struct {
		goos string
		want int
	}{
		{goos: "linux", want: 4095},
		{goos: "android", want: 4095},
		{goos: "darwin", want: 1023},
		{goos: "netbsd", want: 1023},
		{goos: "openbsd", want: 1023},
		{goos: "dragonfly", want: 1023},
		{goos: "freebsd", want: 0},
		{goos: "windows", want: 0},
	}
	for _, tt := range tests {
		if got := terminalLineLimit(tt.goos); got != tt.want {
			t.Errorf("terminalLineLimit(%q) = %d, want %d", tt.goos, got, tt.want)
		}
	}
}
