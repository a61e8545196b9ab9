package client

import (
	"slices"
	"strings"
	"unicode"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// MaxMentions is the most user ids one SEND may mention (duplicates count).
const MaxMentions = 50

// MentionAllName is the word that mentions every member: "@all".
const MentionAllName = "all"

// ParseMentions finds the "@name" words of text and resolves them with
// members, a group's member user ids by username: it returns the ids
// named, in order of first appearance without duplicates, and whether
// "@all" appears. A name not in members is left as plain text; trailing
// punctuation ("@bob," "@bob!") is not part of the name. The caller decides
// whether to send all (only the owner and admins may).
func ParseMentions(text string, members map[string]int64) (ids []int64, all bool) {
	for word := range strings.FieldsSeq(text) {
		name, ok := mentionName(word)
		if !ok {
			continue
		}
		if name == MentionAllName {
			all = true
			continue
		}
		if id, ok := members[name]; ok && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids, all
}

// mentionName returns the name a word mentions, "@bob," giving "bob".
func mentionName(word string) (string, bool) {
	name, ok := strings.CutPrefix(word, "@")
	if !ok {
		return "", false
	}
	name = strings.TrimRightFunc(name, func(r rune) bool {
		return unicode.IsPunct(r) && r != '_' && r != '-'
	})
	return name, name != ""
}

// MentionsUser reports whether m mentions user, by id or @all. A user's own
// message never mentions them.
func MentionsUser(m *common.Message, user int64) bool {
	if m == nil || m.SenderId == user {
		return false
	}
	return m.GetMentionAll() || slices.Contains(m.Mentions, user)
}

// UnreadMention reports whether c holds a mention of the user not read yet:
// the "@" badge of a conversation list.
func UnreadMention(c *protocol.ConvSummary) bool {
	return c != nil && c.MentionSeq > c.ReadSeq
}

// storedMentions is ids as the server stores them: sorted, without
// duplicates or the sender; nil for none.
func storedMentions(sender int64, ids []int64) []int64 {
	out := slices.DeleteFunc(slices.Clone(ids), func(u int64) bool { return u == sender })
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		return nil
	}
	return out
}
