package app

import (
	"strings"
	"testing"
)

// A line goes as typed: a paste of code keeps its indentation, and with
// --max-body raised beside the server's --max-body and --max-content a line
// longer than the default 64 KiB request goes too (it was refused by the
// client's fixed limit).
func TestChat_LinesGoAsTypedUpToTheServersLimit(t *testing.T) {
	cfg := baseConfig(t, RoleAll)
	cfg.Gateway.MaxBody = 200_000
	cfg.Logic.MaxContent = 100_000
	sys := startSystem(t, cfg)
	addr := sys.GatewayAddr().String()

	bob := runChat(t, addr, "lbob")
	ann := startChat(t, addr, "--user", "lann", "--max-body", "200000")
	ann.wait(t, "logged in as lann")
	ann.to(t, "lbob")

	ann.say(t, "    indented code")
	bob.wait(t, "lann:     indented code")
	ann.say(t, "  // an indented comment is text, not a command")
	bob.wait(t, "lann:   // an indented comment")

	long := "BEGIN" + strings.Repeat("x", 80_000) + "END"
	ann.say(t, long)
	bob.wait(t, "lann: BEGINxxx")
	bob.wait(t, "xxxEND")
	if out := ann.text(); strings.Contains(out, "not sent") {
		t.Fatalf("the long line was refused:\n%.2000s", out)
	}
}

// A line past the client's own 256 KiB input bound goes too when the
// server's --max-content takes it and the client is given the server's
// --max-body: the bound was fixed, "far above the server's content limit",
// and refused such a line as too long before it reached the server.
func TestChat_LongLineGoesWhenMaxBodyIsRaisedPastTheInputBound(t *testing.T) {
	cfg := baseConfig(t, RoleAll)
	cfg.Gateway.MaxBody = 700_000
	cfg.Logic.MaxContent = 300_000
	sys := startSystem(t, cfg)
	addr := sys.GatewayAddr().String()

	bob := runChat(t, addr, "kbob")
	ann := startChat(t, addr, "--user", "kann", "--max-body", "700000")
	ann.wait(t, "logged in as kann")
	ann.to(t, "kbob")

	long := "BEGIN" + strings.Repeat("y", 280_000) + "END"
	ann.say(t, long)
	ann.say(t, "after the long line")
	bob.wait(t, "kann: after the long line")
	if out := ann.text(); strings.Contains(out, "not sent") {
		t.Fatalf("the long line was refused:\n%.300s", out[max(0, strings.Index(out, "!")):])
	}
	bob.wait(t, "yyyEND")
}
