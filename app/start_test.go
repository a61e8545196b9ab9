package app

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/resonance-im/resonance/internal/dirlock"
	"github.com/resonance-im/resonance/logic"
)

// TestStart_PortInUseNamesEachLayerOnce: a taken client port is reported as
// the gateway reports it, without app repeating the part's name in front.
func TestStart_PortInUseNamesEachLayerOnce(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := Config{
		Role:       RoleGateway,
		PushListen: "127.0.0.1:0",
		// Never dialled before the client port is bound; ours either way.
		LogicAddrs: []string{taken.Addr().String()},
	}
	cfg.Gateway.Addr = taken.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sys, err := Start(ctx, cfg, testLog(t))
	if err == nil {
		sys.Stop()
		t.Fatal("Start succeeded on a taken client port")
	}
	msg := err.Error()
	if !strings.Contains(msg, taken.Addr().String()) || strings.Contains(msg, "gateway: gateway:") {
		t.Fatalf("err = %q, want the address once under one gateway prefix", msg)
	}
}

// TestStart_InternalPortInUseNamesTheFlag: a taken HTTP, logic, push or
// embedded NATS port is reported with the flag that moves it and the address once.
func TestStart_InternalPortInUseNamesTheFlag(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	// A lone gateway never dials logic before its ports are bound.
	gateway := Config{Role: RoleGateway, HTTPListen: "127.0.0.1:0", PushListen: "127.0.0.1:0",
		LogicAddrs: []string{addr}}
	tests := []struct {
		flag string
		cfg  func() Config
	}{
		{flag: "--http-listen", cfg: func() Config { c := gateway; c.HTTPListen = addr; return c }},
		{flag: "--push-listen", cfg: func() Config { c := gateway; c.PushListen = addr; return c }},
		{flag: "--logic-listen", cfg: func() Config {
			c := baseConfig(t, RoleAll)
			c.LogicListen = addr
			return c
		}},
		{flag: "--nats-listen", cfg: func() Config {
			c := baseConfig(t, RoleAll)
			c.NATSListen = addr
			return c
		}},
	}
	for _, tt := range tests {
		t.Run(tt.flag, func(t *testing.T) {
			cfg := tt.cfg()
			cfg.Gateway.Addr = "127.0.0.1:0"
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			sys, err := Start(ctx, cfg, testLog(t))
			if err == nil {
				sys.Stop()
				t.Fatalf("Start succeeded with %s on a taken port", tt.flag)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.flag) || strings.Count(msg, addr) != 1 {
				t.Fatalf("err = %q, want %s named and the address once", msg, tt.flag)
			}
		})
	}
}

// TestStart_SecondSystemOnADataDirFails: two processes on one data dir would
// share the SQLite file but not the embedded NATS, and lose messages.
func TestStart_SecondSystemOnADataDirFails(t *testing.T) {
	first := baseConfig(t, RoleAll)
	startSystem(t, first)

	second := baseConfig(t, RoleAll)
	second.DataDir = first.DataDir
	second.Gateway.Addr = "127.0.0.1:0"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sys, err := Start(ctx, second, testLog(t))
	if err == nil {
		sys.Stop()
		t.Fatal("a second system started on a data dir in use")
	}
	if !errors.Is(err, dirlock.ErrLocked) || !strings.Contains(err.Error(), first.DataDir) ||
		!strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("err = %v, want ErrLocked naming the dir and this pid", err)
	}
}

// TestStart_GatewayAloneLeavesTheDataDirAlone: a role that keeps nothing in
// the data dir neither creates nor locks it, so it can run beside one that
// does.
func TestStart_GatewayAloneLeavesTheDataDirAlone(t *testing.T) {
	logicLn, err := net.Listen("tcp", "127.0.0.1:0") // never called here
	if err != nil {
		t.Fatal(err)
	}
	defer logicLn.Close()
	cfg := Config{
		Role:       RoleGateway,
		DataDir:    filepath.Join(t.TempDir(), "data"),
		PushListen: "127.0.0.1:0",
		LogicAddrs: []string{logicLn.Addr().String()},
	}
	startSystem(t, cfg)
	if _, err := os.Stat(cfg.DataDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("data dir: %v; want it never created", err)
	}
}

func TestConfig_UsesDataDir(t *testing.T) {
	mysql := logic.Config{DBDriver: logic.DriverMySQL, DBDSN: "u@tcp(db:3306)/im"}
	withSecret := mysql
	withSecret.TokenSecret = "k"
	external := "nats://10.0.0.1:4222"
	cases := []struct {
		name string
		cfg  Config
		want bool
	}{
		{name: "all, embedded", cfg: Config{Role: RoleAll}, want: true},
		{name: "all, all external", cfg: Config{Role: RoleAll, NATSURL: external,
			Logic: withSecret}},
		{name: "all, generated token key", cfg: Config{Role: RoleAll, NATSURL: external,
			Logic: mysql}, want: true},
		{name: "logic, default sqlite", cfg: Config{Role: RoleLogic, NATSURL: external,
			Logic: logic.Config{TokenSecret: "k"}}, want: true},
		{name: "logic, sqlite elsewhere", cfg: Config{Role: RoleLogic, NATSURL: external,
			Logic: logic.Config{DBDSN: "/var/lib/im.db", TokenSecret: "k"}}},
		{name: "logic, mysql", cfg: Config{Role: RoleLogic, NATSURL: external, Logic: withSecret}},
		{name: "gateway", cfg: Config{Role: RoleGateway}},
		{name: "task", cfg: Config{Role: RoleTask, NATSURL: external}},
	}
	for _, tc := range cases {
		if got := tc.cfg.usesDataDir(); got != tc.want {
			t.Errorf("%s: usesDataDir = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestStart_NATSListenPlacesTheEmbeddedNATS: --nats-listen puts the
// embedded NATS on a port of the operator's choosing, so that every port
// of a process can be kept within a range; the default picks a free one.
func TestStart_NATSListenPlacesTheEmbeddedNATS(t *testing.T) {
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.Addr().String()
	free.Close() // a port just freed; another process taking it meanwhile fails the test

	cfg, err := loadArgs(t, RoleAll, "--nats-listen", addr, "--data-dir", t.TempDir(),
		"--http-listen", "", "--web-listen", "", "--hash-memory-kib", "64", "--hash-time", "1")
	if err != nil {
		t.Fatal(err)
	}
	sys := startSystem(t, cfg)
	if got := sys.nc.ConnectedAddr(); got != addr {
		t.Fatalf("embedded NATS at %s, want --nats-listen's %s", got, addr)
	}
}
