package app

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/resonance-im/resonance/internal/config"
)

func TestBind_RateLimitFlags(t *testing.T) {
	cases := []struct {
		name    string
		arg     string
		wantErr bool
		burst   int
		per     time.Duration
	}{
		{name: "burst and period", arg: "100000/1ms", burst: 100000, per: time.Millisecond},
		{name: "no period", arg: "5", wantErr: true},
		{name: "zero burst", arg: "0/1s", wantErr: true},
		{name: "bad period", arg: "5/soon", wantErr: true},
		{name: "negative period", arg: "5/-1s", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var cfg Config
			fs := flag.NewFlagSet("all", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			cfg.Bind(fs, RoleAll)
			err := config.Load(fs, []string{"--login-addr-limit", tc.arg})
			if tc.wantErr {
				if err == nil {
					t.Fatalf("accepted %q", tc.arg)
				}
				return
			}
			got := cfg.Logic.LoginAddrLimit
			if err != nil || got.Burst != tc.burst || got.Per != tc.per {
				t.Fatalf("%q -> %+v, %v; want %d/%v", tc.arg, got, err, tc.burst, tc.per)
			}
		})
	}
}

func TestConfig_RedisClusterMode(t *testing.T) {
	cases := []struct {
		name        string
		args        []string
		env         map[string]string
		wantCluster bool
		wantErr     string // part of the error; empty: valid
	}{
		{name: "one address", args: []string{"--redis-addr", "10.0.0.1:6379"}},
		{name: "one address, database", args: []string{"--redis-addr", "10.0.0.1:6379",
			"--redis-db", "3"}},
		{name: "seeds", args: []string{"--redis-addr", "10.0.0.1:6379, 10.0.0.2:6379"},
			wantCluster: true},
		{name: "one seed and the flag", args: []string{"--redis-addr", "10.0.0.1:6379",
			"--redis-cluster"}, wantCluster: true},
		{name: "flag from the environment", args: []string{"--redis-addr", "10.0.0.1:6379"},
			env: map[string]string{"RESONANCE_REDIS_CLUSTER": "true"}, wantCluster: true},
		{name: "seeds, database", args: []string{"--redis-addr", "10.0.0.1:6379,10.0.0.2:6379",
			"--redis-db", "1"}, wantErr: "--redis-db 1"},
		{name: "flag, database", args: []string{"--redis-addr", "10.0.0.1:6379",
			"--redis-cluster", "--redis-db", "2"}, wantErr: "--redis-db 2"},
		{name: "flag without address", args: []string{"--redis-cluster"},
			wantErr: "--redis-cluster needs --redis-addr"},
		{name: "bad seed", args: []string{"--redis-addr", "10.0.0.1:6379,redis"},
			wantErr: `"redis"`},
		{name: "only commas", args: []string{"--redis-addr", ","}, wantErr: "names no address"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var cfg Config
			fs := flag.NewFlagSet("all", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			cfg.Bind(fs, RoleAll)
			if err := config.Load(fs, tc.args); err != nil {
				t.Fatal(err)
			}
			err := cfg.Validate()
			if tc.wantErr != "" {
				if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want ErrConfig saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.redisClusterMode(); got != tc.wantCluster {
				t.Fatalf("cluster mode = %v, want %v", got, tc.wantCluster)
			}
		})
	}
}

func TestBind_HashCostFromEnvironmentAndFlag(t *testing.T) {
	t.Setenv("RESONANCE_HASH_MEMORY_KIB", "64")
	var cfg Config
	fs := flag.NewFlagSet("logic", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.Bind(fs, RoleLogic)
	if err := config.Load(fs, []string{"--hash-time", "1"}); err != nil {
		t.Fatal(err)
	}
	if cfg.Logic.HashMemoryKiB != 64 || cfg.Logic.HashTime != 1 {
		t.Fatalf("hash cost %d KiB, %d passes; want 64 KiB, 1", cfg.Logic.HashMemoryKiB,
			cfg.Logic.HashTime)
	}
}

func TestConfig_InternalPortsNeedSecretBeyondLoopback(t *testing.T) {
	cases := []struct {
		name    string
		role    Role
		args    []string
		wantErr string // part of the error; empty: valid
	}{
		{name: "logic alone, default port, no secret", role: RoleLogic,
			wantErr: "--logic-listen 0.0.0.0:7100"},
		{name: "gateway alone, default port, no secret", role: RoleGateway,
			wantErr: "--push-listen 0.0.0.0:7200"},
		{name: "logic with secret", role: RoleLogic, args: []string{"--internal-secret", "s"}},
		{name: "gateway with secret", role: RoleGateway, args: []string{"--internal-secret", "s"}},
		{name: "logic on loopback", role: RoleLogic,
			args: []string{"--logic-listen", "127.0.0.1:7100"}},
		{name: "gateway on IPv6 loopback", role: RoleGateway,
			args: []string{"--push-listen", "[::1]:7200"}},
		{name: "logic on localhost", role: RoleLogic,
			args: []string{"--logic-listen", "localhost:7100"}},
		{name: "insecure on purpose", role: RoleLogic, args: []string{"--insecure-internal"}},
		{name: "all, defaults", role: RoleAll},
		{name: "all, logic opened", role: RoleAll,
			args: []string{"--logic-listen", "10.0.0.5:7100"}, wantErr: "--logic-listen"},
		{name: "task alone", role: RoleTask},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var cfg Config
			fs := flag.NewFlagSet(string(tc.role), flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			cfg.Bind(fs, tc.role)
			// What each role needs besides the case's flags.
			needs := map[Role][]string{
				RoleLogic:   {"--nats-url", "nats://127.0.0.1:1", "--redis-addr", "127.0.0.1:1"},
				RoleTask:    {"--nats-url", "nats://127.0.0.1:1", "--redis-addr", "127.0.0.1:1"},
				RoleGateway: {"--redis-addr", "127.0.0.1:1"},
			}
			if err := config.Load(fs, append(needs[tc.role], tc.args...)); err != nil {
				t.Fatal(err)
			}
			err := cfg.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want ErrConfig saying %q", err, tc.wantErr)
			}
		})
	}
}

func TestBind_TrustedProxies(t *testing.T) {
	cases := []struct {
		arg  string
		want string // the prefixes, space-separated; "" for a refusal
	}{
		{"10.0.0.0/8, 192.168.1.7 ,2001:db8::/32", "10.0.0.0/8 192.168.1.7/32 2001:db8::/32"},
		{"10.1.2.3/8", "10.0.0.0/8"},
		{"::ffff:10.0.0.1", "10.0.0.1/32"},
		{"10.0.0.0/33", ""},
		{"balancer.internal", ""},
	}
	for _, tc := range cases {
		var cfg Config
		fs := flag.NewFlagSet("all", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		cfg.Bind(fs, RoleAll)
		err := config.Load(fs, []string{"--trusted-proxies", tc.arg})
		if tc.want == "" {
			if err == nil {
				t.Errorf("accepted %q", tc.arg)
			}
			continue
		}
		var got []string
		for _, p := range cfg.Gateway.TrustedProxies {
			got = append(got, p.String())
		}
		if err != nil || strings.Join(got, " ") != tc.want {
			t.Errorf("%q -> %v, %v; want %s", tc.arg, got, err, tc.want)
		}
	}
}
