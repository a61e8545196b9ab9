package chat_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/internal/testwait"
)

// quitChat ends a chat run with /quit and checks it returned nil.
func quitChat(t *testing.T, r *chatRun) {
	t.Helper()
	r.say(t, "/quit")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

// waitRead waits until the server has the user's read position of conv at
// seq.
func waitRead(t *testing.T, s interface{ ReadSeq(string, string) int64 }, user, conv string,
	seq int64) {
	t.Helper()
	testwait.For(t, 5*time.Second, fmt.Sprintf("%s read %s up to %d", user, conv, seq),
		func() bool { return s.ReadSeq(user, conv) == seq })
}

// Messages that came while the client was closed are all shown when it
// opens their conversation, and read only then.
func TestRun_ShowsEveryMessageMissedWhileClosed(t *testing.T) {
	s := startServer(t)
	alice, aliceID := newUser(t, s, "alice")
	args := []string{"--addr", s.Addr(), "--user", "bob", "--password", "pw-secret",
		"--to", "alice", "--device", "d1"}
	r := startChat(t, append(args, "--register")...)
	waitOutput(t, r.out, "* chatting with alice", 1)
	quitChat(t, r)

	bobID := userID(t, alice, "bob")
	for i := 1; i <= 50; i++ {
		send(t, alice, bobID, fmt.Sprintf("line %02d", i))
	}
	r = startChat(t, args...)
	waitOutput(t, r.out, "--- 50 unread messages with alice ---", 1)
	waitOutput(t, r.out, "] alice #50: line 50", 1)
	conv := client.P2PConvID(aliceID, bobID)
	waitRead(t, s, "bob", conv, 50)
	quitChat(t, r)
	for i := 1; i <= 50; i++ {
		if line := fmt.Sprintf("] alice #%d: line %02d\n", i, i); strings.Count(r.out.String(),
			line) != 1 {
			t.Fatalf("%q not printed once; output:\n%s", line, r.out.String())
		}
	}
}

// Past the cap, the newest unread messages are shown with the number of
// earlier ones; the conversation is read only once /history shows those.
func TestRun_CapsUnreadAndKeepsTheRestUnread(t *testing.T) {
	s := startServer(t)
	alice, aliceID := newUser(t, s, "alice")
	_, bobID := newUser(t, s, "bob")
	for i := 1; i <= 130; i++ {
		send(t, alice, bobID, fmt.Sprintf("line %03d", i))
	}
	r := startChat(t, "--addr", s.Addr(), "--user", "bob", "--password", "pw-secret",
		"--to", "alice")
	waitOutput(t, r.out, "--- 130 unread messages with alice: the newest 100 follow; "+
		"/history 30 shows the earlier ones (#1-#30) ---", 1)
	waitOutput(t, r.out, "] alice #130: line 130", 1)
	r.say(t, "/convs")
	waitOutput(t, r.out, "unread 130", 1)
	if strings.Contains(r.out.String(), "line 030\n") {
		t.Fatalf("an earlier unread line was printed:\n%s", r.out.String())
	}

	r.say(t, "/history 30")
	waitOutput(t, r.out, "--- 30 earlier messages with alice ---", 1)
	waitOutput(t, r.out, "] alice #1: line 001", 1)
	waitRead(t, s, "bob", client.P2PConvID(aliceID, bobID), 130)
	quitChat(t, r)
}

// Without unread messages, opening shows the last 20 message lines, events
// (here reactions) beside them uncounted; /history pages back by N.
func TestRun_HistoryPagesBackAndSkipsNoMessageForEvents(t *testing.T) {
	s := startServer(t)
	carol, carolID := newUser(t, s, "carol")
	bob, bobID := newUser(t, s, "bob")
	ctx := context.Background()
	for i := range 25 {
		send(t, carol, bobID, fmt.Sprintf("note %02d", i))
	}
	conv := client.P2PConvID(carolID, bobID)
	for range 10 {
		if _, err := carol.React(ctx, conv, 25, "👍", false); err != nil {
			t.Fatal(err)
		}
		if _, err := carol.React(ctx, conv, 25, "👍", true); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := bob.MarkRead(ctx, conv, client.LatestSeq); err != nil {
		t.Fatal(err)
	}

	r := startChat(t, "--addr", s.Addr(), "--user", "bob", "--password", "pw-secret",
		"--to", "carol")
	waitOutput(t, r.out, "--- last 20 messages with carol ---", 1)
	waitOutput(t, r.out, "] carol #25: note 24", 1)
	if out := r.out.String(); !strings.Contains(out, "] carol #6: note 05\n") ||
		strings.Contains(out, "note 04") {
		t.Fatalf("the last 20 messages are not #6-#25:\n%s", out)
	}
	r.say(t, "/history 3")
	waitOutput(t, r.out, "--- 3 earlier messages with carol ---", 1)
	waitOutput(t, r.out, "] carol #3: note 02", 1)
	r.say(t, "/history")
	waitOutput(t, r.out, "--- 2 earlier messages with carol ---", 1)
	waitOutput(t, r.out, "] carol #1: note 00", 1)
	r.say(t, "/history")
	waitOutput(t, r.out, "--- no earlier messages with carol ---", 1)
	quitChat(t, r)
}

// /history in a conversation that began on screen pages back from the
// oldest line shown live, not from the newest again.
func TestRun_HistoryAfterLiveLinesPrintsNothingTwice(t *testing.T) {
	s := startServer(t)
	bob, _ := newUser(t, s, "bob")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret",
		"--register", "--to", "bob")
	waitOutput(t, r.out, "--- no messages with bob yet ---", 1)
	send(t, bob, userID(t, bob, "alice"), "first")
	waitOutput(t, r.out, "] bob #1: first", 1)
	r.say(t, "/history")
	waitOutput(t, r.out, "--- no earlier messages with bob ---", 1)
	quitChat(t, r)
	if n := strings.Count(r.out.String(), "] bob #1: first"); n != 1 {
		t.Fatalf("#1 printed %d times:\n%s", n, r.out.String())
	}
}

// Reactions, which the server's unread count leaves out, do not make the
// client take a backlog past the cap for shown in full.
func TestRun_CapHoldsWhenReactionsAreAmongTheUnread(t *testing.T) {
	s := startServer(t)
	alice, aliceID := newUser(t, s, "alice")
	_, bobID := newUser(t, s, "bob")
	for i := 1; i <= 101; i++ {
		send(t, alice, bobID, fmt.Sprintf("line %03d", i))
	}
	conv := client.P2PConvID(aliceID, bobID)
	for i := range 30 {
		if _, err := alice.React(context.Background(), conv, 101, "👍", i%2 == 1); err != nil {
			t.Fatal(err)
		}
	}
	r := startChat(t, "--addr", s.Addr(), "--user", "bob", "--password", "pw-secret",
		"--to", "alice")
	waitOutput(t, r.out, "--- 101 unread messages with alice: the newest 100 follow; "+
		"/history 1 shows the earlier ones (#1-#1) ---", 1)
	r.say(t, "/convs")
	waitOutput(t, r.out, "unread 101", 1)
	r.say(t, "/history 1")
	waitOutput(t, r.out, "] alice #1: line 001", 1)
	waitRead(t, s, "bob", conv, 131)
	quitChat(t, r)
}

// /history N past the cap says it printed fewer than asked; a malformed N
// is refused, not taken for the default.
func TestRun_HistoryCountIsCheckedAndCapped(t *testing.T) {
	s := startServer(t)
	newUser(t, s, "bob")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret",
		"--register", "--to", "bob")
	waitOutput(t, r.out, "--- no messages with bob yet ---", 1)
	r.say(t, "/history ten")
	waitOutput(t, r.out, "! usage: /history [N], N a number of messages up to 500", 1)
	r.say(t, "/history 9999")
	waitOutput(t, r.out, "* /history prints at most 500 messages at a time; "+
		"/history again pages further back", 1)
	quitChat(t, r)
}
