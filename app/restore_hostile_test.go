package app

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/resonance-im/resonance/kitex_gen/common"
)

// An account registered after a backup is lost with it, but its devices
// keep their access tokens, which the backup's token key still verifies.
// The restored server must give its id to no new account: one registered
// under it, on a device of the same id ("phone"), would be signed in to by
// the lost account's token.
func TestBackup_LostAccountsTokenSignsInToNoNewAccount(t *testing.T) {
	cfg := baseConfig(t, RoleAll)
	sys := startSystem(t, cfg)
	addr := sys.GatewayAddr().String()
	suffix := time.Now().UnixNano() % 1_000_000_000
	login(t, addr, fmt.Sprintf("kalice%d", suffix), "phone", true)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	to := filepath.Join(t.TempDir(), "backup")
	if _, err := (Backup{DataDir: cfg.DataDir, To: to}).Run(ctx); err != nil {
		t.Fatalf("Backup: %v", err)
	}
	lostName := fmt.Sprintf("klost%d", suffix)
	lost := login(t, addr, lostName, "phone", true)
	token := loginToken(t, addr, lostName, "phone", "correct horse")
	sys.Stop()

	restored := cfg
	restored.DataDir = to
	again := startSystem(t, restored)
	addr = again.GatewayAddr().String()
	freshName := fmt.Sprintf("kfresh%d", suffix)
	fresh := login(t, addr, freshName, "phone", true)
	loginToken(t, addr, freshName, "phone", "correct horse") // as the lost one did
	if fresh.id == lost.id {
		t.Errorf("the restored server gave id %d, of an account lost with the store, to "+
			"a new one", fresh.id)
	}
	if code := tokenLoginCode(t, addr, token, "phone"); code == common.ErrorCode_OK {
		t.Fatalf("the lost account's token signed in (user %d) after the restore", fresh.id)
	}
}
