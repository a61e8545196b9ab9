package app

import (
	"strings"
	"testing"
	"time"
)

// A peer name the server refuses as malformed (here too short) is reported
// once: unlike a name that does not exist yet, asking again every few
// seconds cannot succeed, and the client used to print the same refusal
// every 3 s until another /to.
func TestChat_MalformedPeerNameReportedOnce(t *testing.T) {
	sys := startSystem(t, baseConfig(t, RoleAll))
	addr := sys.GatewayAddr().String()
	ann := runChat(t, addr, "mann")
	ann.say(t, "/to ab")
	const refusal = `no user or conversation is "ab"`
	ann.wait(t, refusal)
	time.Sleep(4 * time.Second) // past one lookup period of the client (3 s)
	if n := strings.Count(ann.text(), refusal); n != 1 {
		t.Fatalf("refusal printed %d times, want 1:\n%s", n, ann.text())
	}
	ann.say(t, "hello")
	ann.wait(t, "! no peer yet: /to <user>")
}
