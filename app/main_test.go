package app

import (
	"os"
	"testing"

	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/internal/logx"
	"github.com/resonance-im/resonance/internal/redistest"
)

func TestMain(m *testing.M) {
	// Kitex logs process-wide; keep its listen and shutdown lines out of test output.
	logx.RouteKitex(zerolog.Nop())
	// Main stops the Redis Cluster of the cluster tests, if one started.
	os.Exit(redistest.Main(m))
}
