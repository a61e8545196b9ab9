package chat_test

import (
	"context"
	"strings"
	"testing"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// After /leave the client is in no conversation and says so: lines typed
// next are not sent to the group left, which refuses them.
func TestRun_LeaveEndsTheGroupView(t *testing.T) {
	s := startServer(t)
	bob, _ := newUser(t, s, "bob")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret",
		"--register")
	waitOutput(t, r.out, "* logged in as alice", 1)
	aliceID := userID(t, bob, "alice")
	if _, err := bob.CreateGroup(context.Background(), "team", []int64{aliceID}, ""); err != nil {
		t.Fatal(err)
	}

	r.say(t, "/group team")
	waitOutput(t, r.out, "* chatting in group team (g:1)", 1)
	r.say(t, "/leave")
	waitOutput(t, r.out, "* you left group team; /to <user> or /group <name or id> to chat on", 1)
	r.say(t, "anyone?")
	waitOutput(t, r.out, "! no peer yet: /to <user>", 1)
	r.say(t, "/quit")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	out := r.out.String()
	if n := s.Requests(protocol.Op_SEND); n != 0 || strings.Contains(out, "not a member") {
		t.Fatalf("%d sends after /leave; output:\n%s", n, out)
	}
}

// The group on screen is left, with the reason, when someone else removes
// the user from it or it is dismissed, by another member or by /dismiss
// here: lines typed next would go to a group that refuses them.
func TestRun_RemovalAndDismissEndTheGroupView(t *testing.T) {
	s := startServer(t)
	bob, _ := newUser(t, s, "bob")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret",
		"--register")
	waitOutput(t, r.out, "* logged in as alice", 1)
	aliceID := userID(t, bob, "alice")
	ctx := context.Background()
	for _, name := range []string{"team", "club"} { // g:1, g:2
		if _, err := bob.CreateGroup(ctx, name, []int64{aliceID}, ""); err != nil {
			t.Fatal(err)
		}
	}
	const chatOn = "; /to <user> or /group <name or id> to chat on"

	for i, tc := range []struct {
		name, group string
		change      *protocol.ManageGroupReq
		want        string
	}{
		{name: "removed", group: "team",
			change: &protocol.ManageGroupReq{ConvId: "g:1",
				Action: common.GroupAction_REMOVE, UserIds: []int64{aliceID}},
			want: "* bob removed you from team" + chatOn},
		{name: "dismissed by the owner", group: "club",
			change: &protocol.ManageGroupReq{ConvId: "g:2", Action: common.GroupAction_DISMISS},
			want:   "* club was dismissed" + chatOn},
	} {
		r.say(t, "/group "+tc.group)
		waitOutput(t, r.out, "* chatting in group "+tc.group, 1)
		if _, err := bob.ManageGroup(ctx, tc.change); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		waitOutput(t, r.out, tc.want, 1)
		r.say(t, "anyone?")
		waitOutput(t, r.out, "! no peer yet: /to <user>", i+1)
		r.say(t, "/to bob") // a peer for the next view to drop
		waitOutput(t, r.out, "* chatting with bob", i+1)
	}

	r.say(t, "/group new own bob")
	waitOutput(t, r.out, "* created group own (g:3)", 1)
	r.say(t, "/dismiss")
	waitOutput(t, r.out, "* own was dismissed"+chatOn, 1)

	// A LEAVE from another device of alice's.
	r.say(t, "/group club")
	waitOutput(t, r.out, "* chatting in group club", 2)
	other, err := client.Dial(ctx, s.Addr(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close() })
	if _, err := other.Login(ctx, client.LoginParams{Username: "alice", Password: "pw-secret",
		DeviceID: "phone"}); err != nil {
		t.Fatal(err)
	}
	leave := &protocol.ManageGroupReq{ConvId: "g:2", Action: common.GroupAction_LEAVE}
	if _, err := other.ManageGroup(ctx, leave); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, r.out, "* you left group club on another device"+chatOn, 1)
	r.say(t, "/quit")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if n := s.Requests(protocol.Op_SEND); n != 0 {
		t.Fatalf("%d sends to groups no longer chatted in, want none", n)
	}
}
