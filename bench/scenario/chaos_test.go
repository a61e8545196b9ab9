package scenario

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/resonance-im/resonance/kitex_gen/common"
)

// chaosEnv enables the chaos run, which needs MariaDB, Redis and NATS on
// their local defaults; CI sets it. chaosBinEnv may name a built resonance
// binary; without it the run builds one.
const (
	chaosEnv    = "RESONANCE_TEST_CHAOS"
	chaosBinEnv = "RESONANCE_TEST_CHAOS_BIN"
)

func TestChaos_SmallRunDeliversExactlyOnce(t *testing.T) {
	if os.Getenv(chaosEnv) == "" {
		t.Skipf("set %s=1 to run roles as processes against MariaDB, Redis and NATS",
			chaosEnv)
	}
	var log strings.Builder
	res, err := Chaos(context.Background(), ChaosConfig{Users: 4, Messages: 20,
		Timeout: 100 * time.Second, Log: &log, Bin: os.Getenv(chaosBinEnv)})
	t.Log(log.String())
	for _, line := range res.Failures() {
		t.Log(line)
	}
	if err != nil {
		t.Fatalf("%v (%s)", err, res)
	}
	// Each message is due at both devices of its sender and its recipient.
	if res.Devices != 8 || res.Acked != 160 || res.Delivered != 4*160 || !res.OK() ||
		res.Resumes < 16 { // 8 at start, 8 after the gateway restart
		t.Fatalf("unexpected result %s", res)
	}
	t.Log(res)
}

// TestChaos_EmbeddedProcessKilledLosesNothing SIGKILLs the README's one
// process (SQLite, embedded NATS) twice while devices send, and restarts it
// on the same data directory: what it acked must survive each kill.
func TestChaos_EmbeddedProcessKilledLosesNothing(t *testing.T) {
	if os.Getenv(chaosEnv) == "" {
		t.Skipf("set %s=1 to run the whole system as a process killed under load", chaosEnv)
	}
	var log strings.Builder
	res, err := Chaos(context.Background(), ChaosConfig{Embedded: true, Users: 4,
		Messages: 60, Interval: 100 * time.Millisecond, Rounds: 2,
		Timeout: 100 * time.Second, Log: &log, Bin: os.Getenv(chaosBinEnv)})
	t.Log(log.String())
	for _, line := range res.Failures() {
		t.Log(line)
	}
	if err != nil {
		t.Fatalf("%v (%s)", err, res)
	}
	if got := strings.Count(log.String(), "all killed (SIGKILL)"); got != 2 {
		t.Fatalf("%d kills, want 2", got)
	}
	if res.Devices != 8 || res.Acked != 480 || res.Delivered != 4*480 || !res.OK() ||
		res.Resumes < 16 { // 8 at start, at least 8 after the kills
		t.Fatalf("unexpected result %s", res)
	}
	t.Log(res)
}

func TestChaos_RejectsBadConfig(t *testing.T) {
	_, err := Chaos(context.Background(), ChaosConfig{Users: 1})
	if !errors.Is(err, ErrBadConfig) {
		t.Fatalf("err = %v, want ErrBadConfig", err)
	}
}

func TestLedger_Tally(t *testing.T) {
	led := newLedger()
	a0, a1 := led.addDevice("a/d0", 1), led.addDevice("a/d1", 1)
	b0 := led.addDevice("b/d0", 2)
	led.ackedMsg(10, 1, 2) // seq 1
	led.ackedMsg(11, 2, 1) // seq 2
	for _, h := range []struct {
		dev int
		id  int64
		seq int64
	}{
		{a0, 10, 1}, {a0, 11, 2}, // all, in order
		{a1, 11, 2}, {a1, 10, 1}, {a1, 10, 1}, // reordered and duplicated
		{b0, 10, 1}, // lost 11
	} {
		led.handed(h.dev, msg(h.id, h.seq))
	}
	got, acked := led.tally()
	want := []DeviceTally{
		{Device: "a/d0", Expected: 2, Delivered: 2},
		{Device: "a/d1", Expected: 2, Delivered: 2, Duplicated: 1, Reordered: 1},
		{Device: "b/d0", Expected: 2, Delivered: 1, Lost: 1},
	}
	if acked != 2 || len(got) != 3 {
		t.Fatalf("acked %d, tallies %v", acked, got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("device %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if led.complete() {
		t.Fatal("complete with a lost message")
	}
}

func msg(id, seq int64) *common.Message {
	return &common.Message{MsgId: id, ConvId: "p2p:1:2", Seq: seq}
}
