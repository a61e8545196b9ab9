package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/internal/testwait"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Replies and mentions over real sockets through the Go SDK: a reply with
// a mention reaches a member's PUSH with its fields, the mentioned user's
// other device sees mention_seq in SYNC_CONVS, a muted mentioned user is
// notified offline with "mentioned", and what the server refuses comes
// back with its code.
func TestEndToEnd_RepliesAndMentions(t *testing.T) {
	sink, url := startWebhookSink(t, notifySecret)
	cfg := baseConfig(t, RoleAll)
	cfg.InternalSecret = hostileSecret
	cfg.Task.Notify = notifyConfig(url)
	addr := startSystem(t, cfg).GatewayAddr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	suffix := time.Now().UnixNano() % 1_000_000_000
	alice := login(t, addr, fmt.Sprintf("ma%d", suffix), "phone", true)
	bob := login(t, addr, fmt.Sprintf("mb%d", suffix), "phone", true)
	carol := login(t, addr, fmt.Sprintf("mc%d", suffix), "phone", true)
	created, err := alice.CreateGroup(ctx, "mentions", []int64{bob.id, carol.id}, "")
	if err != nil {
		t.Fatal(err)
	}
	g := created.ConvId

	// Bob mutes the group from his phone, registers its push token and
	// goes offline; his laptop stays.
	if err := bob.MuteConv(ctx, g, true); err != nil {
		t.Fatal(err)
	}
	if err := bob.SetPushToken(ctx, protocol.PushPlatform_FCM, "bob-token", ""); err != nil {
		t.Fatal(err)
	}
	laptop := login(t, addr, bob.name, "laptop", false)
	bob.Close()
	testwait.For(t, 5*time.Second, "bob's phone offline", func() bool {
		devs, err := laptop.ListDevices(ctx)
		return err == nil && !slices.ContainsFunc(devs, func(d *protocol.Device) bool {
			return d.DeviceId == "phone" && d.Online
		})
	})

	first, err := carol.Send(ctx, client.SendParams{ConvID: g, Text: "lunch?"})
	if err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf("@%s yes, @nobody too", bob.name)
	ids, all := client.ParseMentions(text, map[string]int64{bob.name: bob.id})
	reply, err := alice.Send(ctx, client.SendParams{ConvID: g, Text: text,
		ReplyToSeq: first.Seq, Mentions: ids, MentionAll: all})
	if err != nil {
		t.Fatal(err)
	}
	m := pushOf(t, carol, reply.MsgId)
	if m.GetReplyToSeq() != first.Seq || !slices.Equal(m.Mentions, []int64{bob.id}) || m.GetMentionAll() ||
		!client.MentionsUser(m, bob.id) || client.MentionsUser(m, carol.id) {
		t.Fatalf("carol's push = %+v", m)
	}

	convs, err := laptop.SyncConvs(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(convs.Convs, func(c *protocol.ConvSummary) bool { return c.ConvId == g })
	if i < 0 || convs.Convs[i].MentionSeq != reply.Seq || !client.UnreadMention(convs.Convs[i]) {
		t.Fatalf("bob's laptop SyncConvs = %+v", convs.Convs)
	}

	notes := sink.waitNotes(t, 1)
	if n := notes[0]; n.UserID != bob.id || n.DeviceID != "phone" || !n.Mentioned ||
		n.MsgID != reply.MsgId {
		t.Fatalf("notification = %+v, want bob's phone, mentioned, msg %d", n, reply.MsgId)
	}

	for _, tc := range []struct {
		name string
		from *user
		p    client.SendParams
		code common.ErrorCode
	}{
		{"@all by a member", carol, client.SendParams{ConvID: g, Text: "@all", MentionAll: true},
			common.ErrorCode_FORBIDDEN},
		{"a quote of the future", carol, client.SendParams{ConvID: g, Text: "x",
			ReplyToSeq: reply.Seq + 5}, common.ErrorCode_BAD_REQUEST},
		{"a mention in 1:1", alice, client.SendParams{ToUserID: carol.id, Text: "x",
			Mentions: []int64{carol.id}}, common.ErrorCode_BAD_REQUEST},
	} {
		_, err := tc.from.Send(ctx, tc.p)
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Code != tc.code {
			t.Errorf("%s: err = %v, want %s", tc.name, err, tc.code)
		}
	}
}

// pushOf waits for the PUSH of msgID on u, skipping others.
func pushOf(t *testing.T, u *user, msgID int64) *common.Message {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-u.Messages():
			if m.MsgId == msgID {
				return m
			}
		case <-deadline:
			t.Fatalf("%s: no push of msg %d within 10s", u.name, msgID)
		}
	}
}

// The terminal client against the real system: /reply quotes with an
// excerpt, @name of a member mentions them (marked on their line), an
// unknown @name stays text, @all by a member is sent as text, @all by the
// owner marks everyone, and /convs badges an unread mention.
func TestChat_RepliesAndMentions(t *testing.T) {
	sys := startSystem(t, baseConfig(t, RoleAll))
	addr := sys.GatewayAddr().String()
	ann, bob := runChat(t, addr, "qann"), runChat(t, addr, "qbob")
	cat := runChat(t, addr, "qcat")

	ann.say(t, "/group new Quotes qbob qcat")
	ann.wait(t, "created group Quotes")
	bob.wait(t, `* #1 qann created "Quotes"`)
	cat.wait(t, `* #1 qann created "Quotes"`)
	out := bob.text()
	i := strings.Index(out, "(g:")
	group := out[i+1 : i+1+28]
	bob.say(t, "/group "+group)
	bob.wait(t, "chatting in group Quotes")
	cat.say(t, "/group "+group)
	cat.wait(t, "chatting in group Quotes")

	bob.say(t, "lunch at noon?")
	ann.wait(t, "qbob #2: lunch at noon?")
	ann.say(t, "/reply #2 yes @QBob, and @nobody")
	bob.wait(t, `qann #3: (re #2 qbob: "lunch at noon?") yes @QBob, and @nobody`+
		"  <- @you")
	cat.wait(t, `qann #3: (re #2 qbob: "lunch at noon?") yes @QBob, and @nobody`)
	if strings.Contains(cat.text(), "@nobody  <- @you") {
		t.Fatalf("cat is marked for a mention of bob:\n%s", cat.text())
	}

	cat.say(t, "@all anyone?")
	cat.wait(t, "@all is for the group's owner and admins; sent as text")
	bob.wait(t, "qcat #4: @all anyone?")
	// Cat leaves the group's screen, so the next message stays unread.
	cat.to(t, "qann")
	ann.say(t, "@all meeting")
	bob.wait(t, "qann #5: @all meeting  <- @you")
	cat.wait(t, "[Quotes] ")
	cat.wait(t, "qann #5: @all meeting  <- @you")
	cat.say(t, "/convs")
	cat.wait(t, group+"  Quotes  unread ")
	line := cat.text()[strings.LastIndex(cat.text(), group+"  Quotes"):]
	if line, _, _ = strings.Cut(line, "\n"); !strings.HasSuffix(line, " @") {
		t.Fatalf("/convs does not badge cat's unread mention: %q", line)
	}
	bob.say(t, "/reply #99 nothing there")
	bob.wait(t, "! no #99 in this conversation")
}
