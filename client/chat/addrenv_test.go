package chat_test

import (
	"testing"
)

// The server's client port from $RESONANCE_ADDR, as the server reads it,
// is where chat dials when --addr is not given: a shell that started the
// server on another port reached nothing (found by a new-user trial).
func TestRun_AddrFromEnvironment(t *testing.T) {
	s := startServer(t)
	t.Setenv("RESONANCE_ADDR", s.Addr())
	r := startChat(t, "--user", "ann", "--password", "pw-secret", "--register")
	waitOutput(t, r.out, "* logged in as ann (id 1) at "+s.Addr(), 1)

	// --addr still wins.
	other := startServer(t)
	r2 := startChat(t, "--addr", other.Addr(), "--user", "bea", "--password", "pw-secret",
		"--register")
	waitOutput(t, r2.out, "* logged in as bea (id 1) at "+other.Addr(), 1)
}
