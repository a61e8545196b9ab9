package chat

import (
	"context"
	"strings"
	"testing"

	"github.com/resonance-im/resonance/internal/syncbuf"
	"github.com/resonance-im/resonance/kitex_gen/common"
)

func TestReply_Usage(t *testing.T) {
	var out syncbuf.Buffer
	s := newSession(config{}, &out)
	s.me, s.peer = 1, peer{name: "bob", id: 2}
	s.offline.Store(true) // no server to ask whether #3 exists: the reply is queued
	for _, line := range []string{"/reply", "/reply #x hi", "/reply #0 hi", "/reply #3"} {
		if err := s.handleLine(context.Background(), line); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Count(out.String(), "usage: /reply #<seq> <text>"); got != 4 {
		t.Fatalf("usage printed %d times, want 4:\n%s", got, out.String())
	}
	if err := s.handleLine(context.Background(), "/reply #3 sure"); err != nil {
		t.Fatal(err)
	}
	p := <-s.outbox
	if p.ReplyToSeq != 3 || p.Text != "sure" || p.ToUserID != 2 {
		t.Fatalf("queued %+v", p)
	}
}

// A reply line names the quoted #seq, with an excerpt only while the client
// holds the quoted text: an edit replaces it, a recall forgets it; a line
// mentioning the user is marked.
func TestDecorate_QuoteMarkerAndMention(t *testing.T) {
	s := newSession(config{}, &syncbuf.Buffer{})
	s.me = 2
	text := func(seq int64, body string) *common.Message {
		return &common.Message{ConvId: "g:1", Seq: seq, SenderId: 1,
			ContentType: common.ContentType_TEXT, Content: []byte(body)}
	}
	s.decorate(text(1, "a long question that goes on and on and on"), "ann")
	reply := text(2, "yes")
	reply.ReplyToSeq, reply.Mentions = new(int64(1)), []int64{2}
	got := s.decorate(reply, "ann")
	want := `ann #2: (re #1 ann: "a long question that goes on a…") yes` + mentionMark
	if !strings.HasSuffix(got, want) {
		t.Fatalf("line %q, want the suffix %q", got, want)
	}
	reply.ReplyToSeq, reply.Mentions = new(int64(9)), nil
	if got := s.decorate(reply, "ann"); !strings.HasSuffix(got, "ann #2: (re #9) yes") {
		t.Fatalf("unknown quote: %q", got)
	}

	edit := &common.EditEvent{Seq: 1, ContentType: common.ContentType_TEXT,
		Content: []byte("short")}
	s.forgetQuoted(event(common.ContentType_EDIT, edit))
	reply.ReplyToSeq = new(int64(1))
	if got := s.decorate(reply, "ann"); !strings.HasSuffix(got, `(re #1 ann: "short") yes`) {
		t.Fatalf("after the edit: %q", got)
	}
	s.forgetQuoted(event(common.ContentType_RECALL, &common.RecallEvent{Seq: 1}))
	if got := s.decorate(reply, "ann"); !strings.HasSuffix(got, "(re #1) yes") {
		t.Fatalf("after the recall: %q", got)
	}

	var q quotes
	for seq := range int64(quoteCacheSize + 1) {
		q.put(quoteKey{"c", seq}, quoted{text: "x"})
	}
	if _, ok := q.get(quoteKey{"c", 0}); ok || len(q.byKey) != quoteCacheSize {
		t.Fatalf("the ring kept %d texts and the oldest: %v", len(q.byKey), ok)
	}
}

// event is a stored event of conversation g:1 with body as its content.
func event(ct common.ContentType, body interface {
	BLength() int
	FastWrite([]byte) int
}) *common.Message {
	buf := make([]byte, body.BLength())
	body.FastWrite(buf)
	return &common.Message{ConvId: "g:1", Seq: 10, ContentType: ct, Content: buf}
}
