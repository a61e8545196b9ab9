package chat

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestREADME_ChatTableNamesEveryCommand keeps the README's table of chat
// commands in step with /help, which the README names before the table.
func TestREADME_ChatTableNamesEveryCommand(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "| `/") {
			table.WriteString(line + "\n")
		}
	}
	if table.Len() == 0 {
		t.Fatal("README has no table of chat commands")
	}
	// A command starts a line of helpText or follows a comma or semicolon;
	// it may hold a hyphen (/delete-account).
	commandRE := regexp.MustCompile(`(?m)^\s+(/[a-z][a-z-]*)|[,;] (/[a-z][a-z-]*)`)
	commands := commandRE.FindAllStringSubmatch(helpText, -1)
	if len(commands) == 0 {
		t.Fatal("no command found in helpText")
	}
	for _, m := range commands {
		cmd := m[1] + m[2]
		if cmd == "/help" {
			continue
		}
		if !regexp.MustCompile("`" + cmd + "[ `]").MatchString(table.String()) {
			t.Errorf("README's table of chat commands does not name %s", cmd)
		}
	}
}
