package logic

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gorm.io/gorm"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Replies and mentions. A message may quote an earlier one of its
// conversation (reply_to_seq) and, in a group, mention members by id or all
// of them at once. What needs no database is checked by validateSend and
// normalised by newMessage; what depends on the membership (who is a
// member, who may mention all, from which seq the sender may read) is
// checked under the conversation's lock (checkQuote, checkMentions), and each
// mentioned member's mention_seq moves in the transaction that stores the
// message (moveMentions), so SyncConvs reports it with the message.

// maxMentions bounds the user ids of one SEND's mentions.
const maxMentions = 50

// validateMentions checks the reply and mention fields of req that need no
// database: mentions are for groups only, and at most maxMentions ids,
// duplicates included, so that MaxMessageBody bounds every SEND logic takes.
func validateMentions(req *protocol.SendReq) error {
	switch {
	case req.GetReplyToSeq() < 0:
		return fmt.Errorf("%w: reply_to_seq %d", ErrBadRequest, req.GetReplyToSeq())
	case (len(req.Mentions) > 0 || req.GetMentionAll()) && !isGroupID(req.ConvId):
		return fmt.Errorf("%w: mentions are for group conversations", ErrBadRequest)
	case len(req.Mentions) > maxMentions:
		return fmt.Errorf("%w: %d mentions, at most %d", ErrBadRequest, len(req.Mentions),
			maxMentions)
	}
	for _, u := range req.Mentions {
		if u <= 0 {
			return fmt.Errorf("%w: mentioned user %d", ErrBadRequest, u)
		}
	}
	return nil
}

// normalMentions returns ids without duplicates and without sender, in
// ascending order: the stored form, whatever order the client sent.
func normalMentions(sender int64, ids []int64) []int64 {
	if len(ids) == 0 {
		return nil
	}
	out := slices.Clone(ids)
	slices.Sort(out)
	out = slices.Compact(out)
	out = slices.DeleteFunc(out, func(u int64) bool { return u == sender })
	if len(out) == 0 {
		return nil
	}
	return out
}

// encodeMentions is the stored form of ids: decimal ids separated by commas,
// "" for none. Fifty ids of 19 digits fit the column (1024).
func encodeMentions(ids []int64) string {
	if len(ids) == 0 {
		return ""
	}
	b := make([]byte, 0, len(ids)*8)
	for i, u := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, u, 10)
	}
	return string(b)
}

// decodeMentions reads encodeMentions's form; a malformed id is skipped,
// since a message is better shown without it than not at all.
func decodeMentions(s string) []int64 {
	if s == "" {
		return nil
	}
	out := make([]int64, 0, strings.Count(s, ",")+1)
	for part := range strings.SplitSeq(s, ",") {
		if u, err := strconv.ParseInt(part, 10, 64); err == nil {
			out = append(out, u)
		}
	}
	return out
}

// checkQuote checks under the conversation's lock that m, which has its
// seq, quotes a message before it that its sender can read: one at or
// after from, the sender's first readable seq (their join, in a group).
func checkQuote(m *messageRow, from int64) error {
	if m.ReplyToSeq == 0 {
		return nil
	}
	if m.ReplyToSeq >= m.Seq || m.ReplyToSeq < max(1, from) {
		return fmt.Errorf("%w: reply_to_seq %d is not a readable message before seq %d of %s",
			ErrBadRequest, m.ReplyToSeq, m.Seq, m.ConvID)
	}
	return nil
}

// checkMentions checks under the group's lock that m mentions current
// members only, and all of them only when its sender is the owner or an
// admin.
func checkMentions(m *messageRow, ms *memberSet) error {
	if m.MentionAll && ms.roles[m.SenderID] < common.GroupRole_ADMIN {
		return fmt.Errorf("%w: only the owner or an admin may mention all in %s",
			ErrForbidden, m.ConvID)
	}
	for _, u := range m.mentionIDs {
		if _, ok := ms.roles[u]; !ok {
			return fmt.Errorf("%w: mentioned user %d is not a member of %s",
				ErrBadRequest, u, m.ConvID)
		}
	}
	return nil
}

// moveMentions moves the mention positions of the members msgs mention, in
// a statement for the members named and one for the @all messages (more
// only past 1<<maxConvsLog of either). msgs are stored messages of one
// transaction in seq order within each conversation.
func (s *Service) moveMentions(tx *gorm.DB, msgs []*messageRow) error {
	var named []seqMove
	// An @all message's move has its sender as user: the one member it
	// leaves out.
	var all []seqMove
	at := make(map[seqMove]int) // (conv, user) -> index into named
	for _, m := range msgs {
		if m.MentionAll {
			all = append(all, seqMove{m.ConvID, m.SenderID, m.Seq})
		}
		for _, u := range m.mentionIDs {
			key := seqMove{conv: m.ConvID, user: u}
			if i, ok := at[key]; ok {
				named[i].seq = m.Seq // later in the conversation
				continue
			}
			at[key] = len(named)
			named = append(named, seqMove{m.ConvID, u, m.Seq})
		}
	}
	for part := range slices.Chunk(named, 1<<maxConvsLog) {
		if err := execSeqMoves(tx, s.queries.moveMentions, part); err != nil {
			return err
		}
	}
	// The CASE takes the first @all that applies to a member: the newest
	// of the conversation whose sender is someone else.
	slices.SortStableFunc(all, func(a, b seqMove) int {
		if c := strings.Compare(a.conv, b.conv); c != 0 {
			return c
		}
		return int(b.seq - a.seq)
	})
	for part := range slices.Chunk(all, 1<<maxConvsLog) {
		if err := execSeqMoves(tx, s.queries.moveAllMentions, part); err != nil {
			return err
		}
	}
	return nil
}
