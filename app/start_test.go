package app

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
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
		DataDir:    t.TempDir(),
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
