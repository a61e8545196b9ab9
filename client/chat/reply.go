package chat

import (
	"context"
	"fmt"
	"strings"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Replies and mentions in the terminal. "/reply #<seq> <text>" quotes a
// message; in a group, "@name" words naming members become mentions and
// "@all" mentions everyone when the user is the owner or an admin (else
// the word is sent as plain text, as an unknown name is). A line quoting a
// message names its #seq, with the start of its text when this client saw
// it; a line mentioning the user ends with mentionMark.

// mentionMark ends a line that mentions the user.
const mentionMark = "  <- @you"

// quoteCacheSize bounds the messages whose text is kept for the excerpt of
// a later reply to them.
const quoteCacheSize = 1024

// quoteRunes is how much of a quoted message a reply line shows.
const quoteRunes = 30

// quoteKey names a message by conversation and seq.
type quoteKey struct {
	conv string
	seq  int64
}

// quoted is what a reply line shows of the message it quotes.
type quoted struct {
	sender string
	text   string
}

// quotes remembers the text of the last quoteCacheSize messages printed, in
// a ring: the excerpt of a reply is best-effort.
type quotes struct {
	byKey map[quoteKey]quoted
	ring  []quoteKey
	next  int
}

func (q *quotes) put(k quoteKey, v quoted) {
	if q.byKey == nil {
		q.byKey = make(map[quoteKey]quoted, quoteCacheSize)
		q.ring = make([]quoteKey, 0, quoteCacheSize)
	}
	if _, ok := q.byKey[k]; !ok {
		if len(q.ring) < quoteCacheSize {
			q.ring = append(q.ring, k)
		} else {
			delete(q.byKey, q.ring[q.next])
			q.ring[q.next] = k
			q.next = (q.next + 1) % quoteCacheSize
		}
	}
	q.byKey[k] = v
}

// forget drops the texts of conv's messages up to seq, a clear's: the ring
// keeps their keys until it reuses their slots.
func (q *quotes) forget(conv string, upTo int64) {
	for k := range q.byKey {
		if k.conv == conv && k.seq <= upTo {
			delete(q.byKey, k)
		}
	}
}

func (q *quotes) get(k quoteKey) (quoted, bool) {
	v, ok := q.byKey[k]
	return v, ok
}

// replyCommand runs "/reply #<seq> <text>".
func (s *session) replyCommand(ctx context.Context, arg string) error {
	seqText, text, _ := strings.Cut(arg, " ")
	seq, ok := parseSeq(seqText)
	text = strings.TrimSpace(text)
	switch {
	case s.conv() == "":
		return fmt.Errorf("no conversation yet: /to <user> or /group")
	case !ok || text == "":
		return fmt.Errorf("usage: /reply #<seq> <text>")
	}
	// The server refuses a seq its sender cannot read in its own terms
	// ("reply_to_seq 9 is not a readable message before seq 12 of
	// p2p:1:2"); asked first, the client says it as /edit does. When the
	// look-up itself fails, the reply is queued all the same and the
	// server judges; offline, it is not asked, which would hold the
	// input up to requestDeadline.
	if !s.offline.Load() {
		target, err := s.readMessage(ctx, s.conv(), seq)
		if err == nil && target == nil {
			return fmt.Errorf("no #%d in this conversation", seq)
		}
		if err == nil && !isMessage(target.ContentType) {
			return eventQuoted(target)
		}
	}
	s.sendReply(ctx, text, seq)
	return nil
}

// eventQuoted is the refusal of a reply to event m, naming the message it
// changed when it changed one: the server does not read the row a reply
// quotes, so it would take it.
func eventQuoted(m *common.Message) error {
	var what string
	var target int64
	switch m.ContentType {
	case common.ContentType_EDIT:
		if ev, err := client.EditEventOf(m); err == nil {
			what, target = "an edit of", ev.Seq
		}
	case common.ContentType_RECALL:
		if ev, err := client.RecallEventOf(m); err == nil {
			what, target = "a recall of", ev.Seq
		}
	case common.ContentType_REACTION:
		if ev, err := client.ReactionEventOf(m); err == nil {
			what, target = "a reaction to", ev.Seq
		}
	case common.ContentType_PIN:
		if ev, err := client.PinEventOf(m); err == nil {
			what, target = "a pin of", ev.Seq
		}
	}
	if target == 0 {
		return fmt.Errorf("#%d is an event, not a message: a reply quotes a message", m.Seq)
	}
	return fmt.Errorf("#%d is an event (%s #%d), not a message: /reply #%d", m.Seq, what,
		target, target)
}

// sendReply queues text for the current conversation, quoting replyTo
// (0: none), with the mentions a group message names.
func (s *session) sendReply(ctx context.Context, text string, replyTo int64) {
	typed := typedText(text)
	if strings.TrimSpace(typed) == "" {
		return // nothing but control characters: nothing was meant to go
	}
	if s.isSecret(text) || s.isSecret(typed) {
		s.printf("! not sent: that line is a password typed in this run; type it only " +
			"when asked for it")
		return
	}
	text = typed
	if err := s.readOnly(); err != nil {
		s.printf("! not sent: %s", err)
		return
	}
	if s.group == "" {
		s.sendP2P(client.SendParams{Text: text, ReplyToSeq: replyTo})
		return
	}
	p := client.SendParams{ConvID: s.group, Text: text, ReplyToSeq: replyTo,
		ClientMsgID: client.NewClientMsgID()}
	if strings.Contains(text, "@") {
		p.Mentions, p.MentionAll = s.mentionsIn(ctx, text)
	}
	s.enqueue(p)
}

// mentionsIn resolves the @names of text against the group's members;
// a failed look-up sends the text without mentions.
func (s *session) mentionsIn(ctx context.Context, text string) ([]int64, bool) {
	members, err := s.groupMembers(ctx, s.group)
	if err != nil {
		s.printf("! members unknown (%s): sent without mentions", describe(err))
		return nil, false
	}
	ids, all := client.ParseMentions(strings.ToLower(text), members.byName)
	if all && !members.mayAll {
		s.printf("* @all is for the group's owner and admins; sent as text")
		all = false
	}
	if len(ids) > client.MaxMentions {
		ids = ids[:client.MaxMentions]
	}
	return ids, all
}

// mentionables is what mentions in a group need of its members: their ids
// by folded name, and whether the user may mention @all.
type mentionables struct {
	byName map[string]int64
	mayAll bool
}

// groupMembers returns the mentionables of group, asking the server once
// and then until the group's next event (forgetMembers) changes who is in
// it, their roles or its name.
func (s *session) groupMembers(ctx context.Context, group string) (mentionables, error) {
	if m, ok := s.mentionables[group]; ok {
		return m, nil
	}
	var info *protocol.GroupInfo
	err := s.request(ctx, func(ctx context.Context, c *client.Client) error {
		var err error
		info, err = c.GetGroup(ctx, group)
		return err
	})
	if err != nil {
		return mentionables{}, err
	}
	// Names fold as the server folds them: "@Bob" mentions bob.
	m := mentionables{byName: make(map[string]int64, len(info.Members))}
	for _, member := range info.Members {
		m.byName[strings.ToLower(s.nameOf(ctx, member.UserId))] = member.UserId
		if member.UserId == s.me {
			m.mayAll = member.Role >= common.GroupRole_ADMIN
		}
	}
	if s.mentionables == nil {
		s.mentionables = make(map[string]mentionables)
	}
	s.mentionables[group] = m
	return m, nil
}

// forgetMembers drops the mentionables of m's group when m is one of its
// events (ADD, REMOVE, LEAVE, RENAME, SET_ROLE...): the next line with an
// @ asks for the members again. It runs on every message of the stream,
// shown before or not, so an event printed by history first is not missed.
func (s *session) forgetMembers(m *common.Message) {
	if m.ContentType == common.ContentType_GROUP_EVENT {
		delete(s.mentionables, m.ConvId)
	}
}

// decorate renders a message's line: its quote marker, its text, and the
// mark when it mentions the user; it remembers the text for later quotes.
func (s *session) decorate(m *common.Message, sender string) string {
	text := messageText(m)
	if m.GetReplyToSeq() > 0 {
		text = s.quoteMarker(m.ConvId, m.GetReplyToSeq()) + " " + text
	}
	if client.MentionsUser(m, s.me) {
		text += mentionMark
	}
	text += reactionsText(m.Reactions)
	if !m.Recalled && m.ContentType == common.ContentType_TEXT {
		s.quotes.put(quoteKey{m.ConvId, m.Seq}, quoted{sender: sender,
			text: string(m.Content)})
	}
	return formatLine(m, sender, text)
}

// reactionsText renders the reactions a history page carries, as
// " [👍 2, 🎉 1]"; "" when there are none. Live REACTION events print their
// own lines instead.
func reactionsText(rs []*common.Reaction) string {
	if len(rs) == 0 {
		return ""
	}
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%s %d", clean(r.Emoji), r.Count)
	}
	return " [" + strings.Join(parts, ", ") + "]"
}

// quoteMarker names the quoted message: `(re #3 alice: "lunch?")`, or
// `(re #3)` when this client has not seen its text.
func (s *session) quoteMarker(conv string, seq int64) string {
	q, ok := s.quotes.get(quoteKey{conv, seq})
	if !ok {
		return fmt.Sprintf("(re #%d)", seq)
	}
	return fmt.Sprintf("(re #%d %s: %q)", seq, q.sender, cutRunes(q.text, quoteRunes))
}

// forgetQuoted follows the recalls and edits of quoted messages, so that a
// reply never shows the text of a recalled message.
func (s *session) forgetQuoted(m *common.Message) {
	switch m.ContentType {
	case common.ContentType_RECALL:
		if ev, err := client.RecallEventOf(m); err == nil {
			delete(s.quotes.byKey, quoteKey{m.ConvId, ev.Seq})
		}
	case common.ContentType_EDIT:
		ev, err := client.EditEventOf(m)
		if err != nil || ev.ContentType != common.ContentType_TEXT {
			return
		}
		k := quoteKey{m.ConvId, ev.Seq}
		if q, ok := s.quotes.get(k); ok {
			q.text = string(ev.Content)
			s.quotes.byKey[k] = q
		}
	}
}

// cutRunes returns the first n characters of text, with "…" when cut.
func cutRunes(text string, n int) string {
	i := 0
	for at := range text {
		if i == n {
			return text[:at] + "…"
		}
		i++
	}
	return text
}
