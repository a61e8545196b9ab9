package chat_test

import (
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/internal/testwait"
)

// /mute mutes the conversation chatted in (no offline notifications for
// it), /mute off unmutes it; the server's mute lasts until undone, so a
// duration is refused in those words.
func TestRun_MuteMutesTheConversation(t *testing.T) {
	s := startServer(t)
	_, bobID := newUser(t, s, "bob")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret",
		"--register")
	waitOutput(t, r.out, "* logged in as alice", 1)
	r.say(t, "/mute")
	waitOutput(t, r.out, "! no conversation yet: /to <user> or /group", 1)
	r.say(t, "/to bob")
	waitOutput(t, r.out, "* chatting with bob", 1)
	conv := client.P2PConvID(bobID, bobID+1) // alice registers after bob
	r.say(t, "/mute")
	waitOutput(t, r.out, "* muted your conversation with bob: no offline notifications for "+
		"it on any of your devices; /mute off undoes it", 1)
	testwait.For(t, 5*time.Second, "the mute at the server", func() bool {
		return s.Muted("alice", conv)
	})
	r.say(t, "/mute 1h")
	waitOutput(t, r.out, "! usage: /mute or /mute off (a mute lasts until /mute off)", 1)
	r.say(t, "/mute off")
	waitOutput(t, r.out, "* unmuted your conversation with bob", 1)
	if s.Muted("alice", conv) {
		t.Fatal("still muted at the server")
	}
}
