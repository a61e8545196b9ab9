package app

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// searchTexts follows a search through the SDK, a page of limit at a time,
// and returns the matches' texts in the order given.
func searchTexts(ctx context.Context, t *testing.T, u *user, conv, query string,
	limit int32) []string {
	t.Helper()
	var out []string
	p := client.SearchParams{Query: query, ConvID: conv, Limit: limit}
	for range 100 {
		msgs, next, err := u.SearchMessages(ctx, p)
		if err != nil {
			t.Fatalf("%s searches %q: %v", u.name, query, err)
		}
		for _, m := range msgs {
			out = append(out, string(m.Content))
		}
		if next == 0 {
			return out
		}
		p.Cursor = next
	}
	t.Fatalf("%s: the search of %q does not end", u.name, query)
	return nil
}

// SEARCH_MESSAGES through the real gateway with the SDK: matches newest
// first across conversations, by the edited text, without the recalled,
// within the searcher's membership of a group; an outsider is refused.
func TestE2E_SearchMessages(t *testing.T) {
	addr := startSystem(t, baseConfig(t, RoleAll)).GatewayAddr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tag := client.NewClientMsgID()[:6]
	alice := login(t, addr, "alice"+tag, "phone", true)
	bob := login(t, addr, "bob"+tag, "phone", true)
	carol := login(t, addr, "carol"+tag, "phone", true)

	send := func(from *user, p client.SendParams) int64 {
		t.Helper()
		ack, err := from.Send(ctx, p)
		if err != nil {
			t.Fatalf("%s sends %q: %v", from.name, p.Text, err)
		}
		return ack.Seq
	}
	send(alice, client.SendParams{ToUserID: bob.id, Text: "Picnic on Sunday?"})
	typo := send(bob, client.SendParams{ToUserID: alice.id, Text: "picnik sounds fine"})
	if _, err := bob.Edit(ctx, client.P2PConvID(alice.id, bob.id), typo,
		"PICNIC sounds fine", ""); err != nil {
		t.Fatal(err)
	}
	secret := send(alice, client.SendParams{ToUserID: bob.id, Text: "secret picnic spot"})
	if _, err := alice.Recall(ctx, client.P2PConvID(alice.id, bob.id), secret, ""); err != nil {
		t.Fatal(err)
	}
	group, err := alice.CreateGroup(ctx, "outing", []int64{carol.id}, "")
	if err != nil {
		t.Fatal(err)
	}
	send(alice, client.SendParams{ConvID: group.ConvId, Text: "picnic before bob"})
	if _, err := alice.ManageGroup(ctx, &protocol.ManageGroupReq{ConvId: group.ConvId,
		Action: common.GroupAction_ADD, UserIds: []int64{bob.id}}); err != nil {
		t.Fatal(err)
	}
	send(carol, client.SendParams{ConvID: group.ConvId, Text: "picnic with bob"})

	want := []string{"picnic with bob", "PICNIC sounds fine", "Picnic on Sunday?"}
	for _, limit := range []int32{0, 1} {
		if got := searchTexts(ctx, t, bob, "", "picnic", limit); !slices.Equal(got, want) {
			t.Errorf("bob, limit %d: %q, want %q", limit, got, want)
		}
	}
	if got := searchTexts(ctx, t, carol, group.ConvId, "PICNIC", 0); !slices.Equal(got,
		[]string{"picnic with bob", "picnic before bob"}) {
		t.Errorf("carol in the group: %q", got)
	}

	sess, err := client.OpenSession(ctx, client.SessionConfig{Addr: addr,
		Positions: client.NewMemoryPositions(), Login: client.LoginParams{Username: bob.name,
			Password: "correct horse", DeviceID: "tablet"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	msgs, next, err := sess.SearchMessages(ctx, client.SearchParams{Query: "sunday"})
	if err != nil || len(msgs) != 1 || msgs[0].Seq != 1 || next != 0 {
		t.Errorf("bob's session finds %+v, next %d (%v); want seq 1 alone", msgs, next, err)
	}

	_, _, err = carol.SearchMessages(ctx, client.SearchParams{Query: "picnic",
		ConvID: client.P2PConvID(alice.id, bob.id)})
	var cerr *client.Error
	if !errors.As(err, &cerr) || cerr.Code != common.ErrorCode_FORBIDDEN {
		t.Errorf("carol searching alice and bob's chat: %v, want FORBIDDEN", err)
	}
	_, _, err = carol.SearchMessages(ctx, client.SearchParams{Query: " "})
	if !errors.As(err, &cerr) || cerr.Code != common.ErrorCode_BAD_REQUEST {
		t.Errorf("blank query: %v, want BAD_REQUEST", err)
	}
}
