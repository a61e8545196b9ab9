package chat_test

import (
	"strings"
	"testing"
)

// A command typed while the server cannot be reached fails with a line that
// names it and says it was not done, whatever request it makes; a message
// typed then is told to wait for the connection. Before, each command
// printed "! offline: context deadline exceeded", the same for all of them,
// and a message nothing at all.
func TestRun_CommandsWhileOfflineSayTheyWereNotDone(t *testing.T) {
	s := startServer(t)
	newUser(t, s, "bob")
	newUser(t, s, "alice")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret",
		"--to", "bob")
	waitOutput(t, r.out, "* chatting with bob", 1)
	r.say(t, "hello")
	waitOutput(t, r.out, "alice #1: hello", 1)

	s.Close()
	waitOutput(t, r.out, "! connection lost", 1)
	r.say(t, "typed while offline")
	waitOutput(t, r.out, "* offline: messages typed now wait and go once back online", 1)
	for _, cmd := range []string{"/convs", "/edit #1 hi", "/search hello", "/clear",
		"/devices", "/send-file offline_test.go", "/to bob"} {
		r.say(t, cmd)
		name, _, _ := strings.Cut(cmd, " ")
		waitOutput(t, r.out, "! "+name+" not done: offline, the server cannot be reached; "+
			"type it again once back online", 1)
		if strings.Contains(r.out.String(), "deadline exceeded") {
			t.Fatalf("a timeout told for %s; output:\n%s", cmd, r.out.String())
		}
	}
	// A typo is told as one, online or not.
	r.say(t, "/hsitory")
	waitOutput(t, r.out, "! unknown command /hsitory", 1)
}
