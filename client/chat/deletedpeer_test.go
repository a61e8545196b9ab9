package chat_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// A conversation with a user who deleted the account opens by the name
// /convs shows or by its id, so that it can be read (and its unread count
// cleared); sending to it is refused in the client's words.
func TestRun_OpensTheConversationOfADeletedUser(t *testing.T) {
	for _, tc := range []struct {
		name string
		to   func(daveID int64, conv string) string
	}{
		{name: "by shown name", to: func(id int64, _ string) string {
			return fmt.Sprintf("user#%d", id)
		}},
		{name: "by full label", to: func(id int64, _ string) string {
			return fmt.Sprintf("user#%d (deleted)", id)
		}},
		{name: "by conv id", to: func(_ int64, conv string) string { return conv }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t)
			_, aliceID := newUser(t, s, "alice")
			dave, daveID := newUser(t, s, "dave")
			send(t, dave, aliceID, "one")
			send(t, dave, aliceID, "two")
			if err := dave.DeleteAccount(context.Background(), "pw-secret"); err != nil {
				t.Fatal(err)
			}
			conv := client.P2PConvID(aliceID, daveID)
			label := fmt.Sprintf("user#%d (deleted)", daveID)

			r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret")
			waitOutput(t, r.out, "* logged in as alice", 1)
			r.say(t, "/convs")
			waitOutput(t, r.out, conv+"  "+label+"  unread 2", 1)
			r.say(t, "/to "+tc.to(daveID, conv))
			waitOutput(t, r.out, "--- 2 unread messages with "+label+" ---", 1)
			waitOutput(t, r.out, "] "+label+" #2: two", 1)
			waitRead(t, s, "alice", conv, 2)

			r.say(t, "still there?")
			waitOutput(t, r.out, "! not sent: "+label+" deleted the account", 1)
			quitChat(t, r)
			if n := s.Requests(protocol.Op_SEND); n != 2 {
				t.Fatalf("%d sends, want dave's 2", n)
			}
			if out := r.out.String(); strings.Contains(out, "does not exist") {
				t.Fatalf("the conversation was taken for a user to wait for:\n%s", out)
			}
		})
	}
}

// /to takes a group by the name /convs shows, also a name that looks like
// a username.
func TestRun_ToOpensAGroupByName(t *testing.T) {
	s := startServer(t)
	_, aliceID := newUser(t, s, "alice")
	carol, _ := newUser(t, s, "carol")
	g, err := carol.CreateGroup(context.Background(), "lunch", []int64{aliceID}, "")
	if err != nil {
		t.Fatal(err)
	}
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret")
	waitOutput(t, r.out, "* logged in as alice", 1)
	r.say(t, "/to lunch")
	waitOutput(t, r.out, "* chatting in group lunch ("+g.ConvId+")", 1)
	quitChat(t, r)
}

// A group the user left opens by /to, read-only, so that what came before
// the leaving can be read and its unread count cleared.
func TestRun_ToOpensALeftGroupToRead(t *testing.T) {
	s := startServer(t)
	alice, aliceID := newUser(t, s, "alice")
	carol, _ := newUser(t, s, "carol")
	ctx := context.Background()
	g, err := carol.CreateGroup(ctx, "lunch", []int64{aliceID}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.ManageGroup(ctx, &protocol.ManageGroupReq{ConvId: g.ConvId,
		Action: common.GroupAction_LEAVE}); err != nil {
		t.Fatal(err)
	}
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret")
	waitOutput(t, r.out, "* logged in as alice", 1)
	r.say(t, "/to "+g.ConvId)
	waitOutput(t, r.out, "* reading group lunch ("+g.ConvId+"): you left it, so nothing "+
		"can be sent there", 1)
	waitOutput(t, r.out, "--- 1 unread message with group lunch ---", 1)
	waitRead(t, s, "alice", g.ConvId, 2)
	r.say(t, "anyone?")
	waitOutput(t, r.out, "! not sent: you left group lunch", 1)
	quitChat(t, r)
}
