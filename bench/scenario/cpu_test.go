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
	if startCPU(0).stop() != nil {
		t.Fatal("usage without a pid")
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
