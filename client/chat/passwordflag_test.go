package chat_test

import "testing"

// --password on the command line works, with a warning that others see it.
func TestRun_PasswordFlagIsWarnedAbout(t *testing.T) {
	s := startServer(t)
	newUser(t, s, "bob")
	r := startChat(t, "--addr", s.Addr(), "--user", "bob", "--password", "pw-secret")
	waitOutput(t, r.out, "* logged in as bob", 1)
	waitOutput(t, r.out, "! --password on the command line is visible to other users", 1)
}

// Without a password and without a terminal to ask on, the client says
// where to put it, not on the command line.
func TestRun_NoPasswordNoTerminal(t *testing.T) {
	s := startServer(t)
	t.Setenv("RESONANCE_PASSWORD", "")
	r := startChat(t, "--addr", s.Addr(), "--user", "dan", "--register")
	_ = r.wait(t)
	waitOutput(t, r.out, "! no password: set $RESONANCE_PASSWORD (the input is not a "+
		"terminal to ask for it on)", 1)
}
