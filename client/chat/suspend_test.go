package chat_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/resonance-im/resonance/client"
)

// suspendedLine is the notice the client prints when the account is
// suspended.
const suspendedLine = "! this account is suspended by the server's operator; " +
	"ask them to lift it before you log in again"

// A running client whose account is suspended prints one line saying so
// and ends; one started on a suspended account does the same at login.
func TestRun_SuspendedAccountEnds(t *testing.T) {
	s := startServer(t)
	newUser(t, s, "dora")
	t.Setenv("RESONANCE_PASSWORD", "pw-secret")
	laptop := startChat(t, "--addr", s.Addr(), "--user", "dora", "--device", "laptop")
	waitOutput(t, laptop.out, "* logged in as dora", 1)

	s.Suspend("dora")
	if err := laptop.wait(t); !errors.Is(err, client.ErrAccountSuspended) {
		t.Fatalf("Run = %v, want %v; output:\n%s", err, client.ErrAccountSuspended,
			laptop.out.String())
	}
	waitOutput(t, laptop.out, suspendedLine, 1)

	desk := startChat(t, "--addr", s.Addr(), "--user", "dora", "--device", "desk")
	if err := desk.wait(t); !errors.Is(err, client.ErrAccountSuspended) {
		t.Fatalf("Run at login = %v, want %v; output:\n%s", err, client.ErrAccountSuspended,
			desk.out.String())
	}
	if n := strings.Count(desk.out.String(), suspendedLine); n != 1 {
		t.Fatalf("notice printed %d times at login, want once; output:\n%s", n,
			desk.out.String())
	}
}
