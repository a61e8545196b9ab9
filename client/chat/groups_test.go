package chat_test

import (
	"testing"
)

// /transfer hands the group chatted in over to a member, who becomes its
// owner while the old owner becomes an admin, and tells what it needs
// when it cannot.
func TestRun_TransferHandsTheGroupOver(t *testing.T) {
	s := startServer(t)
	_, bobID := newUser(t, s, "bob")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret", "--register")
	waitOutput(t, r.out, "* logged in as alice", 1)

	r.say(t, "/transfer bob")
	waitOutput(t, r.out, "! not in a group", 1)
	r.say(t, "/group new team bob")
	waitOutput(t, r.out, "* created group team (g:1)", 1) // the fake's first group
	for _, tc := range []struct{ line, want string }{
		{line: "/transfer", want: "! usage: /transfer <user>"},
		{line: "/transfer bob carol", want: "! usage: /transfer <user>"},
		{line: "/transfer alice", want: "! cannot hand the group to yourself"},
		{line: "/transfer nobody", want: "! no such user: nobody"},
	} {
		r.say(t, tc.line)
		waitOutput(t, r.out, tc.want, 1)
	}

	r.say(t, "/transfer bob")
	waitOutput(t, r.out, "* alice made bob owner", 1)
	r.say(t, "/members")
	waitOutput(t, r.out, "  alice (admin)", 1)
	waitOutput(t, r.out, "  bob (owner)", 1)
	if got := s.GroupOwner("g:1"); got != bobID {
		t.Fatalf("the group's owner is user %d, want bob (%d)", got, bobID)
	}
	r.say(t, "/help")
	waitOutput(t, r.out, "make a member the group's owner", 1)
	r.say(t, "/quit")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}
