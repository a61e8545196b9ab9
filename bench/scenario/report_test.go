package scenario

import (
	"testing"

	"github.com/resonance-im/resonance/internal/syncbuf"
)

func TestProgress_LastLineNotRepeatedOffATerminal(t *testing.T) {
	var b syncbuf.Buffer
	stop := make(chan struct{})
	second := make(chan struct{})
	n := 0 // only progress's goroutine calls the line func
	wait := progress(&b, stop, func() string {
		n++
		switch n {
		case 1:
			return "first"
		case 2:
			close(second)
		}
		return "same"
	})
	<-second // the second tick is being printed
	close(stop)
	wait()
	if got := b.String(); got != "first\nsame\n" {
		t.Fatalf("progress wrote %q, want the two ticks and no repeat of the second", got)
	}
}
