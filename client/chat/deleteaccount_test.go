package chat_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// /delete-account asks for the password and a typed confirmation: a wrong
// password and a wrong phrase leave the account, the right ones delete it
// and end Run normally.
func TestRun_DeleteAccountAsksPasswordAndConfirmation(t *testing.T) {
	s := startServer(t)
	_, id := newUser(t, s, "dora")
	r := startChat(t, "--addr", s.Addr(), "--user", "dora", "--password", "pw-secret")
	waitOutput(t, r.out, "* logged in as dora", 1)

	r.say(t, "/delete-account")
	waitOutput(t, r.out, "* type your password", 1)
	r.say(t, "pw-secret")
	waitOutput(t, r.out, `* type "delete dora"`, 1)
	r.say(t, "yes")
	waitOutput(t, r.out, "* not confirmed; account dora not deleted", 1)

	// A wrong password is told at once and asked again; the line typed
	// next is taken at the prompt, never sent.
	r.say(t, "/delete-account")
	r.say(t, "wrong-password")
	waitOutput(t, r.out, "! that is not your password; type it again, try 2 of 3, "+
		"or /cancel", 1)
	r.say(t, "delete dora")
	r.say(t, "wrong-again")
	waitOutput(t, r.out, "! not your password 3 times; account dora not deleted", 1)
	if s.Deleted(id) || strings.Contains(r.out.String(), "dora #") {
		t.Fatalf("deleted without the password, or a line sent; output:\n%s", r.out.String())
	}

	r.say(t, "/delete-account")
	r.say(t, "pw-secret")
	r.say(t, "delete dora")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil after the deletion", err)
	}
	if !s.Deleted(id) {
		t.Fatal("the account was not deleted")
	}
	if out := r.out.String(); !strings.Contains(out, "* account dora deleted") ||
		strings.Count(out, "pw-secret") != 0 {
		t.Fatalf("output:\n%s", out)
	}
}

// A deleted user's messages and conversation are labelled as such: GET_USER
// answers it with no username, which must not print as an empty name.
func TestRun_DeletedPeerIsNamedAsDeleted(t *testing.T) {
	s := startServer(t)
	dora, doraID := newUser(t, s, "dora")
	_, _ = newUser(t, s, "erin")
	send(t, dora, userID(t, dora, "erin"), "bye for now")
	if err := dora.DeleteAccount(context.Background(), "pw-secret"); err != nil {
		t.Fatal(err)
	}

	r := startChat(t, "--addr", s.Addr(), "--user", "erin", "--password", "pw-secret")
	waitOutput(t, r.out, "* logged in as erin", 1)
	r.say(t, "/convs")
	label := fmt.Sprintf("user#%d (deleted)", doraID)
	waitOutput(t, r.out, label, 1)
	if out := r.out.String(); strings.Contains(out, "]  #1: bye for now") {
		t.Fatalf("a deleted sender prints as an empty name:\n%s", out)
	}
}

// A running client learns that a user it named was deleted and the name
// taken by a new user: the old messages show as the deleted user's, not
// as the new owner's of the name.
func TestRun_ReusedNameOfDeletedUserIsNotShownForOldMessages(t *testing.T) {
	s := startServer(t)
	carol, oldID := newUser(t, s, "carol")
	_, _ = newUser(t, s, "alice")
	ctx := context.Background()
	aliceID := userID(t, carol, "alice")
	// The fake server keeps no group messages; the group's events are
	// carol's lines instead.
	if _, err := carol.CreateGroup(ctx, "lunch", []int64{aliceID}, ""); err != nil {
		t.Fatal(err)
	}
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret")
	waitOutput(t, r.out, "* logged in as alice", 1)
	r.say(t, "/group lunch")
	waitOutput(t, r.out, `* #1 carol created "lunch"`, 1)

	if err := carol.DeleteAccount(ctx, "pw-secret"); err != nil {
		t.Fatal(err)
	}
	newCarol, newID := newUser(t, s, "carol")
	if newID == oldID {
		t.Fatalf("the new carol has the old id %d", oldID)
	}
	send(t, newCarol, aliceID, "new hello")
	waitOutput(t, r.out, "carol #1: new hello", 1)

	r.say(t, "/group lunch") // opened again, it prints its history again
	waitOutput(t, r.out, " with group lunch ---", 2)
	deleted := fmt.Sprintf(`* #1 user#%d (deleted) created "lunch"`, oldID)
	waitOutput(t, r.out, deleted, 1)
}
