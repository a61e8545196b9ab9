package logic

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/resonance-im/resonance/internal/ratelimit"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// search runs one SearchMessages page for ss and fails t on error.
func (e *env) search(t *testing.T, ss *logicrpc.Session,
	req *protocol.SearchMessagesReq) *protocol.SearchMessagesResp {
	t.Helper()
	resp, err := e.svc.SearchMessages(ctxBG, ss, req)
	if err != nil {
		t.Fatalf("search %+v: %v", req, err)
	}
	return resp
}

// searchAll follows a search's pages to the end and returns every match,
// in the order given, and the number of pages.
func (e *env) searchAll(t *testing.T, user int64, conv, query string,
	limit int32) ([]*common.Message, int) {
	t.Helper()
	var out []*common.Message
	req := &protocol.SearchMessagesReq{Query: query, ConvId: conv, Limit: limit}
	for pages := 1; ; pages++ {
		resp := e.search(t, session(user, 1), req)
		out = append(out, resp.Messages...)
		if resp.NextCursor == 0 {
			return out, pages
		}
		if req.Cursor != 0 && resp.NextCursor >= req.Cursor {
			t.Fatalf("cursor went from %d to %d", req.Cursor, resp.NextCursor)
		}
		if pages > 1000 {
			t.Fatal("search does not end")
		}
		req.Cursor = resp.NextCursor
	}
}

// texts returns the contents of msgs as strings.
func texts(msgs []*common.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m.Content)
	}
	return out
}

// searchTexts is searchAll's matches as texts.
func (e *env) searchTexts(t *testing.T, user int64, conv, query string) []string {
	t.Helper()
	msgs, _ := e.searchAll(t, user, conv, query, 0)
	return texts(msgs)
}

// searchEnv is a SQLite env whose limits do not get in a test's way.
func searchEnv(t *testing.T) *env {
	t.Helper()
	cfg := Config{DBDriver: DriverSQLite, DBDSN: filepath.Join(t.TempDir(), "logic.db"),
		MessageSearchLimit: ratelimit.Config{Burst: 1 << 20}}
	return newEnv(t, cfg)
}

// say sends text to conv as from and fails t on error.
func (e *env) say(t *testing.T, from int64, conv, text string) *protocol.SendResp {
	t.Helper()
	resp, err := e.sendTo(from, conv, text)
	if err != nil {
		t.Fatalf("send %q: %v", text, err)
	}
	return resp
}

// sendAs sends req as from and fails t on error.
func (e *env) sendAs(t *testing.T, from int64, req *protocol.SendReq) *protocol.SendResp {
	t.Helper()
	resp, err := e.svc.Send(ctxBG, session(from, 1), req)
	if err != nil {
		t.Fatalf("send %+v: %v", req, err)
	}
	return resp
}

func TestSearchMessages_FindsTextCaseInsensitivelyNewestFirst(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		e.svc.limits.msgSearch = ratelimit.New(ratelimit.Config{Burst: 1 << 20})
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		conv := e.sendAs(t, alice, &protocol.SendReq{
			ClientMsgId: "a1", ToUserId: bob, ContentType: common.ContentType_TEXT,
			Content: []byte("Hello World")}).ConvId
		for _, text := range []string{"nothing here", "say HELLO again", "héllo Ünïcode",
			"ÜNÏCODE shouts"} {
			e.say(t, bob, conv, text)
		}
		g := e.group(t, alice, "team", bob)
		e.say(t, alice, g, "hello team")

		want := []string{"hello team", "say HELLO again", "Hello World"}
		if got := e.searchTexts(t, bob, "", "hELLo"); !slices.Equal(got, want) {
			t.Errorf("all conversations: %q, want %q", got, want)
		}
		want = []string{"say HELLO again", "Hello World"}
		if got := e.searchTexts(t, alice, conv, "hello"); !slices.Equal(got, want) {
			t.Errorf("one conversation: %q, want %q", got, want)
		}
		want = []string{"ÜNÏCODE shouts", "héllo Ünïcode"}
		if got := e.searchTexts(t, alice, "", "ünïcode"); !slices.Equal(got, want) {
			t.Errorf("non-ASCII: %q, want %q", got, want)
		}
		resp := e.search(t, session(bob, 1), &protocol.SearchMessagesReq{Query: "world"})
		if len(resp.Messages) != 1 || resp.Messages[0].SenderId != alice ||
			resp.Messages[0].ConvId != conv || resp.Messages[0].Seq != 1 {
			t.Errorf("match = %+v, want alice's seq 1 of %s", resp.Messages, conv)
		}
	})
}

func TestSearchMessages_GroupMembershipWindow(t *testing.T) {
	e := searchEnv(t)
	alice, bob, carol := e.register(t, "alice"), e.register(t, "bob"), e.register(t, "carol")
	dave := e.register(t, "dave")
	g := e.group(t, alice, "needle group", carol)
	e.say(t, alice, g, "needle before bob joined")
	if _, err := e.manage(alice, g, common.GroupAction_ADD, []int64{bob}, "",
		0); err != nil {
		t.Fatal(err)
	}
	e.say(t, alice, g, "needle while all three")
	if _, err := e.manage(carol, g, common.GroupAction_LEAVE, nil, "", 0); err != nil {
		t.Fatal(err)
	}
	e.say(t, alice, g, "needle after carol left")

	cases := []struct {
		name string
		user int64
		want []string
	}{
		{"owner reads all", alice, []string{"needle after carol left",
			"needle while all three", "needle before bob joined"}},
		{"joined later", bob, []string{"needle after carol left", "needle while all three"}},
		{"left", carol, []string{"needle while all three", "needle before bob joined"}},
		{"stranger", dave, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, conv := range []string{"", g} {
				if conv == g && tc.user == dave {
					continue
				}
				got := e.searchTexts(t, tc.user, conv, "NEEDLE")
				if !slices.Equal(got, tc.want) {
					t.Errorf("conv %q: %q, want %q", conv, got, tc.want)
				}
			}
		})
	}
	_, err := e.svc.SearchMessages(ctxBG, session(dave, 1),
		&protocol.SearchMessagesReq{Query: "needle", ConvId: g})
	wantCode(t, err, common.ErrorCode_FORBIDDEN)
	// A p2p conversation of two others is no more readable.
	p2p := e.sendAs(t, alice, &protocol.SendReq{
		ClientMsgId: "p", ToUserId: bob, ContentType: common.ContentType_TEXT,
		Content: []byte("needle between two")}).ConvId
	_, err = e.svc.SearchMessages(ctxBG, session(dave, 1),
		&protocol.SearchMessagesReq{Query: "needle", ConvId: p2p})
	if err == nil {
		t.Fatal("a stranger searched a p2p conversation of others")
	}
}

func TestSearchMessages_NotBeforeTheUsersClear(t *testing.T) {
	e := searchEnv(t)
	alice, bob := e.register(t, "alice"), e.register(t, "bob")
	conv := e.sendAs(t, alice, &protocol.SendReq{
		ClientMsgId: "c1", ToUserId: bob, ContentType: common.ContentType_TEXT,
		Content: []byte("needle one")}).ConvId
	e.say(t, alice, conv, "needle two")
	e.clear(t, session(bob, 1), conv, 1, false)
	e.say(t, alice, conv, "needle three")

	if got, want := e.searchTexts(t, bob, "", "needle"), []string{"needle three",
		"needle two"}; !slices.Equal(got, want) {
		t.Errorf("after bob's clear: %q, want %q", got, want)
	}
	if got := e.searchTexts(t, alice, conv, "needle"); len(got) != 3 {
		t.Errorf("alice, who did not clear: %q, want all three", got)
	}
	e.clear(t, session(bob, 1), conv, 0, true)
	if got := e.searchTexts(t, bob, conv, "needle"); len(got) != 0 {
		t.Errorf("after clearing all: %q, want none", got)
	}
}

func TestSearchMessages_OnlyCurrentTextOfTextMessages(t *testing.T) {
	e := searchEnv(t)
	alice, bob := e.register(t, "alice"), e.register(t, "bob")
	first := e.sendAs(t, alice, &protocol.SendReq{
		ClientMsgId: "e1", ToUserId: bob, ContentType: common.ContentType_TEXT,
		Content: []byte("original words")})
	conv := first.ConvId
	_, err := e.svc.Edit(ctxBG, session(alice, 1), &protocol.EditReq{ClientMsgId: "e2",
		ConvId: conv, Seq: first.Seq, ContentType: common.ContentType_TEXT,
		Content: []byte("corrected words")})
	if err != nil {
		t.Fatal(err)
	}
	gone := e.say(t, alice, conv, "secret words")
	_, err = e.svc.Recall(ctxBG, session(alice, 1), &protocol.RecallReq{ClientMsgId: "r1",
		ConvId: conv, Seq: gone.Seq})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Send(ctxBG, session(alice, 1), &protocol.SendReq{ClientMsgId: "b1",
		ConvId: conv, ContentType: common.ContentType_BINARY, Content: []byte("binary words")})
	if err != nil {
		t.Fatal(err)
	}
	g := e.group(t, alice, "words group", bob) // its event carries the name

	cases := []struct{ query, want string }{
		{"corrected", "corrected words"},
		{"original", ""}, // an edit replaced it
		{"secret", ""},   // recalled
		{"binary", ""},
		{"group", ""}, // the CREATE event's group name
	}
	for _, tc := range cases {
		got := strings.Join(e.searchTexts(t, bob, "", tc.query), "|")
		if got != tc.want {
			t.Errorf("%q finds %q, want %q", tc.query, got, tc.want)
		}
	}
	msgs, _ := e.searchAll(t, bob, "", "words", 0)
	if len(msgs) != 1 || msgs[0].EditedMs == 0 || msgs[0].Seq != first.Seq {
		t.Errorf("words: %+v, want the edited message alone", msgs)
	}
	_ = g
}

func TestSearchMessages_FindsFileByName(t *testing.T) {
	e := searchEnv(t)
	alice, bob := e.register(t, "alice"), e.register(t, "bob")
	ref := e.upload(t, alice, "Quarterly-Report.pdf", "application/pdf", randomBytes(t, 100))
	sent := e.sendAs(t, alice, fileReq(t, "f1", bob, "", ref))
	msgs, _ := e.searchAll(t, bob, "", "quarterly", 0)
	if len(msgs) != 1 || msgs[0].Seq != sent.Seq ||
		msgs[0].ContentType != common.ContentType_FILE {
		t.Fatalf("file search: %+v, want the file message", msgs)
	}
}

func TestSearchMessages_PagesABoundedScan(t *testing.T) {
	e := searchEnv(t)
	e.svc.searchRows = 20
	alice, bob := e.register(t, "alice"), e.register(t, "bob")
	conv := e.sendN(t, alice, bob, 1, "rare").ConvId // seq 1 holds the rare word
	for i := range 59 {
		e.say(t, alice, conv, fmt.Sprintf("filler %d", i))
	}
	first := e.search(t, session(bob, 1), &protocol.SearchMessagesReq{Query: "rare"})
	if len(first.Messages) != 0 || first.NextCursor == 0 {
		t.Fatalf("first page: %d matches, cursor %d; want none and a cursor (20 of 60 read)",
			len(first.Messages), first.NextCursor)
	}
	msgs, pages := e.searchAll(t, bob, conv, "rare", 0)
	if len(msgs) != 1 || msgs[0].Seq != 1 || pages != 3 {
		t.Fatalf("rare word: seqs %v in %d pages, want [1] in 3", seqsOf(msgs), pages)
	}
}

func TestSearchMessages_PagesMergeConversationsNewestFirst(t *testing.T) {
	e := searchEnv(t)
	e.svc.searchRows = 7
	alice, bob, carol := e.register(t, "alice"), e.register(t, "bob"), e.register(t, "carol")
	ab := e.sendN(t, alice, bob, 1, "x").ConvId
	g := e.group(t, carol, "g", alice)
	var want []int64
	for i := range 40 {
		conv, from, text := ab, bob, fmt.Sprintf("hit %d", i)
		if i%3 == 0 {
			conv, from = g, carol
		}
		if i%5 == 0 {
			text = fmt.Sprintf("miss %d", i)
		}
		r := e.say(t, from, conv, text)
		if i%5 != 0 {
			want = append(want, r.MsgId)
		}
	}
	slices.Reverse(want)
	for _, limit := range []int32{0, 1, 3} {
		msgs, _ := e.searchAll(t, alice, "", "HIT", limit)
		got := make([]int64, len(msgs))
		for i, m := range msgs {
			got[i] = m.MsgId
		}
		if !slices.Equal(got, want) {
			t.Errorf("limit %d: msg ids %v, want %v", limit, got, want)
		}
	}
	resp := e.search(t, session(alice, 1), &protocol.SearchMessagesReq{Query: "hit",
		Limit: 1000})
	if len(resp.Messages) > maxSearchMatches {
		t.Errorf("limit 1000 gave %d matches, over %d", len(resp.Messages), maxSearchMatches)
	}
}

func TestSearchMessages_RefusesBadQueries(t *testing.T) {
	e := searchEnv(t)
	alice := e.register(t, "alice")
	cases := []struct {
		name string
		req  *protocol.SearchMessagesReq
	}{
		{"empty", &protocol.SearchMessagesReq{}},
		{"spaces", &protocol.SearchMessagesReq{Query: "   "}},
		{"too long", &protocol.SearchMessagesReq{Query: strings.Repeat("é", 65)}},
		{"not UTF-8", &protocol.SearchMessagesReq{Query: "\xff"}},
		{"negative cursor", &protocol.SearchMessagesReq{Query: "a", Cursor: -1}},
		{"bad conv", &protocol.SearchMessagesReq{Query: "a", ConvId: "nonsense"}},
	}
	for _, tc := range cases {
		_, err := e.svc.SearchMessages(ctxBG, session(alice, 1), tc.req)
		t.Run(tc.name, func(t *testing.T) { wantCode(t, err, common.ErrorCode_BAD_REQUEST) })
	}
	e.search(t, session(alice, 1), &protocol.SearchMessagesReq{
		Query: " " + strings.Repeat("é", 64) + " "})
	_, err := e.svc.SearchMessages(ctxBG, &logicrpc.Session{},
		&protocol.SearchMessagesReq{Query: "a"})
	wantCode(t, err, common.ErrorCode_UNAUTHENTICATED)
}

func TestSearchMessages_RateLimitedPerUser(t *testing.T) {
	cfg := Config{DBDriver: DriverSQLite, DBDSN: filepath.Join(t.TempDir(), "logic.db"),
		MessageSearchLimit: ratelimit.Config{Burst: 2, Per: 1 << 40}}
	e := newEnv(t, cfg)
	alice, bob := e.register(t, "alice"), e.register(t, "bob")
	req := &protocol.SearchMessagesReq{Query: "x"}
	for range 2 {
		e.search(t, session(alice, 1), req)
	}
	_, err := e.svc.SearchMessages(ctxBG, session(alice, 1), req)
	wantCode(t, err, common.ErrorCode_RATE_LIMITED)
	e.search(t, session(bob, 1), req) // another user's budget
}

func TestSearchMessages_RefusesSignedOutDevice(t *testing.T) {
	e := searchEnv(t)
	e.register(t, "alice")
	phone := e.loginDevice(t, "alice", "phone", 1)
	laptop := e.loginDevice(t, "alice", "laptop", 2)
	req := &protocol.SearchMessagesReq{Query: "x"}
	e.search(t, laptop.sess, req)
	if _, err := e.svc.SignOutDevice(ctxBG, phone.sess,
		&protocol.SignOutDeviceReq{DeviceId: "laptop"}); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.SearchMessages(ctxBG, laptop.sess, req)
	wantCode(t, err, common.ErrorCode_TOKEN_INVALID)
}

// The store reads a search page's share of a conversation through the
// (conv_id, id) index, newest first without a sort, and turns the
// membership's seq bounds into id bounds through the (conv_id, seq) one:
// its work is the share, whatever the size of the history around it.
func TestSearchMessages_ScanUsesTheConvIDIndexWithoutSort(t *testing.T) {
	e := searchEnv(t)
	c := searchConv{id: "g:abc", rr: readRange{from: 10, to: 500, cleared: 20}}
	query := e.db.ToSQL(func(tx *gorm.DB) *gorm.DB {
		var rows []messageRow
		return searchConvQuery(tx, c, 1000, 17).Find(&rows)
	})
	var plan []string
	rows, err := e.db.Raw("EXPLAIN QUERY PLAN " + query).Rows()
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	all := strings.Join(plan, "\n")
	t.Logf("plan of %s:\n%s", query, all)
	if !regexp.MustCompile(`SEARCH messages USING INDEX messages_conv_id \(conv_id=\? AND ` +
		`id>\? AND id<\?\)`).MatchString(all) {
		t.Errorf("the page is not read by a range of the (conv_id, id) index:\n%s", all)
	}
	if strings.Count(all, "INDEX messages_conv_seq (conv_id=? AND seq") != 2 {
		t.Errorf("the seq bounds are not read through the (conv_id, seq) index:\n%s", all)
	}
	if strings.Contains(all, "TEMP B-TREE") || strings.Contains(all, "SCAN ") {
		t.Errorf("the store sorts or scans:\n%s", all)
	}
}

// A user of many conversations: a page reads about its budget, not a share
// of each conversation, so the search takes several pages, and they still
// return every match once, newest first.
func TestSearchMessages_ManyConversationsPageByBudget(t *testing.T) {
	e := searchEnv(t)
	e.svc.searchRows = 20
	alice, bob := e.register(t, "alice"), e.register(t, "bob")
	var groups []string
	for i := range 30 {
		groups = append(groups, e.group(t, bob, fmt.Sprintf("g%d", i), alice))
	}
	var want []int64
	for round := range 2 {
		for i, g := range groups {
			r := e.say(t, bob, g, fmt.Sprintf("hit %d.%d", i, round))
			want = append(want, r.MsgId)
		}
	}
	slices.Reverse(want)
	msgs, pages := e.searchAll(t, alice, "", "hit", maxSearchMatches)
	got := make([]int64, len(msgs))
	for i, m := range msgs {
		got[i] = m.MsgId
	}
	if !slices.Equal(got, want) {
		t.Fatalf("msg ids %v, want %v", got, want)
	}
	// 90 messages (each group's CREATE too) at about 20 a page.
	if pages < 4 {
		t.Errorf("%d pages for 90 messages at 20 a page: a page read past its budget", pages)
	}
}

// matches decides on a stored row alone: the current text of a TEXT
// message or the name or caption of a FILE, never a recalled message
// (whatever content it kept), an event or BINARY content.
func TestSearchMessages_MatchesByContentType(t *testing.T) {
	file := func(ref *common.FileRef) []byte {
		b := make([]byte, ref.BLength())
		ref.FastWriteNocopy(b, nil)
		return b
	}
	caption := "Beach Photos"
	text, bin := int16(common.ContentType_TEXT), int16(common.ContentType_BINARY)
	cases := []struct {
		name string
		row  messageRow
		want bool
	}{
		{"text, other case", messageRow{ContentType: text, Content: []byte("See the BEACH")},
			true},
		{"text, non-ASCII", messageRow{ContentType: text, Content: []byte("STRAND à la BEACH")},
			true},
		{"text without it", messageRow{ContentType: text, Content: []byte("mountains")}, false},
		{"recalled text", messageRow{ContentType: text, Content: []byte("beach"),
			Recalled: true}, false},
		{"binary", messageRow{ContentType: bin, Content: []byte("beach")}, false},
		{"edit event", messageRow{ContentType: int16(common.ContentType_EDIT),
			Content: []byte("beach")}, false},
		{"group event", messageRow{ContentType: int16(common.ContentType_GROUP_EVENT),
			Content: []byte("beach")}, false},
		{"file by name", messageRow{ContentType: int16(common.ContentType_FILE),
			Content: file(&common.FileRef{FileId: "f", Name: "beach.jpg"})}, true},
		{"file by caption", messageRow{ContentType: int16(common.ContentType_FILE),
			Content: file(&common.FileRef{FileId: "f", Name: "a.jpg", Caption: &caption})}, true},
		{"file by neither", messageRow{ContentType: int16(common.ContentType_FILE),
			Content: file(&common.FileRef{FileId: "beach", Name: "a.jpg"})}, false},
		{"unreadable file", messageRow{ContentType: int16(common.ContentType_FILE),
			Content: []byte("beach")}, false},
	}
	for _, tc := range cases {
		if got := matches(&tc.row, "beach"); got != tc.want {
			t.Errorf("%s: matches = %t, want %t", tc.name, got, tc.want)
		}
	}
}

// BenchmarkContainsFold_Adversarial is a page's worst text for the match:
// 16 KiB of one letter and a query that almost matches everywhere. A loop
// comparing the query at each position costs text × query.
func BenchmarkContainsFold_Adversarial(b *testing.B) {
	text := strings.Repeat("a", 16<<10)
	needle := strings.Repeat("a", 63) + "b"
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if containsFold(text, needle) {
			b.Fatal("matched")
		}
	}
}

// BenchmarkContainsFold_Mixed is an ordinary text with capitals.
func BenchmarkContainsFold_Mixed(b *testing.B) {
	text := strings.Repeat("Lunch at Noon, then the Meeting. ", 30)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if containsFold(text, "zebra") {
			b.Fatal("matched")
		}
	}
}
