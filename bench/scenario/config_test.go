package scenario

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// setNegative sets the field at path of the struct pointed to by p to -1.
func setNegative(p reflect.Value, path string) {
	v := p.Elem()
	for _, name := range strings.Split(path, ".") {
		v = v.FieldByName(name)
	}
	if v.Kind() == reflect.Float64 {
		v.SetFloat(-1)
	} else {
		v.SetInt(-1)
	}
}

// refusesNegatives checks that check accepts base and refuses it with
// any one numeric field at -1, naming the field.
func refusesNegatives[C any](t *testing.T, base C, check func(C) error) {
	t.Helper()
	if err := check(base); err != nil {
		t.Fatalf("base config refused: %v", err)
	}
	fields := numericFields(reflect.ValueOf(base), "")
	if len(fields) == 0 {
		t.Fatal("no numeric field")
	}
	for _, f := range fields {
		path := f.path
		cfg := base
		setNegative(reflect.ValueOf(&cfg), path)
		err := check(cfg)
		if !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s -1: err %v, want ErrBadConfig naming %s", path, err, path)
		}
	}
}

// Every numeric field of every scenario's config refuses a negative value
// instead of taking it for the default as zero does: ChatConfig{Rate: -5}
// offered 1000 messages a second, SpreadConfig{Warmup: -1} warmed none.
// The fields are found by reflection, so one added later is covered.
func TestConfigs_RefuseNegativeNumbers(t *testing.T) {
	const addr = "127.0.0.1:24901" // never dialled: the checks dial nothing
	t.Run("smoke", func(t *testing.T) {
		refusesNegatives(t, SmokeConfig{Addr: addr}, func(c SmokeConfig) error {
			_, err := c.withDefaults()
			return err
		})
	})
	t.Run("chat", func(t *testing.T) {
		refusesNegatives(t, ChatConfig{Addr: addr}, func(c ChatConfig) error {
			_, err := c.withDefaults()
			return err
		})
	})
	t.Run("group", func(t *testing.T) {
		refusesNegatives(t, GroupConfig{Addr: addr}, func(c GroupConfig) error {
			_, err := c.withDefaults()
			return err
		})
	})
	t.Run("echo", func(t *testing.T) {
		refusesNegatives(t, EchoConfig{Addr: addr}, func(c EchoConfig) error {
			_, err := c.withDefaults()
			return err
		})
	})
	t.Run("push", func(t *testing.T) {
		refusesNegatives(t, PushConfig{Addr: addr, PushAddr: addr,
			MetricsURL: "http://" + addr + "/metrics"}, func(c PushConfig) error {
			_, err := c.withDefaults()
			return err
		})
	})
	t.Run("idle", func(t *testing.T) {
		refusesNegatives(t, IdleConfig{Addr: addr, Conns: 10}, func(c IdleConfig) error {
			_, err := c.withDefaults()
			return err
		})
	})
	t.Run("connect", func(t *testing.T) {
		refusesNegatives(t, ConnectConfig{Addr: addr, Conns: 10}, func(c ConnectConfig) error {
			_, err := connectDefaults(c)
			return err
		})
	})
	t.Run("spread", func(t *testing.T) {
		refusesNegatives(t, SpreadConfig{Conns: 10, Gateways: []GatewayTarget{{Addr: addr}}},
			func(c SpreadConfig) error {
				_, err := c.withDefaults()
				return err
			})
	})
	t.Run("chaos", func(t *testing.T) {
		refusesNegatives(t, ChaosConfig{}, func(c ChaosConfig) error {
			_, err := c.withDefaults()
			return err
		})
	})
	t.Run("scale", func(t *testing.T) {
		refusesNegatives(t, ScaleConfig{}, func(c ScaleConfig) error {
			_, err := c.withDefaults()
			return err
		})
	})
}

// Zero still takes the default, as each config's doc says.
func TestConfigs_ZeroTakesTheDefault(t *testing.T) {
	chat, err := ChatConfig{Addr: "127.0.0.1:24901"}.withDefaults()
	if err != nil || chat.Rate != 1000 || chat.Timeout != 30*time.Second {
		t.Fatalf("chat %+v, %v; want rate 1000, timeout 30s", chat, err)
	}
	group, err := GroupConfig{Addr: "127.0.0.1:24901"}.withDefaults()
	if err != nil || group.Online != 0.5 {
		t.Fatalf("group online %v, %v; want 0.5", group.Online, err)
	}
}
