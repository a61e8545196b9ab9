package app

import (
	"flag"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/resonance-im/resonance/internal/config"
)

// TestDeployExamples_LoadAsFlags keeps deploy/*.example.yaml in step with the
// flags: a renamed or removed flag fails here, not in an operator's hands.
func TestDeployExamples_LoadAsFlags(t *testing.T) {
	files, err := filepath.Glob("../deploy/*.example.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example files: %v", err)
	}
	for _, f := range files {
		role := Role(strings.TrimSuffix(filepath.Base(f), ".example.yaml"))
		t.Run(string(role), func(t *testing.T) {
			var cfg Config
			fs := flag.NewFlagSet(string(role), flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			cfg.Bind(fs, role)
			if err := config.Load(fs, []string{"--config", f}); err != nil {
				t.Fatalf("load %s: %v", f, err)
			}
			if err := cfg.validate(); err != nil {
				t.Fatalf("validate %s: %v", f, err)
			}
		})
	}
}
