package logic

import (
	"context"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rs/zerolog"
	"gorm.io/gorm"
	"gorm.io/gorm/schema"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Reaction limits; docs/protocol.md states them.
const (
	maxEmojiBytes       = 32 // one emoji, in UTF-8
	maxEmojiPerMessage  = 20 // distinct emoji on one message
	maxReactionsPerUser = 3  // one user's emoji on one message
	// maxReactionUsers is how many of an emoji's users a SYNC page names;
	// its count covers them all.
	maxReactionUsers = 10
)

// reactionRow is one user's emoji on one message, the state the REACTION
// events of the message's conversation add up to. ID orders reactions by
// first use. Emoji is bytes so that MySQL compares it bytewise: under the
// utf8mb4 collations many distinct emoji compare equal.
type reactionRow struct {
	ID        int64  `gorm:"primaryKey;autoIncrement"`
	ConvID    string `gorm:"size:64;not null"`
	Seq       int64  `gorm:"not null"`
	UserID    int64  `gorm:"not null"`
	Emoji     []byte `gorm:"size:32;not null"`
	CreatedMs int64  `gorm:"not null"`
}

// TableName names the table through the namer so that TablePrefix applies.
func (reactionRow) TableName(n schema.Namer) string { return n.TableName("reaction") }

// reactionIndexes: one reaction per user, message and emoji.
var reactionIndexes = []tableIndex{
	{model: &reactionRow{}, suffix: "_msg_emoji_user",
		columns: []string{"conv_id", "seq", "emoji", "user_id"}, unique: true},
}

// React adds the session user's emoji reaction to a message they can read,
// or removes it: a REACTION event in the conversation tells every device, in
// order, and the reactions table keeps the sum for SYNC. Adding what the user
// already has, or removing what they do not, stores nothing and answers
// duplicate with no msg_id or seq.
func (s *Service) React(ctx context.Context, session *logicrpc.Session,
	req *protocol.ReactReq) (*protocol.SendResp, error) {
	if err := s.authorizeWrite(ctx, "react", session); err != nil {
		return nil, err
	}
	if req == nil {
		req = &protocol.ReactReq{} // a missing body reads as empty
	}
	logIDs := func(e *zerolog.Event) *zerolog.Event {
		return e.Int64("user", session.UserId).Str("conv", req.GetConvId()).
			Int64("seq", req.GetSeq()).Str("client_msg", req.GetClientMsgId())
	}
	if err := checkEmoji(req.GetEmoji()); err != nil {
		return nil, s.fail("react", err, logIDs)
	}
	ev := &common.ReactionEvent{Seq: req.Seq, Emoji: req.Emoji, Removed: req.Remove}
	change := func(tx *gorm.DB, _ *convRow, target *messageRow, now time.Time) error {
		ev.MsgId = target.ID
		r := reactionRow{ConvID: target.ConvID, Seq: target.Seq, UserID: session.UserId,
			Emoji: []byte(req.Emoji), CreatedMs: now.UnixMilli()}
		if req.Remove {
			return removeReaction(tx, r)
		}
		return addReaction(tx, r)
	}
	resp, err := s.toggleMessage(ctx, session, msgChange{clientMsgID: req.ClientMsgId,
		convID: req.ConvId, seq: req.Seq, ct: common.ContentType_REACTION, byReader: true,
		event: ev, change: change})
	if err != nil {
		return nil, s.fail("react", err, logIDs)
	}
	return resp, nil
}

// checkEmoji accepts 1 to maxEmojiBytes of UTF-8 with no space or control
// character. Whether it is one grapheme, or an emoji at all, is the
// clients' business.
func checkEmoji(e string) error {
	switch {
	case e == "":
		return fmt.Errorf("%w: empty emoji", ErrBadRequest)
	case len(e) > maxEmojiBytes:
		return fmt.Errorf("%w: emoji over %d bytes", ErrTooLarge, maxEmojiBytes)
	case !utf8.ValidString(e):
		return fmt.Errorf("%w: emoji is not valid UTF-8", ErrBadRequest)
	}
	for _, r := range e {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Errorf("%w: emoji holds a space or control character", ErrBadRequest)
		}
	}
	return nil
}

// addReaction stores r unless the user has it (errNoChange), within the
// limits per user and per message, and marks its conversation Reacted. It
// runs under the conversation's row lock, so the counts it reads cannot
// change before its insert.
func addReaction(tx *gorm.DB, r reactionRow) error {
	var mine [][]byte
	err := tx.Model(&reactionRow{}).Where("conv_id = ? AND seq = ? AND user_id = ?",
		r.ConvID, r.Seq, r.UserID).Pluck("emoji", &mine).Error
	if err != nil {
		return fmt.Errorf("reactions of user=%d conv=%s seq=%d: %w", r.UserID, r.ConvID, r.Seq, err)
	}
	for _, e := range mine {
		if string(e) == string(r.Emoji) {
			return errNoChange
		}
	}
	if len(mine) >= maxReactionsPerUser {
		return fmt.Errorf("%w: at most %d reactions of yours per message", ErrTooLarge,
			maxReactionsPerUser)
	}
	var used []int64
	err = tx.Model(&reactionRow{}).Where("conv_id = ? AND seq = ? AND emoji = ?",
		r.ConvID, r.Seq, r.Emoji).Limit(1).Pluck("id", &used).Error
	if err != nil {
		return fmt.Errorf("reaction conv=%s seq=%d: %w", r.ConvID, r.Seq, err)
	}
	if len(used) == 0 {
		var distinct int64
		err = tx.Model(&reactionRow{}).Where("conv_id = ? AND seq = ?", r.ConvID, r.Seq).
			Distinct("emoji").Count(&distinct).Error
		if err != nil {
			return fmt.Errorf("emoji of conv=%s seq=%d: %w", r.ConvID, r.Seq, err)
		}
		if distinct >= maxEmojiPerMessage {
			return fmt.Errorf("%w: at most %d different emoji per message", ErrTooLarge,
				maxEmojiPerMessage)
		}
	}
	if err := tx.Create(&r).Error; err != nil {
		return fmt.Errorf("add reaction user=%d conv=%s seq=%d: %w", r.UserID, r.ConvID, r.Seq, err)
	}
	// In the reaction's transaction: a SYNC that reads the flag unset reads
	// the conversation's last_seq from before the reaction's event, which
	// the client then fetches.
	err = tx.Model(&convRow{}).Where("id = ? AND reacted = ?", r.ConvID, false).
		UpdateColumn("reacted", true).Error
	if err != nil {
		return fmt.Errorf("mark conv=%s reacted: %w", r.ConvID, err)
	}
	return nil
}

// removeReaction deletes r, or reports errNoChange when the user has no
// such reaction.
func removeReaction(tx *gorm.DB, r reactionRow) error {
	res := tx.Where("conv_id = ? AND seq = ? AND emoji = ? AND user_id = ?",
		r.ConvID, r.Seq, r.Emoji, r.UserID).Delete(&reactionRow{})
	if res.Error != nil {
		return fmt.Errorf("remove reaction user=%d conv=%s seq=%d: %w",
			r.UserID, r.ConvID, r.Seq, res.Error)
	}
	if res.RowsAffected == 0 {
		return errNoChange
	}
	return nil
}

// reactionAgg is one row of reactionsOf's query: a reaction among the first
// maxReactionUsers of its emoji on its message, with the emoji's count.
type reactionAgg struct {
	Seq    int64
	Emoji  []byte
	UserID int64
	N      int64
}

// reactionsOf returns the reactions to the messages at seqs of convID, by
// seq; a message without any is absent. One query for the page: a window
// function numbers each emoji's users in order of reacting and counts them,
// and only the first maxReactionUsers come back.
func (s *Service) reactionsOf(ctx context.Context, convID string,
	seqs []int64) (map[int64][]*common.Reaction, error) {
	if len(seqs) == 0 {
		return nil, nil
	}
	var rows []reactionAgg
	inner := s.rdc(ctx).Model(&reactionRow{}).
		Select("seq, emoji, user_id, id, "+
			"ROW_NUMBER() OVER (PARTITION BY seq, emoji ORDER BY id) AS rn, "+
			"COUNT(*) OVER (PARTITION BY seq, emoji) AS n").
		Where("conv_id = ? AND seq IN ?", convID, seqs)
	err := s.rdc(ctx).Table("(?) AS r", inner).Select("seq, emoji, user_id, n").
		Where("rn <= ?", maxReactionUsers).Order("seq, id").Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("reactions conv=%s (%d seqs): %w", convID, len(seqs), err)
	}
	out := make(map[int64][]*common.Reaction)
	for _, r := range rows {
		list := out[r.Seq]
		var agg *common.Reaction
		for _, a := range list {
			if a.Emoji == string(r.Emoji) {
				agg = a
				break
			}
		}
		if agg == nil {
			// Rows come by id, so an emoji's first row is its first use.
			agg = &common.Reaction{Emoji: string(r.Emoji), Count: int32(r.N)}
			out[r.Seq] = append(list, agg)
		}
		agg.UserIds = append(agg.UserIds, r.UserID)
	}
	return out, nil
}

// addReactions fills the reactions of msgs, a page of convID.
func (s *Service) addReactions(ctx context.Context, convID string, msgs []*common.Message) error {
	seqs := make([]int64, 0, len(msgs))
	for _, m := range msgs {
		if changeable(int16(m.ContentType), common.ContentType_REACTION) && !m.Recalled {
			seqs = append(seqs, m.Seq)
		}
	}
	bySeq, err := s.reactionsOf(ctx, convID, seqs)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		m.Reactions = bySeq[m.Seq]
	}
	return nil
}
