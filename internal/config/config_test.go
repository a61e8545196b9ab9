package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type settings struct {
	addr    string
	workers int
	timeout time.Duration
}

func newFlags(s *settings) *flag.FlagSet {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.StringVar(&s.addr, "listen-addr", "0.0.0.0:7000", "")
	fs.IntVar(&s.workers, "workers", 8, "")
	fs.DurationVar(&s.timeout, "timeout", time.Second, "")
	return fs
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad_Precedence(t *testing.T) {
	file := writeFile(t, "listen-addr: 127.0.0.1:1\nworkers: 3\ntimeout: 5s\n")
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want settings
	}{
		{name: "defaults", want: settings{"0.0.0.0:7000", 8, time.Second}},
		{name: "file", args: []string{"--config", file},
			want: settings{"127.0.0.1:1", 3, 5 * time.Second}},
		{name: "env over file", env: map[string]string{"RESONANCE_WORKERS": "4"},
			args: []string{"-config=" + file}, want: settings{"127.0.0.1:1", 4, 5 * time.Second}},
		{name: "flag over env", env: map[string]string{"RESONANCE_WORKERS": "4"},
			args: []string{"--config", file, "--workers", "9"},
			want: settings{"127.0.0.1:1", 9, 5 * time.Second}},
		{name: "file from env", env: map[string]string{"RESONANCE_CONFIG": file},
			want: settings{"127.0.0.1:1", 3, 5 * time.Second}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var got settings
			if err := Load(newFlags(&got), tc.args); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestLoad_Errors(t *testing.T) {
	cases := []struct {
		name     string
		file     string
		env      map[string]string
		args     []string
		want     error
		wantText string // part of the message: where the value came from, and the value
	}{
		{name: "unknown key", file: "listen-adr: x\n", want: ErrUnknownKey,
			wantText: `"listen-adr" in`},
		{name: "misspelled key", file: "wrokers: 3\n", want: ErrUnknownKey,
			wantText: "(did you mean workers?)"},
		{name: "bad value in file", file: "workers: many\n",
			wantText: `invalid value "many" for workers`},
		{name: "bad value in env", env: map[string]string{"RESONANCE_TIMEOUT": "soon"},
			wantText: `invalid value "soon" for RESONANCE_TIMEOUT`},
		{name: "duration without its unit in file", file: "timeout: 30\n",
			wantText: `invalid value "30" for timeout: parse error (a duration needs its unit, e.g. 30s)`},
		{name: "duration without its unit in env", env: map[string]string{"RESONANCE_TIMEOUT": "1.5"},
			wantText: "(a duration needs its unit, e.g. 1.5s)"},
		{name: "not a map", file: "- a\n- b\n"},
		{name: "misspelled flag", args: []string{"--listen-adr", "x"},
			wantText: "flag provided but not defined: -listen-adr (did you mean --listen-addr?)"},
		{name: "unknown flag far from any", args: []string{"-zzzzzz"},
			wantText: "flag provided but not defined: -zzzzzz"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			args := tc.args
			if tc.file != "" {
				args = append([]string{"--config", writeFile(t, tc.file)}, args...)
			}
			var s settings
			err := Load(newFlags(&s), args)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Fatalf("err = %v, want it to say %s", err, tc.wantText)
			}
		})
	}
}
