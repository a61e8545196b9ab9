package client_test

import (
	"context"
	"slices"
	"testing"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/client/clienttest"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

func TestParseMentions(t *testing.T) {
	members := map[string]int64{"bob": 2, "carol": 3, "d_e-f": 4}
	tests := []struct {
		text string
		ids  []int64
		all  bool
	}{
		{"hi @bob, and @carol!", []int64{2, 3}, false},
		{"@carol @bob @carol", []int64{3, 2}, false},
		{"@nobody here", nil, false},
		{"mail bob@example.com", nil, false},
		{"@all: lunch", nil, true},
		{"@d_e-f.", []int64{4}, false},
		{"@ alone", nil, false},
	}
	for _, tc := range tests {
		ids, all := client.ParseMentions(tc.text, members)
		if !slices.Equal(ids, tc.ids) || all != tc.all {
			t.Errorf("ParseMentions(%q) = %v, %v; want %v, %v", tc.text, ids, all, tc.ids, tc.all)
		}
	}
}

func TestMentionsUserAndUnreadMention(t *testing.T) {
	named := &common.Message{SenderId: 1, Mentions: []int64{2}}
	all := &common.Message{SenderId: 1, MentionAll: new(true)}
	switch {
	case !client.MentionsUser(named, 2), client.MentionsUser(named, 3),
		!client.MentionsUser(all, 3), client.MentionsUser(all, 1), client.MentionsUser(nil, 2):
		t.Fatal("MentionsUser")
	}
	if !client.UnreadMention(&protocol.ConvSummary{MentionSeq: 5, ReadSeq: 4}) ||
		client.UnreadMention(&protocol.ConvSummary{MentionSeq: 5, ReadSeq: 5}) ||
		client.UnreadMention(nil) {
		t.Fatal("UnreadMention")
	}
}

// A Session hands the app its own sent message with the reply and the
// mentions as the server stores them (sorted, no duplicates, no self). The
// test double takes mentions in a 1:1 conversation, which the real server
// refuses; the rebuild of the own message is what is checked here
// (app/mention_test.go runs the real server).
func TestSession_OwnMessageKeepsReplyAndMentions(t *testing.T) {
	srv := startServer(t, clienttest.Options{})
	_, bobID := loginNew(t, srv, "bob", client.Options{})
	_, aliceID := loginNew(t, srv, "alice", client.Options{})
	sess := openSession(t, srv, "alice", "phone", nil)
	st := collectSession(t, sess)
	ctx := context.Background()
	first, err := sess.Send(ctx, client.SendParams{ToUserID: bobID, Text: "one"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sess.Send(ctx, client.SendParams{ToUserID: bobID, Text: "two",
		ReplyToSeq: first.Seq, Mentions: []int64{9, aliceID, 7, 9}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both messages", func() bool { return st.count(first.ConvId) == 2 })
	st.mu.Lock()
	m := st.msgs[len(st.msgs)-1]
	st.mu.Unlock()
	if m.GetReplyToSeq() != first.Seq || !slices.Equal(m.Mentions, []int64{7, 9}) {
		t.Fatalf("own message = %+v", m)
	}
}
