package chat_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/resonance-im/resonance/internal/testwait"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Every message and event line names its #seq, another user's too: their
// recalls and edits name the #seq they change, which a reader could not
// match to a line of theirs shown without one.
func TestRun_ShowsTheSeqOfEveryLine(t *testing.T) {
	s := startServer(t)
	bob, _ := newUser(t, s, "bob")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret",
		"--register", "--to", "bob")
	waitOutput(t, r.out, "* chatting with bob", 1)
	aliceID := userID(t, bob, "alice")

	send(t, bob, aliceID, "hi alice")
	waitOutput(t, r.out, "] bob #1: hi alice", 1)
	r.say(t, "hello bob")
	waitOutput(t, r.out, "] alice #2: hello bob", 1)

	// Bob's group: its events arrive outside the conversation on screen.
	ctx := context.Background()
	g, err := bob.CreateGroup(ctx, "team", []int64{aliceID}, "")
	if err != nil {
		t.Fatal(err)
	}
	waitOutput(t, r.out, `[team] * #1 bob created "team" with alice (g:1)`, 1)
	for _, req := range []*protocol.ManageGroupReq{
		{ConvId: g.ConvId, Action: common.GroupAction_SET_ROLE, UserIds: []int64{aliceID},
			Role: common.GroupRole_OWNER},
		{ConvId: g.ConvId, Action: common.GroupAction_LEAVE},
	} {
		if _, err := bob.ManageGroup(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	waitOutput(t, r.out, "[team] * #2 bob made alice owner", 1)
	waitOutput(t, r.out, "[team] * #3 bob left", 1)

	// The history of the group shows them again, in the same form.
	r.say(t, "/group team")
	waitOutput(t, r.out, "--- 3 unread messages with group team ---", 1)
	waitOutput(t, r.out, "\n* #3 bob left\n", 1)
	r.say(t, "/quit")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

// Every command that takes a seq takes it as lines show it, "#2", and as a
// bare number.
func TestRun_SeqCommandsTakeBothForms(t *testing.T) {
	s := startServer(t)
	newUser(t, s, "bob")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret",
		"--register", "--to", "bob")
	waitOutput(t, r.out, "* chatting with bob", 1)
	r.say(t, "mine")
	waitOutput(t, r.out, "alice #1: mine", 1)
	for _, tc := range []struct {
		line string
		op   protocol.Op
		n    int
	}{
		{line: "/edit #1 better", op: protocol.Op_EDIT, n: 1},
		{line: "/edit 1 better still", op: protocol.Op_EDIT, n: 2},
		{line: "/recall #1", op: protocol.Op_RECALL, n: 1},
		{line: "/recall 1", op: protocol.Op_RECALL, n: 2},
	} {
		r.say(t, tc.line)
		testwait.For(t, 5*time.Second, tc.line+" at the server", func() bool {
			return s.Requests(tc.op) == tc.n
		})
	}
	if out := r.out.String(); strings.Contains(out, "usage:") {
		t.Fatalf("a seq form was refused:\n%s", out)
	}
}
