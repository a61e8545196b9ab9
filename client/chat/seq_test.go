package chat_test

import (
	"context"
	"testing"

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
	waitOutput(t, r.out, "--- last 3 messages with group team ---", 1)
	waitOutput(t, r.out, "\n* #3 bob left\n", 1)
	r.say(t, "/quit")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}
