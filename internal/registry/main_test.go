package registry

import (
	"os"
	"testing"

	"github.com/resonance-im/resonance/internal/redistest"
)

// TestMain stops the Redis Cluster the Redis cases share, if one started.
func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }
