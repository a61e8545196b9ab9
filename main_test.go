package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/app"
)

// readyServer answers 200 on /custom/readyz only, so a probe that falls back
// to another URL fails.
func readyServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/custom/readyz" {
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestRun_ProbeTakesTheURLAsArgument(t *testing.T) {
	srv := readyServer(t)
	url := srv.URL + "/custom/readyz"
	cases := []struct {
		name string
		args []string
	}{
		{name: "argument", args: []string{"probe", url}},
		{name: "flag after argument", args: []string{"probe", url, "--timeout", "2s"}},
		{name: "flag before argument", args: []string{"probe", "--timeout", "2s", url}},
		{name: "after --", args: []string{"probe", "--", url}},
		{name: "flag", args: []string{"probe", "--url", url}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if code := run(tc.args, &stderr); code != 0 {
				t.Fatalf("run %q = %d, want 0; stderr:\n%s", tc.args, code, &stderr)
			}
		})
	}
}

func TestRun_RejectsUnexpectedArguments(t *testing.T) {
	// Should an argument slip through, the process fails its validation
	// instead of starting anything.
	t.Setenv("RESONANCE_HTTP_LISTEN", "not-an-address")
	t.Setenv("RESONANCE_ADMIN_TOKEN", "") // admin: no token
	srv := readyServer(t)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{name: "all, flags after", args: []string{"all", "--log-level", "info", "foo", "--pprof"},
			want: `unexpected argument "foo"`},
		{name: "default command", args: []string{"--log-level", "info", "foo"},
			want: `unexpected argument "foo"`},
		{name: "gateway", args: []string{"gateway", "foo"}, want: `unexpected argument "foo"`},
		{name: "logic", args: []string{"logic", "--", "foo"}, want: `unexpected argument "foo"`},
		{name: "task", args: []string{"task", "foo"}, want: `unexpected argument "foo"`},
		{name: "probe, two URLs", args: []string{"probe", srv.URL, srv.URL + "/b"},
			want: `unexpected argument "` + srv.URL + `/b"`},
		{name: "probe, URL twice", args: []string{"probe", "--url", srv.URL, srv.URL},
			want: "both as an argument and with --url"},
		{name: "probe, no timeout", args: []string{"probe", "--timeout", "0s", srv.URL},
			want: "--timeout 0s: must be positive"},
		{name: "probe, negative timeout", args: []string{"probe", "--timeout", "-1s", srv.URL},
			want: "--timeout -1s: must be positive"},
		{name: "backup, no target", args: []string{"backup", "--data-dir", "x"},
			want: "--to is required"},
		{name: "backup, target as an argument", args: []string{"backup", "/tmp/b"},
			want: `unexpected argument "/tmp/b": give the target as --to`},
		{name: "admin, no action", args: []string{"admin"}, want: "no action"},
		{name: "admin, unknown action", args: []string{"admin", "ban", "eve"},
			want: `unknown action "ban"`},
		{name: "admin, no username", args: []string{"admin", "suspend"},
			want: "suspend needs a username"},
		{name: "admin, two usernames", args: []string{"admin", "show", "eve", "bob"},
			want: `unexpected argument "bob"`},
		{name: "admin, reason off suspend", args: []string{"admin", "show", "eve", "--reason",
			"x"}, want: "--reason is for suspend, not show"},
		{name: "admin, no token", args: []string{"admin", "show", "eve"},
			want: "no admin token"},
		{name: "version, argument", args: []string{"version", "x"},
			want: `unexpected argument "x"`},
		{name: "help, two commands", args: []string{"help", "all", "task"},
			want: `unexpected argument "task"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(tc.args, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("run %q = %d, stderr %q; want 2 saying %s", tc.args, code, &stderr,
					tc.want)
			}
		})
	}
}

// TestRun_BadFlagPrintsErrorAndHint: the flag list is for -h; after a
// mistake the mistake is what the user needs to see.
func TestRun_BadFlagPrintsErrorAndHint(t *testing.T) {
	cases := []struct {
		name     string
		args     []string
		env      map[string]string
		wantCode int
		want     []string // the lines of stderr
	}{
		{name: "unknown flag", args: []string{"gateway", "--bogus"}, wantCode: 2,
			want: []string{"resonance gateway: flag provided but not defined: -bogus",
				"run 'resonance gateway -h' for flags"}},
		{name: "default command", args: []string{"--max-conns", "many"}, wantCode: 2,
			want: []string{`resonance all: invalid value "many" for flag -max-conns: parse error`,
				"run 'resonance all -h' for flags"}},
		{name: "probe", args: []string{"probe", "--timeout", "soon"}, wantCode: 2,
			want: []string{`resonance probe: invalid value "soon" for flag -timeout: parse error`,
				"run 'resonance probe -h' for flags"}},
		{name: "unknown command", args: []string{"serve"}, wantCode: 2,
			want: []string{`resonance: unknown command "serve"`,
				"run 'resonance help' for commands"}},
		// A value from the environment is not on the command line: the
		// error says where it is.
		{name: "bad value from the environment", args: []string{"gateway",
			"--internal-secret", "s"}, env: map[string]string{"RESONANCE_ADDR": "127.0.0.1:bad"},
			wantCode: 2, want: []string{`resonance gateway: app: invalid configuration: ` +
				`--addr "127.0.0.1:bad": port "bad" is not a number from 0 to 65535 ` +
				`(--addr came from RESONANCE_ADDR)`, "run 'resonance gateway -h' for flags"}},
		// A misspelled variable is not refused, as other tools may set
		// variables of their own, but would be ignored without a word.
		{name: "misspelled variable", args: []string{"task", "--redis-addr", "127.0.0.1:1"},
			env:      map[string]string{"RESONANCE_NATS_UR": "nats://127.0.0.1:1"},
			wantCode: 2, want: []string{"resonance task: warning: RESONANCE_NATS_UR matches no " +
				"flag (did you mean RESONANCE_NATS_URL, --nats-url?); ignored",
				"resonance task: app: invalid configuration: task needs --nats-url " +
					"(embedded NATS is for all)", "run 'resonance task -h' for flags"}},
		// Another role's variable is no misspelling: the deploy files set
		// one environment (a ConfigMap) for every role.
		{name: "another role's variable", args: []string{"task", "--redis-addr", "127.0.0.1:1"},
			env: map[string]string{"RESONANCE_DB_DRIVER": "mysql",
				"RESONANCE_PUSH_LISTEN": "0.0.0.0:7200"},
			wantCode: 2, want: []string{"resonance task: app: invalid configuration: task needs " +
				"--nats-url (embedded NATS is for all)", "run 'resonance task -h' for flags"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var stderr bytes.Buffer
			code := run(tc.args, &stderr)
			got := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			if code != tc.wantCode || strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("run %q = %d, stderr:\n%s\nwant %d and:\n%s", tc.args, code, &stderr,
					tc.wantCode, strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestRun_HelpListsTheFlags(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{args: []string{"gateway", "-h"}, want: "-frame-rate"},
		{args: []string{"help", "gateway"}, want: "-frame-rate"},
		{args: []string{"probe", "--help"}, want: "-timeout"},
		{args: []string{"help"}, want: "commands:"},
		{args: []string{"help", "--help"}, want: "commands:"},
		// Alone, as a newcomer first types them: the commands, chat among
		// them, not the flags of the default command.
		{args: []string{"--help"}, want: "commands:"},
		{args: []string{"-h"}, want: "commands:"},
		{args: []string{"all", "--help"}, want: "-data-dir"},
		// Every command the usage lists has a help of its own.
		{args: []string{"help", "version"}, want: "usage: resonance version"},
		{args: []string{"version", "-h"}, want: "usage: resonance version"},
	}
	for _, tc := range cases {
		var stderr bytes.Buffer
		if code := run(tc.args, &stderr); code != 0 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("run %q = %d, stderr:\n%s\nwant 0 listing %s", tc.args, code, &stderr, tc.want)
		}
	}
}

// TestREADME_LayoutNamesEveryCommand keeps the README's layout table in step
// with the commands of the usage text.
func TestREADME_LayoutNamesEveryCommand(t *testing.T) {
	raw, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var row string
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "| `main.go` |") {
			row = line
		}
	}
	_, commands, _ := strings.Cut(usage, "commands:\n")
	commands, _, _ = strings.Cut(commands, "\n\n")
	for _, line := range strings.Split(commands, "\n") {
		if cmd := strings.Fields(line)[0]; !strings.Contains(row, "`"+cmd+"`") {
			t.Errorf("README's layout row of main.go does not name %s: %q", cmd, row)
		}
	}
}

func TestSetProcs_EnvironmentRulesUnlessTheFlagIsGiven(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(before) })
	log := zerolog.Nop()
	t.Setenv("GOMAXPROCS", "") // unset for setProcs, whatever the test runs under

	cfg := app.Config{Role: app.RoleAll}
	runtime.GOMAXPROCS(3) // the usable CPUs, as the runtime found them
	setProcs(&cfg, log)
	if got, want := runtime.GOMAXPROCS(0), 3+3+4; got != want {
		t.Errorf("no environment: GOMAXPROCS %d, want 3 CPUs + 3 loops + 4 = %d", got, want)
	}
	if cfg.Gateway.NumEventLoop != 3 {
		t.Errorf("gateway event loops %d, want one per usable CPU, 3", cfg.Gateway.NumEventLoop)
	}

	t.Setenv("GOMAXPROCS", "3")
	runtime.GOMAXPROCS(3) // what the runtime read at start
	cfg = app.Config{Role: app.RoleAll}
	setProcs(&cfg, log)
	if got := runtime.GOMAXPROCS(0); got != 3 {
		t.Errorf("GOMAXPROCS=3 in the environment: got %d, want it left at 3", got)
	}
	if want := min(3, runtime.NumCPU()); cfg.Gateway.NumEventLoop != want {
		t.Errorf("GOMAXPROCS=3 in the environment: %d event loops, want %d (at most the CPUs)",
			cfg.Gateway.NumEventLoop, want)
	}

	cfg.MaxProcs = 5
	setProcs(&cfg, log)
	if got := runtime.GOMAXPROCS(0); got != 5 {
		t.Errorf("--max-procs 5 over the environment: got %d", got)
	}
}
