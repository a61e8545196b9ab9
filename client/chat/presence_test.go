package chat_test

import "testing"

// /block and /unblock say what the other user sees of your presence, and
// /help says it too: a user who blocked you reads offline in /presence.
func TestRun_BlockSaysWhatPresenceShows(t *testing.T) {
	s := startServer(t)
	newUser(t, s, "bob")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret", "--register")
	waitOutput(t, r.out, "* logged in as alice", 1)

	r.say(t, "/block bob")
	waitOutput(t, r.out, "* blocked bob: neither of you can message the other 1:1, "+
		"and bob sees you offline", 1)
	if !s.Blocked("alice", "bob") {
		t.Fatal("the server has no block of bob by alice")
	}
	r.say(t, "/unblock bob")
	waitOutput(t, r.out, "* unblocked bob: bob sees you as you are again, "+
		"and hears your changes after their next /presence or reconnect", 1)
	if s.Blocked("alice", "bob") {
		t.Fatal("the block of bob by alice is still on the server")
	}

	r.say(t, "/help")
	waitOutput(t, r.out, "a user who blocked you always reads offline", 1)
	waitOutput(t, r.out, "blocked, they see you offline and hear no change of yours", 1)
	r.say(t, "/quit")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}
