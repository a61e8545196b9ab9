package scenario

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestScale_GatewayKilledDevicesMoveAndNothingIsLost(t *testing.T) {
	if os.Getenv(chaosEnv) == "" {
		t.Skipf("set %s=1 to run 2 gateways, 2 logic and 2 task processes against "+
			"MariaDB, Redis and NATS", chaosEnv)
	}
	var log strings.Builder
	res, err := Scale(context.Background(), ScaleConfig{Users: 4, Messages: 12,
		Timeout: 50 * time.Second, Log: &log, Bin: os.Getenv(chaosBinEnv)})
	t.Log(log.String())
	for _, line := range res.Failures() {
		t.Log(line)
	}
	if err != nil {
		t.Fatalf("%v (%s)", err, res)
	}
	// Each message is due at both devices of its sender and its recipient.
	if res.Devices != 8 || res.Acked != 96 || res.Delivered != 4*96 || res.Moved != 4 ||
		!res.OK() {
		t.Fatalf("unexpected result %s", res)
	}
	t.Log(res)
}

func TestScale_RejectsBadConfig(t *testing.T) {
	for _, cfg := range []ScaleConfig{{Users: 1}, {Messages: 1}} {
		if _, err := Scale(context.Background(), cfg); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%+v: err = %v, want ErrBadConfig", cfg, err)
		}
	}
}
