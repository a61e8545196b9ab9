package chat_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// /to a name whose account the client knew and was deleted says so, opens
// the old conversation to read, and does not wait for the name to be taken
// again: whoever registers it next is someone else.
func TestRun_ToADeletedNameIsNotRetried(t *testing.T) {
	s := startServer(t)
	_, aliceID := newUser(t, s, "alice")
	dave, daveID := newUser(t, s, "dave")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret")
	waitOutput(t, r.out, "* logged in as alice", 1)
	send(t, dave, aliceID, "hi")
	waitOutput(t, r.out, "] dave #1: hi", 1)
	if err := dave.DeleteAccount(context.Background(), "pw-secret"); err != nil {
		t.Fatal(err)
	}

	r.say(t, "/to dave")
	waitOutput(t, r.out, fmt.Sprintf("! dave deleted the account (user #%d)", daveID), 1)
	label := fmt.Sprintf("user#%d (deleted)", daveID)
	waitOutput(t, r.out, " with "+label+" ---", 1)
	newUser(t, s, "dave")
	r.say(t, "still there?")
	waitOutput(t, r.out, "! not sent: "+label+" deleted the account", 1)
	quitChat(t, r)
	if out := r.out.String(); strings.Contains(out, "does not exist yet") {
		t.Fatalf("a deleted name was waited for:\n%s", out)
	}
	if n := s.Requests(protocol.Op_SEND); n != 1 {
		t.Fatalf("%d sends, want dave's 1", n)
	}
}

// /to a name that now belongs to another account than the one the client
// knew says that it is a new account.
func TestRun_ToAReusedNameSaysItIsANewAccount(t *testing.T) {
	s := startServer(t)
	_, aliceID := newUser(t, s, "alice")
	dave, daveID := newUser(t, s, "dave")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret")
	waitOutput(t, r.out, "* logged in as alice", 1)
	send(t, dave, aliceID, "hi")
	waitOutput(t, r.out, "] dave #1: hi", 1)
	if err := dave.DeleteAccount(context.Background(), "pw-secret"); err != nil {
		t.Fatal(err)
	}
	_, newID := newUser(t, s, "dave")

	r.say(t, "/to dave")
	waitOutput(t, r.out, fmt.Sprintf("* dave is a new account (user #%d), not the dave you "+
		"talked with before (user #%d, deleted): /to user#%d reads that conversation",
		newID, daveID, daveID), 1)
	waitOutput(t, r.out, "* chatting with dave", 1)
	quitChat(t, r)
}

// A message from a new account with the name of one the client knew says
// first that it is someone else: its lines look like the old user's.
func TestRun_AMessageFromAReusedNameSaysItIsANewAccount(t *testing.T) {
	s := startServer(t)
	_, aliceID := newUser(t, s, "alice")
	dave, daveID := newUser(t, s, "dave")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret")
	waitOutput(t, r.out, "* logged in as alice", 1)
	send(t, dave, aliceID, "hi")
	waitOutput(t, r.out, "] dave #1: hi", 1)
	if err := dave.DeleteAccount(context.Background(), "pw-secret"); err != nil {
		t.Fatal(err)
	}
	newDave, newID := newUser(t, s, "dave")
	send(t, newDave, aliceID, "hello")
	send(t, newDave, aliceID, "again")
	waitOutput(t, r.out, "] dave #2: again", 1)
	warning := fmt.Sprintf("* dave is a new account (user #%d), not the dave you talked with "+
		"before (user #%d, deleted)", newID, daveID)
	out := r.out.String()
	if strings.Count(out, warning) != 1 || strings.Index(out, warning) >
		strings.Index(out, "] dave #1: hello") {
		t.Fatalf("the new account was not told once before its first line:\n%s", out)
	}
	quitChat(t, r)
}
