package app

import (
	"strings"
	"testing"
)

// A line goes as typed: a paste of code keeps its indentation, and with
// --max-body raised beside the server's --max-body and --max-content a line
// longer than the default 64 KiB request goes too. It was refused by the
// client's fixed request limit, and past 256 KiB by its input bound.
func TestChat_LinesGoAsTypedUpToTheServersLimit(t *testing.T) {
	cfg := baseConfig(t, RoleAll)
	cfg.Gateway.MaxBody = 700_000
	cfg.Logic.MaxContent = 300_000
	sys := startSystem(t, cfg)
	addr := sys.GatewayAddr().String()

	bob := runChat(t, addr, "lbob")
	ann := startChat(t, addr, "--user", "lann", "--max-body", "700000")
	ann.wait(t, "logged in as lann")
	ann.to(t, "lbob")

	ann.say(t, "    indented code")
	bob.wait(t, "lann #1:     indented code")
	ann.say(t, "  // an indented comment is text, not a command")
	bob.wait(t, "lann #2:   // an indented comment")

	long := "BEGIN" + strings.Repeat("x", 280_000) + "END"
	ann.say(t, long)
	bob.wait(t, "lann #3: BEGINxxx")
	bob.wait(t, "xxxEND")
	if out := ann.text(); strings.Contains(out, "not sent") {
		t.Fatalf("the long line was refused:\n%.2000s", out)
	}
}
