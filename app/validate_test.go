package app

import (
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// loadArgs runs Load for role on args, as main does.
func loadArgs(t *testing.T, role Role, args ...string) (Config, error) {
	t.Helper()
	fs := flag.NewFlagSet(string(role), flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return Load(fs, role, args)
}

// aloneArgs are what a role alone needs besides a case's flags.
var aloneArgs = map[Role][]string{
	RoleLogic: {"--nats-url", "nats://127.0.0.1:1", "--redis-addr", "127.0.0.1:1",
		"--internal-secret", "s"},
	RoleTask:    {"--nats-url", "nats://127.0.0.1:1", "--redis-addr", "127.0.0.1:1"},
	RoleGateway: {"--internal-secret", "s"},
}

func TestLoad_RefusesBadValues(t *testing.T) {
	cases := []struct {
		name string
		role Role // default RoleAll
		args []string
		env  map[string]string
		want []string // parts of the error: the flag and the value
	}{
		{name: "unknown level", args: []string{"--log-level", "verbose"},
			want: []string{"--log-level", `"verbose"`}},
		{name: "unknown format", args: []string{"--log-format", "xml"},
			want: []string{"--log-format", `"xml"`}},
		{name: "negative content", args: []string{"--max-content", "-1"},
			want: []string{"--max-content -1", "negative"}},
		{name: "negative token ttl", args: []string{"--token-ttl", "-1h"},
			want: []string{"--token-ttl -1h0m0s"}},
		{name: "negative from the environment",
			env: map[string]string{"RESONANCE_MAX_PENDING": "-3"}, want: []string{"--max-pending -3"}},
		{name: "heartbeat interval no client can keep",
			args: []string{"--heartbeat-interval", "1ms"},
			want: []string{"--heartbeat-interval 1ms", "under 1s"}},
		{name: "login timeout no client can meet", args: []string{"--login-timeout", "500ms"},
			want: []string{"--login-timeout 500ms"}},
		{name: "negative max procs", args: []string{"--max-procs", "-1"},
			want: []string{"--max-procs -1"}},
		{name: "negative redis db", args: []string{"--redis-db", "-1"},
			want: []string{"--redis-db -1"}},
		{name: "negative task workers", args: []string{"--task-workers", "-2"},
			want: []string{"--task-workers -2"}},
		{name: "negative notify timeout, notifications off",
			args: []string{"--notify-timeout", "-1s"}, want: []string{"--notify-timeout -1s"}},
		{name: "body under the default content", args: []string{"--max-body", "10"},
			want: []string{"--max-body 10", "--max-content 16384"}},
		{name: "content over the default body", args: []string{"--max-content", "70000"},
			want: []string{"--max-body 65536", "--max-content 70000"}},
		{name: "gateway alone, tiny body", role: RoleGateway, args: []string{"--max-body", "10"},
			want: []string{"--max-body 10", "logic's default --max-content 16384"}},
		{name: "client address", args: []string{"--addr", "garbage"},
			want: []string{"--addr", `"garbage"`}},
		// Ports moved as the README says, the host left out: the fix is
		// said, not only "missing port in address", which it is not.
		{name: "a port alone", args: []string{"--addr", "7001"},
			want: []string{"--addr", `"7001"`, "127.0.0.1:7001", ":7001"}},
		{name: "a port alone, logic's", args: []string{"--logic-listen", "7101"},
			want: []string{"--logic-listen", "127.0.0.1:7101"}},
		{name: "port not a number", args: []string{"--http-listen", "127.0.0.1:metrics"},
			want: []string{"--http-listen", `"127.0.0.1:metrics"`}},
		{name: "logic address of a gateway", role: RoleGateway,
			args: []string{"--logic-addrs", "127.0.0.1:7100,logic"},
			want: []string{"--logic-addrs", `"logic"`}},
		{name: "nats scheme", role: RoleTask, args: []string{"--nats-url", "http://127.0.0.1:4222"},
			want: []string{"--nats-url", "http://127.0.0.1:4222"}},
		{name: "web socket url", args: []string{"--web-ws-url", "http://127.0.0.1:7000/"},
			want: []string{"--web-ws-url", `"http://127.0.0.1:7000/"`}},
		{name: "register ttl under the gateway's floor", args: []string{"--register-ttl", "1ms"},
			want: []string{"register ttl 1ms"}},
		{name: "push timeout over task's ack wait", args: []string{"--task-push-timeout", "1m"},
			want: []string{"PushTimeout 1m0s"}},
		{name: "webhook scheme", args: []string{"--notify-webhook-url", "ftp://hooks",
			"--notify-secret", "s"}, want: []string{"--notify-webhook-url", `"ftp://hooks"`}},
		{name: "webhook without a secret", role: RoleTask,
			args: []string{"--notify-webhook-url", "http://127.0.0.1:9/hook"},
			want: []string{"--notify-secret", "--notify-webhook-url"}},
		{name: "secret without a webhook", role: RoleTask, args: []string{"--notify-secret", "s"},
			want: []string{"--notify-secret", "--notify-webhook-url"}},
		{name: "hash memory", args: []string{"--hash-memory-kib", "4"},
			want: []string{"memory 4 KiB"}},
		{name: "database driver", args: []string{"--db-driver", "postgres"},
			want: []string{`"postgres"`}},
		{name: "empty data dir", args: []string{"--data-dir", ""},
			want: []string{"--data-dir is empty"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			role := tc.role
			if role == "" {
				role = RoleAll
			}
			_, err := loadArgs(t, role, append(aloneArgs[role], tc.args...)...)
			if err == nil {
				t.Fatalf("%s %q loaded; want an error", role, tc.args)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("err = %v; want it to say %s", err, w)
				}
			}
		})
	}
}

func TestLoad_AcceptsMeaningfulValues(t *testing.T) {
	cases := []struct {
		name string
		role Role
		args []string
	}{
		{name: "level in capitals", role: RoleAll, args: []string{"--log-level", "DEBUG",
			"--log-format", "JSON"}},
		{name: "no limits", role: RoleAll, args: []string{"--frame-rate", "-1", "--max-conns", "-1",
			"--accept-rate", "-1", "--notify-window", "-1s", "--presence-recheck", "-1s"}},
		{name: "small body for small content", role: RoleAll,
			args: []string{"--max-body", "2000", "--max-content", "1000"}},
		{name: "nats seeds with credentials", role: RoleLogic,
			args: []string{"--nats-url",
				"nats://u:p@10.0.0.1:4222, tls://10.0.0.2, 10.0.0.3:4222"}},
		{name: "logic alone ignores the body limit", role: RoleLogic,
			args: []string{"--max-content", "100000"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append(aloneArgs[tc.role], tc.args...)
			if _, err := loadArgs(t, tc.role, args...); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestLoad_FileValuesAreChecked(t *testing.T) {
	file := filepath.Join(t.TempDir(), "all.yaml")
	if err := os.WriteFile(file, []byte("max-content: -1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := loadArgs(t, RoleAll, "--config", file)
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "--max-content -1") {
		t.Fatalf("err = %v, want ErrConfig naming --max-content -1", err)
	}
}

func TestConfig_LoggerLevelAndFormat(t *testing.T) {
	cfg, err := loadArgs(t, RoleAll, "--log-level", "WARN", "--log-format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	log := cfg.Logger(&buf)
	log.Info().Msg("hidden")
	log.Warn().Msg("shown")
	if log.GetLevel() != zerolog.WarnLevel || strings.Contains(buf.String(), "hidden") ||
		!strings.HasPrefix(buf.String(), `{"level":"warn"`) {
		t.Fatalf("level %v, output %q: want JSON lines at warn", log.GetLevel(), buf.String())
	}
}

// TestStart_BadConfigStartsNothing: a bad client address used to fail only
// after the data dir, NATS, logic and task were up.
func TestStart_BadConfigStartsNothing(t *testing.T) {
	cfg := baseConfig(t, RoleAll)
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.Gateway.Addr = "garbage"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sys, err := Start(ctx, cfg, testLog(t))
	if err == nil {
		sys.Stop()
	}
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), `--addr "garbage"`) {
		t.Fatalf("Start = %v, want ErrConfig naming --addr", err)
	}
	if _, err := os.Stat(cfg.DataDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("data dir: %v; want it never created", err)
	}
}

// A port another process holds is found before anything starts: the
// gateway's listener came last, after NATS, logic and task had started and
// the data dir was created (found by a new-user trial).
func TestStart_TakenPortStartsNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tc := range []struct {
		flag string
		set  func(*Config)
	}{
		{"--addr", func(c *Config) { c.Gateway.Addr = ln.Addr().String() }},
		{"--http-listen", func(c *Config) { c.HTTPListen = ln.Addr().String() }},
		{"--push-listen", func(c *Config) { c.PushListen = ln.Addr().String() }},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			cfg := baseConfig(t, RoleAll)
			cfg.DataDir = filepath.Join(t.TempDir(), "data")
			cfg.Gateway.Addr = "127.0.0.1:0"
			tc.set(&cfg)
			sys, err := Start(context.Background(), cfg, testLog(t))
			if err == nil {
				sys.Stop()
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.flag+" "+
				ln.Addr().String()) || !strings.Contains(err.Error(), "in use") {
				t.Fatalf("Start = %v, want ErrConfig naming %s and the port in use", err, tc.flag)
			}
			if _, err := os.Stat(cfg.DataDir); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("data dir: %v; want it never created", err)
			}
		})
	}
}

func TestLoad_RefusesArguments(t *testing.T) {
	_, err := loadArgs(t, RoleAll, "--log-level", "info", "foo", "--pprof")
	if err == nil || !strings.Contains(err.Error(), `unexpected argument "foo"`) {
		t.Fatalf("err = %v, want it to name the argument", err)
	}
}

func TestLoad_NATSListenIsALoopbackAddress(t *testing.T) {
	for _, bad := range []string{"0.0.0.0:4222", "10.0.0.5:4222", "localhost", "127.0.0.1:x"} {
		_, err := loadArgs(t, RoleAll, "--nats-listen", bad)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "--nats-listen") {
			t.Errorf("--nats-listen %q: err = %v, want ErrConfig naming the flag", bad, err)
		}
	}
	if _, err := loadArgs(t, RoleAll, "--nats-listen", "[::1]:0"); err != nil {
		t.Errorf("--nats-listen [::1]:0: %v", err)
	}
}
