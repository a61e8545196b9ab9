package app

import (
	"os"
	"testing"

	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/internal/logx"
)

func TestMain(m *testing.M) {
	// Kitex logs process-wide; keep its listen and shutdown lines out of test output.
	logx.RouteKitex(zerolog.Nop())
	os.Exit(m.Run())
}
