package app

import (
	"strings"
	"testing"
	"time"

	"github.com/resonance-im/resonance/internal/ratelimit"
)

// The README runs the terminal client with --register every time. While
// the address's registration budget is spent, that registration attempt is
// refused with RATE_LIMITED, and the client used to stop there: a user whose
// account exists could not log in. It logs in; for a name that does not
// exist it says that registration was refused for the rate limit.
func TestChat_RegisterWhileRateLimitedStillLogsIn(t *testing.T) {
	cfg := baseConfig(t, RoleAll)
	cfg.Logic.RegisterAddrLimit = ratelimit.Config{Burst: 1, Per: time.Hour}
	sys := startSystem(t, cfg)
	addr := sys.GatewayAddr().String()

	first := runChat(t, addr, "lann") // registers: the budget is spent
	first.say(t, "/quit")

	again := startChat(t, addr, "--user", "lann", "--device", "other")
	again.wait(t, "logged in as lann")

	ghost := startChat(t, addr, "--user", "lghost")
	ghost.wait(t, "! ")
	time.Sleep(200 * time.Millisecond)
	if out := ghost.text(); !strings.Contains(out, "rate limited") {
		t.Fatalf("a new name refused registration should say the rate limit:\n%s", out)
	}
}
