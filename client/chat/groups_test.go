package chat_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client/clienttest"
	"github.com/resonance-im/resonance/internal/testwait"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
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

	r.say(t, "/leave") // as the owner
	waitOutput(t, r.out, "! the owner cannot leave: /transfer <user> hands the group over "+
		"(then /leave), or /dismiss ends it", 1)
	r.say(t, "/transfer bob")
	waitOutput(t, r.out, "* #2 alice made bob owner", 1)
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

// /recall and /edit given the #seq of an event, of another user's message or
// of nothing say so in those words, without asking the server to change it;
// one of the user's own messages goes to the server.
func TestRun_RecallExplainsATargetThatIsNotYourMessage(t *testing.T) {
	s := startServer(t)
	bob, _ := newUser(t, s, "bob")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret", "--register")
	waitOutput(t, r.out, "* logged in as alice", 1)
	aliceID := userID(t, bob, "alice")

	const event = "! #1 is an event (a group change, edit, recall, reaction or pin), not a message; " +
		"/recall and /edit take the #seq shown beside one of your messages"
	for _, tc := range []struct {
		name, line, want string
	}{
		{name: "switch to a group", line: "/group new team bob", want: "* created group team"},
		{name: "recall an event", line: "/recall 1", want: event},
		{name: "edit an event", line: "/edit 1 new text", want: event},
		{name: "recall nothing", line: "/recall 9", want: "! no #9 in this conversation"},
		{name: "switch to bob", line: "/to bob", want: "* chatting with bob"},
		{name: "recall in an empty conversation", line: "/recall 1",
			want: "! no #1 in this conversation"},
	} {
		r.say(t, tc.line)
		waitOutput(t, r.out, tc.want, 1)
	}
	send(t, bob, aliceID, "his") // #1 of the 1:1 conversation
	waitOutput(t, r.out, "] bob #1: his", 1)
	r.say(t, "mine") // #2
	waitOutput(t, r.out, "alice #2: mine", 1)
	r.say(t, "/edit 1 my words")
	waitOutput(t, r.out, "! #1 is bob's message; /recall and /edit change only your own", 1)
	if n := s.Requests(protocol.Op_RECALL) + s.Requests(protocol.Op_EDIT); n != 0 {
		t.Fatalf("%d changes asked of the server, want none", n)
	}

	// The fake does not recall; that the request reached it is enough.
	r.say(t, "/recall 2")
	testwait.For(t, 5*time.Second, "the recall of #2 at the server", func() bool {
		return s.Requests(protocol.Op_RECALL) == 1
	})
	r.say(t, "/quit")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

// /convs marks a dismissed group, as it marks one the user left, so that it
// does not read as a group to chat in.
func TestRun_ConvsMarksADismissedGroup(t *testing.T) {
	s := startServer(t)
	newUser(t, s, "bob")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret", "--register")
	waitOutput(t, r.out, "* logged in as alice", 1)
	r.say(t, "/group new team bob")
	waitOutput(t, r.out, "* created group team (g:1)", 1)
	r.say(t, "/group new club bob")
	waitOutput(t, r.out, "* created group club (g:2)", 1)
	r.say(t, "/dismiss")
	waitOutput(t, r.out, "* #2 alice dismissed the group", 1)

	r.say(t, "/convs")
	waitOutput(t, r.out, "--- 2 conversations ---", 1)
	waitOutput(t, r.out, "  g:2  club  unread 0 (dismissed)", 1)
	waitOutput(t, r.out, "  g:1  team  unread 0\n", 1) // still open
	r.say(t, "/quit")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

// /convs takes a dismissed group from the summary's dismissed, reading no
// history: it marks the group although every backward SYNC fails, after
// LEAVEs followed its DISMISS, a member's and then the owner's own.
func TestRun_ConvsTakesDismissedFromTheSummary(t *testing.T) {
	s := startServer(t)
	bob, _ := newUser(t, s, "bob")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret", "--register")
	waitOutput(t, r.out, "* logged in as alice", 1)
	r.say(t, "/group new club bob")
	waitOutput(t, r.out, "* created group club (g:1)", 1)
	r.say(t, "/dismiss")
	waitOutput(t, r.out, "* #2 alice dismissed the group", 1)
	leave := &protocol.ManageGroupReq{ConvId: "g:1", Action: common.GroupAction_LEAVE}
	if _, err := bob.ManageGroup(context.Background(), leave); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, r.out, "[club] * #3 bob left", 1)
	s.FailBackwardSyncs(1000)

	r.say(t, "/convs")
	waitOutput(t, r.out, "  g:1  club  unread 1 (dismissed)\n", 1)
	r.say(t, "/group club")
	waitOutput(t, r.out, "* chatting in group club (g:1)", 1)
	r.say(t, "/leave")
	waitOutput(t, r.out, "* you left group club", 1)
	r.say(t, "/convs")
	waitOutput(t, r.out, " (dismissed)\n", 2)
	r.say(t, "/quit")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

// With a server from before ConvSummary.dismissed, /convs still marks a
// dismissed group after LEAVEs follow its DISMISS, a member's and then the
// owner's own, by reading its history back past them.
func TestRun_ConvsMarksADismissedGroupAfterLeaves(t *testing.T) {
	s := startServerWith(t, clienttest.Options{OmitConvDismissed: true})
	bob, _ := newUser(t, s, "bob")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret", "--register")
	waitOutput(t, r.out, "* logged in as alice", 1)
	r.say(t, "/group new club bob")
	waitOutput(t, r.out, "* created group club (g:1)", 1)
	r.say(t, "/dismiss")
	waitOutput(t, r.out, "* #2 alice dismissed the group", 1)
	// Elsewhere, so that bob's LEAVE stays unread: the count is checked.
	r.say(t, "/to bob")
	waitOutput(t, r.out, "* chatting with bob", 1)
	leave := &protocol.ManageGroupReq{ConvId: "g:1", Action: common.GroupAction_LEAVE}
	if _, err := bob.ManageGroup(context.Background(), leave); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, r.out, "[club] * #3 bob left", 1)

	r.say(t, "/convs")
	waitOutput(t, r.out, "  g:1  club  unread 1 (dismissed)\n", 1)

	// The owner may leave the dismissed group too; it stays marked. (The
	// group on screen may have been marked read meanwhile.)
	r.say(t, "/group club")
	waitOutput(t, r.out, "* chatting in group club (g:1)", 1)
	r.say(t, "/leave")
	waitOutput(t, r.out, "* you left group club", 1)
	r.say(t, "/convs")
	waitOutput(t, r.out, " (dismissed)\n", 2)
	r.say(t, "/quit")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

// Lines naming @someone look the group's members up once; the group's next
// event (here a REMOVE) makes the next such line look them up again.
func TestRun_MentionsAskForMembersOncePerGroupChange(t *testing.T) {
	s := startServer(t)
	newUser(t, s, "bob")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret", "--register")
	waitOutput(t, r.out, "* logged in as alice", 1)
	r.say(t, "/group new team bob")
	waitOutput(t, r.out, "* created group team (g:1)", 1)
	// The fake stores no group messages: each line ends "not sent", after
	// its mentions were resolved.
	base := s.Requests(protocol.Op_GET_GROUP)

	r.say(t, "hi @bob")
	r.say(t, "again @bob")
	waitOutput(t, r.out, "again @bob", 1)
	if got := s.Requests(protocol.Op_GET_GROUP) - base; got != 1 {
		t.Fatalf("%d GET_GROUPs for two lines with @, want 1", got)
	}

	r.say(t, "/remove bob")
	waitOutput(t, r.out, "alice removed bob", 1)
	r.say(t, "hey @bob")
	waitOutput(t, r.out, "hey @bob", 1)
	r.say(t, "and @bob")
	waitOutput(t, r.out, "and @bob", 1)
	if got := s.Requests(protocol.Op_GET_GROUP) - base; got != 2 {
		t.Fatalf("%d GET_GROUPs, want 2: one more after the REMOVE, none after", got)
	}
	r.say(t, "/quit")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

// A group name with spaces is given in quotes at creation, as /rename and
// /group take it; without them the second word reads as a user, and the
// refusal says how to quote.
func TestRun_GroupNameWithSpaces(t *testing.T) {
	s := startServer(t)
	newUser(t, s, "bob")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret",
		"--register")
	waitOutput(t, r.out, "* logged in as alice", 1)
	for _, tc := range []struct{ line, want string }{
		{line: "/group new Friday lunch bob",
			want: `! no such user: lunch (a group name with spaces goes in quotes: ` +
				`/group new "Friday lunch" ...)`},
		{line: `/group new "Friday lunch" bob`,
			want: "* created group Friday lunch (g:1); you are chatting in it"},
		{line: "/members", want: "--- Friday lunch: 2 members ---"},
		{line: "/to bob", want: "* chatting with bob"},
		{line: "/group Friday lunch", want: "* chatting in group Friday lunch (g:1)"},
		{line: `/group new "Friday lunch bob`, want: "! usage: /group new <name>"},
		{line: `/group new "" bob`, want: "! usage: /group new <name>"},
	} {
		r.say(t, tc.line)
		waitOutput(t, r.out, tc.want, 1)
	}
}

// /group takes a name in double quotes, as /group new does, and matches a
// name whatever its case; /add, /remove and /transfer outside a group say
// so before looking the user up, as /members and /rename do.
func TestRun_GroupTakesQuotesAndAnyCase(t *testing.T) {
	s := startServer(t)
	newUser(t, s, "bob")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret",
		"--register")
	waitOutput(t, r.out, "* logged in as alice", 1)

	for _, line := range []string{"/add nobody", "/remove nobody", "/transfer nobody"} {
		r.say(t, line)
	}
	waitOutput(t, r.out, "! not in a group: /group <id> or /group new", 3)
	r.say(t, `/group new "Friday lunch" bob`)
	waitOutput(t, r.out, "* created group Friday lunch (g:1)", 1)
	r.say(t, "/to bob")
	waitOutput(t, r.out, "* chatting with bob", 1)
	for i, line := range []string{`/group "Friday lunch"`, "/group friday LUNCH",
		`/group "friday lunch"`} {
		r.say(t, line)
		waitOutput(t, r.out, "* chatting in group Friday lunch (g:1)", i+1)
	}
	if out := r.out.String(); strings.Contains(out, "no such user") {
		t.Fatalf("a user was looked up outside a group:\n%s", out)
	}
}
