package logx

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Console logs written to a file or a buffer carry no colour codes.
func TestNew_NoColourOffTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	for _, w := range []interface{ Write([]byte) (int, error) }{&buf, f} {
		log := New(w, "info", true)
		log.Info().Str("k", "v").Msg("hello")
	}
	data, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"buffer": buf.String(), "file": string(data)} {
		if !strings.Contains(out, "hello") || strings.Contains(out, "\x1b[") {
			t.Fatalf("%s got %q, want the line without escape codes", name, out)
		}
	}
}
