package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/resonance-im/resonance/client/clienttest"
)

func TestDispatch(t *testing.T) {
	s, err := clienttest.Start(clienttest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{name: "no scenario", args: nil, wantCode: 2, wantErr: "usage: bench"},
		{name: "help asked for", args: []string{"--help"}, wantCode: 0, wantOut: "usage: bench"},
		{name: "unknown scenario", args: []string{"nope"}, wantCode: 2,
			wantErr: `unknown scenario "nope"`},
		{name: "bad flag", args: []string{"smoke", "--bogus"}, wantCode: 2, wantErr: "bogus"},
		{name: "bad config", args: []string{"smoke", "--users", "1"}, wantCode: 2,
			wantErr: "at least 2"},
		{name: "group bad config", args: []string{"group", "--size", "1"}, wantCode: 2,
			wantErr: "at least 2 members"},
		{name: "idle bad config", args: []string{"idle", "--conns", "0"}, wantCode: 2,
			wantErr: "--conns must be above 0"},
		// Port 17999 is in the range these tests may use and nothing listens
		// there: a bench that dialled it would fail with 1, not 2.
		{name: "idle metrics url not told", args: []string{"idle", "--addr", "127.0.0.1:17999"},
			wantCode: 2, wantErr: `--metrics-url is required with --addr 127.0.0.1:17999`},
		{name: "push address not told", args: []string{"push", "--addr", "127.0.0.1:17999",
			"--metrics-url", "http://127.0.0.1:17997/metrics"}, wantCode: 2,
			wantErr: "--push-addr is required"},
		{name: "push metrics url not told", args: []string{"push", "--addr", "127.0.0.1:17999",
			"--push-addr", "127.0.0.1:17998"}, wantCode: 2, wantErr: "--metrics-url is required"},
		{name: "connect bad config", args: []string{"connect", "--conns", "0"}, wantCode: 2,
			wantErr: "--conns must be above 0"},
		{name: "connect lists differ", args: []string{"connect", "--addr", "a:1,b:2",
			"--pid", "7"}, wantCode: 2, wantErr: "--pid lists 1 values for 2 gateways"},
		// No process has this id: pid_max is at most 2^22.
		{name: "pid of no process", args: []string{"chat", "--pid", "2147483647"},
			wantCode: 2, wantErr: "no process 2147483647"},
		{name: "pid not a number", args: []string{"echo", "--pid", "server"},
			wantCode: 2, wantErr: "not a process id"},
		{name: "connect pid of no process", args: []string{"connect", "--addr", "a:1",
			"--pid", "2147483647"}, wantCode: 2, wantErr: "no process 2147483647"},
		{name: "connect cluster and addr", args: []string{"connect", "--cluster-gateways", "2",
			"--addr", "a:1"}, wantCode: 2, wantErr: "drop --addr"},
		{
			name: "connect passes",
			args: []string{"connect", "--addr", s.Addr(), "--conns", "20", "--hold", "0s",
				"--relogin", "--json"},
			wantCode: 0,
			wantOut:  `"scenario": "connect"`,
		},
		{
			name:     "smoke passes",
			args:     []string{"smoke", "--addr", s.Addr(), "--users", "3", "--messages", "4"},
			wantCode: 0,
			wantOut:  "smoke: users=3 messages=12 acked=12 delivered=12 lost=0 duplicated=0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut strings.Builder
			code := dispatch(context.Background(), tt.args, &out, &errOut)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tt.wantCode, errOut.String())
			}
			if !strings.Contains(out.String(), tt.wantOut) ||
				!strings.Contains(errOut.String(), tt.wantErr) {
				t.Fatalf("stdout %q, stderr %q", out.String(), errOut.String())
			}
		})
	}
}

// deadArgs point each scenario at ports of this test's range where nothing
// listens, and chaos and scale at no binary, so that a number the bench
// failed to refuse ends in a quick dial error (exit 1), never in a run.
func deadArgs(scenario string) []string {
	const addr, metrics = "127.0.0.1:24901", "http://127.0.0.1:24902/metrics"
	switch scenario {
	case "chaos", "scale":
		return []string{"--bin", "/nonexistent/resonance",
			"--db-dsn", "root@tcp(127.0.0.1:24904)/x", "--redis-addr", "127.0.0.1:24905",
			"--nats-url", "nats://127.0.0.1:24906"}
	case "idle":
		return []string{"--addr", addr, "--metrics-url", metrics}
	case "push":
		return []string{"--addr", addr, "--push-addr", "127.0.0.1:24903",
			"--metrics-url", metrics}
	}
	return []string{"--addr", addr}
}

// zeroMeans lists the numeric flags whose help gives 0 a meaning: none
// held, no warm-up, no cluster, or a default computed from other flags.
var zeroMeans = map[string][]string{
	"connect": {"hold", "warmup", "cluster-gateways"},
	"echo":    {"users"},
	"idle":    {"users", "warmup"},
	"push":    {"window"},
}

// numericFlag is a flag of a scenario and a negative value of its type.
type numericFlag struct{ name, negative string }

// numericFlags lists the int, duration and float flags of scenario, read
// from its -h, so that a flag added later is checked too.
func numericFlags(t *testing.T, scenario string) []numericFlag {
	t.Helper()
	var out, errOut strings.Builder
	if code := dispatch(context.Background(), []string{scenario, "-h"}, &out,
		&errOut); code != 0 {
		t.Fatalf("%s -h: exit %d", scenario, code)
	}
	var flags []numericFlag
	line := regexp.MustCompile(`(?m)^  -(\S+) (int|duration|float)$`)
	for _, m := range line.FindAllStringSubmatch(errOut.String(), -1) {
		f := numericFlag{name: m[1], negative: "-1"}
		if m[2] == "duration" {
			f.negative = "-1s"
		}
		flags = append(flags, f)
	}
	return flags
}

// Every numeric flag of every scenario refuses a negative value, and 0
// unless its help gives 0 a meaning, naming the flag. The scenarios' configs
// take zero for their default: smoke --messages 0 sent 50 messages a user,
// chat --rate 0 offered 1000 a second, and negatives went the same way.
func TestDispatch_RefusesNumbersTakenForTheDefault(t *testing.T) {
	for name := range commands {
		flags := numericFlags(t, name)
		if len(flags) == 0 {
			t.Fatalf("%s: no numeric flag found in its -h", name)
		}
		for _, f := range flags {
			for _, v := range []string{"0", f.negative} {
				if v == "0" && slices.Contains(zeroMeans[name], f.name) {
					continue
				}
				t.Run(fmt.Sprintf("%s/--%s=%s", name, f.name, v), func(t *testing.T) {
					args := append(append([]string{name}, deadArgs(name)...), "--"+f.name, v)
					var out, errOut strings.Builder
					code := dispatch(context.Background(), args, &out, &errOut)
					want := fmt.Sprintf("--%s must", f.name)
					if code != 2 || !strings.Contains(errOut.String(), want) {
						t.Fatalf("exit %d, stderr %q; want 2 and %q", code, errOut.String(), want)
					}
				})
			}
		}
	}
}

// The flags whose 0 has a meaning take it: idle and push with their
// defaults (0 for --users, --warmup and --window) get as far as dialling.
func TestDispatch_TakesZeroWhereItMeansSomething(t *testing.T) {
	for _, name := range []string{"idle", "push"} {
		t.Run(name, func(t *testing.T) {
			var out, errOut strings.Builder
			args := append([]string{name}, deadArgs(name)...)
			if code := dispatch(context.Background(), args, &out, &errOut); code != 1 {
				t.Fatalf("exit %d, want 1 (the dial fails); stderr %q", code, errOut.String())
			}
		})
	}
}

func TestResolveMetricsURL(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		optional bool
		want     string // the URL; empty with wantErr
		wantErr  string
	}{
		{name: "default addr", want: "http://127.0.0.1:9100/metrics"},
		{name: "other host, default port", args: []string{"--addr", "10.1.2.3:7000"},
			want: "http://10.1.2.3:9100/metrics"},
		{name: "unspecified host", args: []string{"--addr", ":7000"},
			want: "http://127.0.0.1:9100/metrics"},
		{name: "ipv6 host", args: []string{"--addr", "[::1]:7000"},
			want: "http://[::1]:9100/metrics"},
		{name: "other port", args: []string{"--addr", "127.0.0.1:7800"},
			wantErr: "--metrics-url is required with --addr 127.0.0.1:7800"},
		{name: "other port, optional page", args: []string{"--addr", "127.0.0.1:7800"},
			optional: true, wantErr: `or --metrics-url "" to read none`},
		{name: "no port", args: []string{"--addr", "gateway"}, wantErr: "is required"},
		{name: "given", args: []string{"--addr", "127.0.0.1:7800", "--metrics-url",
			"http://127.0.0.1:9800/metrics"}, want: "http://127.0.0.1:9800/metrics"},
		{name: "given empty", args: []string{"--addr", "127.0.0.1:7000", "--metrics-url", ""},
			optional: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			addr := fs.String("addr", "127.0.0.1:7000", "")
			url := fs.String("metrics-url", "", "")
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			err := resolveMetricsURL(fs, *addr, url, tt.optional)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || *url != tt.want {
				t.Fatalf("url %q, err %v; want %q", *url, err, tt.want)
			}
		})
	}
}

// A value the scenario refuses past the sign check names its flag, as the
// sign check does: smoke --users 1 said "smoke needs at least 2 users", and
// chat and group lumped several flags into one sentence.
func TestDispatch_BadConfigNamesItsFlag(t *testing.T) {
	tests := []struct {
		scenario string
		args     []string
		wantErr  string
	}{
		{scenario: "smoke", args: []string{"--users", "1"}, wantErr: "--users must be at least 2"},
		{scenario: "smoke", args: []string{"--addr", ""}, wantErr: "--addr"},
		{scenario: "echo", args: []string{"--addr", ""}, wantErr: "--addr"},
		{scenario: "chat", args: []string{"--users", "1"}, wantErr: "--users must be even"},
		{scenario: "chat", args: []string{"--users", "3"}, wantErr: "--users must be even"},
		{scenario: "chat", args: []string{"--addr", ""}, wantErr: "--addr"},
		{scenario: "group", args: []string{"--size", "1"}, wantErr: "--size must be at least 2"},
		{scenario: "group", args: []string{"--online", "1.5"},
			wantErr: "--online must be at most 1"},
		{scenario: "group", args: []string{"--addr", ""}, wantErr: "--addr"},
		{scenario: "idle", args: []string{"--addr", "", "--metrics-url", ""},
			wantErr: "--addr"},
		{scenario: "connect", args: []string{"--addr", ""}, wantErr: "--addr"},
		{scenario: "connect", args: []string{"--conns", "100000", "--per-worker", "1",
			"--workers", "1"}, wantErr: "--per-worker"},
		{scenario: "connect", args: []string{"--conns", "100000", "--per-source", "1"},
			wantErr: "--per-source"},
		{scenario: "chaos", args: []string{"--users", "1"}, wantErr: "--users must be at least 2"},
		{scenario: "scale", args: []string{"--users", "1"}, wantErr: "--users must be at least 2"},
		{scenario: "scale", args: []string{"--messages", "1"},
			wantErr: "--messages must be at least 2"},
	}
	for _, tt := range tests {
		t.Run(tt.scenario+" "+strings.Join(tt.args, " "), func(t *testing.T) {
			args := append(append([]string{tt.scenario}, deadArgs(tt.scenario)...), tt.args...)
			var out, errOut strings.Builder
			code := dispatch(context.Background(), args, &out, &errOut)
			if code != 2 || !strings.Contains(errOut.String(), tt.wantErr) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, errOut.String(), tt.wantErr)
			}
		})
	}
}

func TestProfileCPU_WritesTheProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	var errOut strings.Builder
	stop := profileCPU(path, &errOut)
	stop()
	st, err := os.Stat(path)
	if err != nil || st.Size() == 0 || errOut.Len() != 0 {
		t.Fatalf("profile %s: %v, %v; stderr %q", path, st, err, errOut.String())
	}
	bad := filepath.Join(t.TempDir(), "missing", "cpu.pprof")
	profileCPU(bad, &errOut)()
	if !strings.Contains(errOut.String(), cpuProfileEnv) {
		t.Fatalf("an unwritable path said %q, want it to name %s", errOut.String(), cpuProfileEnv)
	}
}
