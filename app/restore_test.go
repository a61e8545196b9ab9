package app

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
	"github.com/resonance-im/resonance/logic"
)

// A device that received messages acked after a backup still gets what is
// sent once the server is restored from that backup: the restored store's
// seqs start past every seq the device holds, which it would otherwise take
// the new messages' for copies of and drop.
func TestBackup_RestoredServerOutrunsTheSeqsDevicesHold(t *testing.T) {
	cfg := baseConfig(t, RoleAll)
	sys := startSystem(t, cfg)
	addr := sys.GatewayAddr().String()
	suffix := time.Now().UnixNano() % 1_000_000_000
	alice := login(t, addr, fmt.Sprintf("ralice%d", suffix), "phone", true)
	bob := login(t, addr, fmt.Sprintf("rbob%d", suffix), "phone", true)
	tablet := openSession(t, addr, bob.name, "tablet")
	t.Cleanup(func() { tablet.Close() })
	var (
		mu  sync.Mutex
		got []string
	)
	go func() {
		for m := range tablet.Messages() {
			mu.Lock()
			got = append(got, fmt.Sprintf("%d:%s", m.Seq, m.Content))
			mu.Unlock()
		}
	}()
	waitGot := func(n int, what string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			mu.Lock()
			have := append([]string(nil), got...)
			mu.Unlock()
			if len(have) >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the tablet has %q, want %d messages", what, have, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	say := func(c *client.Client, text string) *protocol.SendResp {
		t.Helper()
		ack, err := c.Send(ctx, client.SendParams{ToUserID: bob.id, Text: text})
		if err != nil {
			t.Fatalf("send %q: %v", text, err)
		}
		return ack
	}

	say(alice.Client, "one")
	say(alice.Client, "two")
	waitGot(2, "before the backup")
	to := filepath.Join(t.TempDir(), "backup")
	if _, err := (Backup{DataDir: cfg.DataDir, To: to}).Run(ctx); err != nil {
		t.Fatalf("Backup: %v", err)
	}
	say(alice.Client, "three") // acked after the backup: not in it
	held := say(alice.Client, "four")
	waitGot(4, "after the backup")

	sys.Stop()
	restored := cfg
	restored.DataDir = to
	restored.Gateway.Addr = addr // where the tablet reconnects
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	again, err := Start(sctx, restored, testLog(t))
	if err != nil {
		t.Fatalf("start on the backup: %v", err)
	}
	t.Cleanup(again.Stop)
	alice = login(t, addr, alice.name, "phone", false)
	if ack := say(alice.Client, "after the restore"); ack.Seq <= held.Seq {
		t.Errorf("the restored server stored a message at seq %d; the tablet holds seqs up "+
			"to %d", ack.Seq, held.Seq)
	}
	waitGot(5, "after the restore")
}

// --after-restore moves the seqs of a store restored by other means (a copy
// of the files, MySQL from its dumps) as a backup's mark does.
func TestAfterRestore_MovesTheSeqsOnce(t *testing.T) {
	cfg := baseConfig(t, RoleAll)
	sys := startSystem(t, cfg)
	addr := sys.GatewayAddr().String()
	suffix := time.Now().UnixNano() % 1_000_000_000
	alice := login(t, addr, fmt.Sprintf("aralice%d", suffix), "phone", true)
	bob := login(t, addr, fmt.Sprintf("arbob%d", suffix), "phone", true)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := alice.Send(ctx, client.SendParams{ToUserID: bob.id, Text: "one"}); err != nil {
		t.Fatalf("send: %v", err)
	}
	sys.Stop()

	cfg.AfterRestore = true
	again := startSystem(t, cfg)
	alice = login(t, again.GatewayAddr().String(), alice.name, "phone", false)
	ack, err := alice.Send(ctx, client.SendParams{ToUserID: bob.id, Text: "two"})
	if err != nil {
		t.Fatalf("send after the restore: %v", err)
	}
	if want := 2 + logic.RestoreSeqGap; ack.Seq != want {
		t.Fatalf("the first message after --after-restore took seq %d, want %d", ack.Seq, want)
	}
}
