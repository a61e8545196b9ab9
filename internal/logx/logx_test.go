package logx

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
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
		log := New(w, zerolog.InfoLevel, true)
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

func TestParseLevel(t *testing.T) {
	cases := []struct {
		in      string
		want    zerolog.Level
		wantErr bool
	}{
		{in: "", want: zerolog.InfoLevel},
		{in: "debug", want: zerolog.DebugLevel},
		{in: "DEBUG", want: zerolog.DebugLevel},
		{in: "Warn", want: zerolog.WarnLevel},
		{in: "error", want: zerolog.ErrorLevel},
		{in: "verbose", wantErr: true},
		{in: "trace", wantErr: true},
		{in: "warning", wantErr: true},
	}
	for _, tc := range cases {
		got, err := ParseLevel(tc.in)
		if tc.wantErr {
			if err == nil || !strings.Contains(err.Error(), `"`+tc.in+`"`) {
				t.Errorf("ParseLevel(%q) = %v, %v; want an error naming the value", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}
