package scenario

import (
	"errors"
	"os"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		want    time.Duration
		wantErr bool
	}{
		{name: "plain", want: 370 * time.Millisecond,
			line: "42 (r) S 1 42 42 0 -1 4194560 100 0 0 0 25 12 0 0 20 0 9 0 100 1 1"},
		{name: "command with spaces and parens", want: 3 * time.Second,
			line: "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 100 200 0 0 20 0 1 0 5 1 1"},
		{name: "no command", line: "7 a R 1", wantErr: true},
		{name: "too short", line: "7 (a) R 1 2 3", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tt.line))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("parseStatCPU = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestCPUMeter_OwnProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	m := startCPU(os.Getpid())
	for deadline := time.Now().Add(50 * time.Millisecond); time.Now().Before(deadline); {
	}
	u := m.stop()
	if u == nil || u.PID != os.Getpid() || u.Seconds < 0 || u.Wall <= 0 {
		t.Fatalf("usage %+v", u)
	}
	// The machine was busy at least while this process spun.
	if u.CPUs < 1 || u.Machine <= 0 || u.Bench <= 0 {
		t.Fatalf("machine usage %+v", u)
	}
	if startCPU(0).stop() != nil {
		t.Fatal("usage without a pid")
	}
}

func TestParseProcStat(t *testing.T) {
	const stat = "cpu  100 5 50 1000 20 3 2 7 0 0\n" +
		"cpu0 50 2 25 500 10 2 1 4 0 0\ncpu1 50 3 25 500 10 1 1 3 0 0\n" +
		"intr 12345 0 0\nctxt 999\n"
	got, err := parseProcStat([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	want := machineCPU{idle: 1020 * clockTick, steal: 7 * clockTick, cpus: 2}
	if got != want {
		t.Fatalf("parseProcStat = %+v, want %+v", got, want)
	}
	for _, bad := range []string{"", "intr 1\n", "cpu  1 2 3\ncpu0 1 2 3\n", "cpu  1 2 x 4 5 6 7 8\ncpu0\n"} {
		if _, err := parseProcStat([]byte(bad)); err == nil {
			t.Errorf("parseProcStat(%q) took it", bad)
		}
	}
}

func TestCPUUsage_Others(t *testing.T) {
	u := CPUUsage{PID: os.Getpid() + 1, Cores: 1.2, Bench: 0.4, Machine: 1.9, CPUs: 2}
	if got := u.Others(); got < 0.299 || got > 0.301 {
		t.Fatalf("others = %v, want 0.3", got)
	}
	u.PID = os.Getpid() // the server in this process: its cores are the bench's
	if got := u.Others(); got < 0.699 || got > 0.701 {
		t.Fatalf("others with the server in process = %v, want 0.7", got)
	}
	u.Machine = 1 // samples a tick apart can disagree: never below zero
	if u.PID = 1; u.Others() != 0 {
		t.Fatalf("others = %v, want 0", u.Others())
	}
}

func TestChatPayload_RoundTrip(t *testing.T) {
	due, sender, ok := decodeChatPayload(encodeChatPayload(1234*time.Millisecond, 77))
	if !ok || due != 1234*time.Millisecond || sender != 77 {
		t.Fatalf("decoded %v %d %v", due, sender, ok)
	}
	if _, _, ok := decodeChatPayload([]byte("hello")); ok {
		t.Fatal("decoded a foreign message")
	}
}

func TestMeasuringScenarios_RejectBadConfig(t *testing.T) {
	ctx := t.Context()
	if _, err := Chat(ctx, ChatConfig{Addr: "127.0.0.1:1", Users: 3}); !isBadConfig(err) {
		t.Errorf("chat with odd users: %v", err)
	}
	if _, err := Echo(ctx, EchoConfig{}); !isBadConfig(err) {
		t.Errorf("echo without address: %v", err)
	}
	if _, err := Push(ctx, PushConfig{Addr: "127.0.0.1:1"}); !isBadConfig(err) {
		t.Errorf("push without push address: %v", err)
	}
}

func isBadConfig(err error) bool { return errors.Is(err, ErrBadConfig) }

func TestCPUMeters_AddMachineAndOther(t *testing.T) {
	if _, err := os.Stat("/proc/stat"); err != nil {
		t.Skip("no /proc")
	}
	m := startCPUs([]cpuProbe{{group: "bench clients", pid: os.Getpid()}})
	for deadline := time.Now().Add(50 * time.Millisecond); time.Now().Before(deadline); {
	}
	got := m.stop("phase")
	if len(got) != 3 || got[0].Group != "bench clients" || got[1].Group != "whole machine" ||
		got[2].Group != "other" {
		t.Fatalf("groups %+v", got)
	}
	if got[1].Cores <= 0 || got[2].Cores < 0 || got[2].Cores > got[1].Cores {
		t.Fatalf("cores %+v", got)
	}
}
