package app

import (
	"flag"
	"io"
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
