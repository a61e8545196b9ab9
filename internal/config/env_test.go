package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// A RESONANCE_ variable that sets no flag is warned about, with the flag it
// most likely meant when one is near, since it would be ignored without a
// word; the program's own variables and the tests' are not.
func TestUnknownEnv_WarnsOfVariablesThatSetNoFlag(t *testing.T) {
	var s settings
	fs := newFlags(&s)
	fs.String(FileFlag, "", "")
	environ := []string{
		"RESONANCE_LISTEN_ADR=127.0.0.1:1", // near listen-addr
		"RESONANCE_WORKERS=3",              // a flag
		"RESONANCE_CONFIG=c.yaml",          // the file's flag
		"RESONANCE_PASSWORD=secret",        // resonance chat's own
		"RESONANCE_TEST_REDIS_ADDR=x",      // a test's
		"RESONANCE_QUEUE_DEPTH=9",          // near nothing
		"PATH=/bin",
		"RESONANCE_=1",
	}
	got := UnknownEnv(fs, environ)
	want := []string{
		"RESONANCE_LISTEN_ADR matches no flag (did you mean RESONANCE_LISTEN_ADDR, " +
			"--listen-addr?); ignored",
		"RESONANCE_QUEUE_DEPTH matches no flag; ignored",
		"RESONANCE_ matches no flag; ignored",
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("UnknownEnv =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// An error that names a flag set by the environment or the file says so:
// the user looking at the command line would not find the value there.
func TestLoadOrigins_ExplainNamesWhereAValueCameFrom(t *testing.T) {
	file := writeFile(t, "workers: 3\n")
	t.Setenv("RESONANCE_LISTEN_ADDR", "127.0.0.1:bad")
	t.Setenv("RESONANCE_TIMEOUT", "5s")
	var s settings
	origins, err := LoadOrigins(newFlags(&s), []string{"--config", file, "--timeout", "1s"})
	if err != nil {
		t.Fatal(err)
	}
	errBad := errors.New("config: bad")
	cases := []struct {
		name, msg, want string
	}{
		{name: "environment", msg: `--listen-addr "127.0.0.1:bad": bad port`,
			want: `--listen-addr "127.0.0.1:bad": bad port (--listen-addr came from ` +
				`RESONANCE_LISTEN_ADDR)`},
		{name: "file", msg: "--workers 3 is too few",
			want: "--workers 3 is too few (--workers came from " + file + ")"},
		{name: "command line over the environment", msg: "--timeout 1s is too short",
			want: "--timeout 1s is too short"},
		{name: "two flags", msg: "--workers 3 cannot serve --listen-addr",
			want: "--workers 3 cannot serve --listen-addr (--workers came from " + file +
				"; --listen-addr came from RESONANCE_LISTEN_ADDR)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := origins.Explain(fmt.Errorf("%w: %s", errBad, tc.msg))
			if !errors.Is(err, errBad) || err.Error() != "config: bad: "+tc.want {
				t.Fatalf("Explain = %v, want %q", err, "config: bad: "+tc.want)
			}
		})
	}
	if origins.Explain(nil) != nil {
		t.Fatal("Explain(nil) is not nil")
	}
}
