package chat_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/client/clienttest"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// /search prints matches with their conversation, sender, seq and time,
// newest first; /more (or /search alone) goes on with older ones, past
// pages the server returns without a match.
func TestRun_SearchAndMore(t *testing.T) {
	s := startServerWith(t, clienttest.Options{SearchScan: 3})
	bob, _ := newUser(t, s, "bob")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret",
		"--register")
	waitOutput(t, r.out, "* logged in as alice", 1)
	aliceID := userID(t, bob, "alice")
	ctx := context.Background()
	texts := []string{"lunch plan A"}
	for i := range 21 {
		texts = append(texts, fmt.Sprintf("filler %d", i))
	}
	texts = append(texts, "Lunch plan B") // seq 23
	for _, text := range texts {
		if _, err := bob.Send(ctx, client.SendParams{ToUserID: aliceID, Text: text}); err != nil {
			t.Fatal(err)
		}
	}

	r.say(t, "/more")
	waitOutput(t, r.out, "! no search yet: /search <text>", 1)
	r.say(t, "/search LUNCH")
	waitOutput(t, r.out, `* /more for older matches of "LUNCH"`, 1)
	found := func(line string) *regexp.Regexp {
		return regexp.MustCompile(`\[with bob\] \d{4}-\d\d-\d\d \d\d:\d\d:\d\d ` + line + `\n`)
	}
	if !found("bob #23: Lunch plan B").MatchString(r.out.String()) {
		t.Fatalf("no match line for seq 23; output:\n%s", r.out.String())
	}
	// Five pages of three find nothing: seqs 22 down to 8.
	r.say(t, "/more")
	waitOutput(t, r.out, `* no matches of "LUNCH" in the newest messages; /more searches `+
		"older ones", 1)
	r.say(t, "/search")
	waitOutput(t, r.out, `* no older matches of "LUNCH"`, 1)
	if !found("bob #1: lunch plan A").MatchString(r.out.String()) {
		t.Fatalf("no match line for seq 1; output:\n%s", r.out.String())
	}
	r.say(t, "/more")
	waitOutput(t, r.out, `* no older matches of "LUNCH"`, 2)
	r.say(t, "/search nowhere")
	waitOutput(t, r.out, `* no matches of "nowhere" in the newest messages`, 1)
	r.say(t, "/more")
	waitOutput(t, r.out, `* no older matches of "nowhere"`, 1)
	r.say(t, "/quit")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

// A search that reads the whole history without a match says so at once;
// a refused one is reported, the client running on.
func TestRun_SearchFindsNothing(t *testing.T) {
	s := startServer(t)
	newUser(t, s, "bob")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret",
		"--register")
	waitOutput(t, r.out, "* logged in as alice", 1)
	r.say(t, "/search zebra")
	waitOutput(t, r.out, `* no messages with "zebra"`, 1)
	r.say(t, "/more")
	waitOutput(t, r.out, `* no older matches of "zebra"`, 1)
	r.say(t, "/search "+strings.Repeat("z", 65))
	waitOutput(t, r.out, "! a search takes at most 64 characters; this one has 65", 1)
	r.say(t, "/quit")
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

// /search "a phrase" searches the phrase, as other commands take a quoted
// name, and a query past the server's 64 characters is refused before it is
// sent (a new-user trial met `* no messages with "\"bulk 299\""`, and a
// long query came back as the server's BAD_REQUEST).
func TestRun_SearchQuotesAndLength(t *testing.T) {
	s := startServer(t)
	bob, _ := newUser(t, s, "bob")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret",
		"--register")
	waitOutput(t, r.out, "* logged in as alice", 1)
	send(t, bob, userID(t, bob, "alice"), "bulk 299 arrived")
	r.say(t, `/search "bulk 299"`)
	waitOutput(t, r.out, "bob #1: bulk 299 arrived", 1)
	waitOutput(t, r.out, `* no older matches of "bulk 299"`, 1) // the search is done

	before := s.Requests(protocol.Op_SEARCH_MESSAGES)
	r.say(t, "/search "+strings.Repeat("x", 65))
	waitOutput(t, r.out, "! a search takes at most 64 characters; this one has 65", 1)
	if n := s.Requests(protocol.Op_SEARCH_MESSAGES); n != before {
		t.Fatalf("%d searches sent for the long query, want none", n-before)
	}
}
