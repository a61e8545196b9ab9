package logic

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// convCursorMargin is how far behind the server's clock a finished
// SyncConvs run leaves its cursor. A conversation's updated_ms is taken
// inside the transaction that stores its message, which may commit after a
// transaction that took a later time: a cursor at the newest time read would
// skip it. No store transaction outlives storeTimeout, so rows that commit
// after a read carry a time no older than the read minus storeTimeout; the
// margin covers that plus clock skew between logic instances.
const convCursorMargin = 10 * time.Second

// convPos is a position in the (updated_ms, conv_id) order SyncConvs pages
// by.
type convPos struct {
	ms   int64
	conv string
}

// before reports whether p sorts before q.
func (p convPos) before(q convPos) bool {
	return p.ms < q.ms || p.ms == q.ms && p.conv < q.conv
}

// convCursor is the opaque SyncConvs cursor: the position read so far and,
// while a run of pages is under way (has_more), the floor taken at its
// first page and whether the run began with no cursor (fresh). The empty
// cursor is the zero value: everything.
type convCursor struct {
	pos   convPos
	floor int64 // Unix ms; 0 when no run is under way
	// fresh says that the run lists a device's conversations from scratch,
	// so that each of its pages leaves hidden ones out (see shownExpr), not
	// only the first.
	fresh bool
}

// cursorVersion prefixes the cursors written now; cursorVersionV1, without
// the fresh flag, is still read so that a client's stored cursor stays
// valid across an upgrade (it reads as not fresh, as it was served).
const (
	cursorVersion   = "c2"
	cursorVersionV1 = "c1"
)

func (c convCursor) encode() string {
	fresh := "0"
	if c.fresh {
		fresh = "1"
	}
	raw := cursorVersion + ":" + strconv.FormatInt(c.pos.ms, 10) + ":" +
		strconv.FormatInt(c.floor, 10) + ":" + fresh + ":" + c.pos.conv
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodeCursor(s string) (convCursor, error) {
	if s == "" {
		return convCursor{}, nil
	}
	bad := fmt.Errorf("%w: malformed cursor", ErrBadRequest)
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return convCursor{}, bad
	}
	parts := strings.SplitN(string(raw), ":", 5)
	var fresh bool
	switch {
	case len(parts) == 5 && parts[0] == cursorVersion && (parts[3] == "0" || parts[3] == "1"):
		fresh = parts[3] == "1"
		parts = append(parts[:3], parts[4])
	case parts[0] == cursorVersionV1:
		// A c1 cursor's conv id may hold a colon: its last field is the rest.
		parts = strings.SplitN(string(raw), ":", 4)
	default:
		return convCursor{}, bad
	}
	if len(parts) != 4 || len(parts[3]) > maxConvID {
		return convCursor{}, bad
	}
	ms, err1 := strconv.ParseInt(parts[1], 10, 64)
	floor, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || ms < 0 || floor < 0 {
		return convCursor{}, bad
	}
	return convCursor{pos: convPos{ms: ms, conv: parts[3]}, floor: floor, fresh: fresh}, nil
}

// nextCursor returns the cursor after a page that read up to last. Within a
// run the cursor follows the rows. When the run ends it moves back to the
// run's floor unless it is already behind it, so that the next call reads
// again every conversation whose transaction may still have been in flight
// (see convCursorMargin); it never moves ahead of what was read. The next
// run is no longer fresh: the device has a list to drop a hide from.
func nextCursor(cur convCursor, last convPos, hasMore bool) convCursor {
	if hasMore {
		return convCursor{pos: last, floor: cur.floor, fresh: cur.fresh}
	}
	floor := convPos{ms: cur.floor}
	if floor.before(last) {
		last = floor
	}
	return convCursor{pos: last}
}

// convSummaryRow is one row of the SyncConvs query. UpdatedMs is the row's
// position: the later of the conversation's last change and the member's
// own (see convPosExpr).
type convSummaryRow struct {
	ID          string
	Type        int16
	LastSeq     int64
	LastMsgID   int64
	UpdatedMs   int64
	ReadSeq     int64
	LeftSeq     int64
	JoinSeq     int64
	MentionSeq  int64
	Name        string
	MemberCount int32
	Dismissed   bool // see dismissedExpr
	ClearedSeq  int64
	HiddenSeq   int64
}

// convPosExpr is a conversation's position in one user's SyncConvs order:
// the later of its last message (conversation updated_ms) and the user's own
// change (member changed_ms: read position, join, leave), so that either
// reports it again. A former member's position is their leaving: what the
// group does afterwards is not theirs.
const convPosExpr = "(CASE WHEN m.left_seq > 0 THEN m.changed_ms " +
	"WHEN c.updated_ms > m.changed_ms THEN c.updated_ms ELSE m.changed_ms END)"

// dismissedExpr says whether a group was dismissed while the user was a
// member: one who left before the DISMISS gets not (see convPosExpr: what the
// group does afterwards is not theirs), one who left after it still does.
const dismissedExpr = "(CASE WHEN c.dismissed AND (m.left_seq = 0 OR " +
	"m.left_seq > c.dismissed_seq) THEN 1 ELSE 0 END)"

// shownExpr says whether a conversation is listed to a device with no cursor
// yet: not one the user hid (ClearConv) that has nothing newer than the hide
// (a former member's newest is their leaving). A device with a cursor from
// before the hide gets it with hidden set, to drop it from its list, until
// its cursor passes the hide's change time.
const shownExpr = "(m.hidden_seq = 0 OR " +
	"(CASE WHEN m.left_seq > 0 THEN m.left_seq ELSE c.last_seq END) > m.hidden_seq)"

// SyncConvs lists the session user's conversations changed since the
// request's cursor, in (updated_ms, conv_id) order, with this device's
// delivered position. A conversation may be reported again on a later call;
// clients compare last_seq.
func (s *Service) SyncConvs(ctx context.Context, session *logicrpc.Session,
	req *protocol.SyncConvsReq) (*protocol.SyncConvsResp, error) {
	if err := s.authorizeRead(ctx, "sync_convs", session); err != nil {
		return nil, err
	}
	if req == nil {
		req = &protocol.SyncConvsReq{} // a missing body reads as empty
	}
	logIDs := func(e *zerolog.Event) *zerolog.Event {
		return e.Int64("user", session.UserId).Int64("conn", session.ConnId)
	}
	cur, err := decodeCursor(req.GetCursor())
	if err != nil {
		return nil, s.fail("sync_convs", err, logIDs)
	}
	if cur.floor == 0 {
		// A new run: its floor is taken before its first read.
		cur.floor = max(1, s.now().Add(-convCursorMargin).UnixMilli())
		cur.fresh = cur.pos == convPos{}
	}
	limit := syncLimit(req.GetLimit())
	rows, err := s.changedConvs(ctx, session.UserId, cur, limit+1)
	if err != nil {
		return nil, s.fail("sync_convs", err, logIDs)
	}
	hasMore := len(rows) > limit
	rows = rows[:min(len(rows), limit)]
	convs, err := s.summaries(ctx, session, rows)
	if err != nil {
		return nil, s.fail("sync_convs", err, logIDs)
	}
	if n := fitFront(convs, replyBudget); n < len(convs) {
		// Each summary carries a last message: a page of big ones is cut
		// to fit one frame, and the cursor resumes after what was sent.
		convs, rows, hasMore = convs[:n], rows[:n], true
	}
	last := cur.pos
	if len(rows) > 0 {
		last = convPos{ms: rows[len(rows)-1].UpdatedMs, conv: rows[len(rows)-1].ID}
	}
	next := nextCursor(cur, last, hasMore)
	return &protocol.SyncConvsResp{Convs: convs, Cursor: next.encode(), HasMore: hasMore}, nil
}

// changedConvs returns up to limit conversations of user positioned after
// cur's position, in position order; for a fresh run, without the hidden
// ones.
//
// TODO: a former member gets the group's current name and member count,
// not those at their leaving, as the member row keeps no copy of them; so
// a listing after the leaving (a new device's, or after a MARK_READ) shows
// a rename and the member count that GET_GROUP refuses them. Copying both
// into the member row at the leaving would freeze them.
func (s *Service) changedConvs(ctx context.Context, user int64, cur convCursor,
	limit int) ([]convSummaryRow, error) {
	var rows []convSummaryRow
	pos := cur.pos
	q := s.rdc(ctx).Table(s.tables.member+" AS m").
		Select("c.id, c.type, c.last_seq, c.last_msg_id, "+convPosExpr+" AS updated_ms, "+
			"m.read_seq, m.left_seq, m.join_seq, m.mention_seq, c.name, c.member_count, "+
			dismissedExpr+" AS dismissed, m.cleared_seq, m.hidden_seq").
		Joins("JOIN "+s.tables.conv+" AS c ON c.id = m.conv_id").
		Where("m.user_id = ?", user).
		Where("("+convPosExpr+" > ? OR ("+convPosExpr+" = ? AND c.id > ?))", pos.ms, pos.ms, pos.conv)
	if cur.fresh {
		q = q.Where(shownExpr)
	}
	err := q.Order(convPosExpr + " ASC, c.id ASC").Limit(limit).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("changed convs user=%d after=%d/%s: %w",
			user, pos.ms, pos.conv, err)
	}
	return rows, nil
}

// summaries completes rows with their last messages and this device's
// delivered positions and mute flags, three queries for the whole page. A
// last message the user cleared is left out.
func (s *Service) summaries(ctx context.Context, session *logicrpc.Session,
	rows []convSummaryRow) ([]*protocol.ConvSummary, error) {
	if len(rows) == 0 {
		return []*protocol.ConvSummary{}, nil
	}
	if err := s.capLeft(ctx, rows); err != nil {
		return nil, err
	}
	msgIDs := make([]int64, 0, len(rows))
	convIDs := make([]string, len(rows))
	var p2p []string
	for i, r := range rows {
		convIDs[i] = r.ID
		if r.LastMsgID != 0 && r.LastSeq > r.ClearedSeq {
			msgIDs = append(msgIDs, r.LastMsgID)
		}
		if r.Type == int16(common.ConvType_P2P) {
			p2p = append(p2p, r.ID)
		}
	}
	peerRead, err := s.peerReadSeqs(ctx, session.UserId, p2p)
	if err != nil {
		return nil, err
	}
	msgs, err := s.messagesByID(ctx, msgIDs)
	if err != nil {
		return nil, err
	}
	delivered, err := s.deliveredSeqs(ctx, session.UserId, session.DeviceId, convIDs)
	if err != nil {
		return nil, err
	}
	muted, err := s.mutedConvs(ctx, session.UserId, convIDs)
	if err != nil {
		return nil, err
	}
	unread, err := s.unreadCounts(ctx, rows)
	if err != nil {
		return nil, err
	}
	pins, err := s.pinnedSeqs(ctx, rows)
	if err != nil {
		return nil, err
	}
	out := make([]*protocol.ConvSummary, len(rows))
	for i, r := range rows {
		out[i] = &protocol.ConvSummary{
			ConvId:       r.ID,
			Type:         common.ConvType(r.Type),
			LastSeq:      r.LastSeq,
			ReadSeq:      r.ReadSeq,
			Unread:       unread[r.ID],
			DeliveredSeq: delivered[r.ID],
			UpdatedMs:    r.UpdatedMs,
			Name:         r.Name,
			Left:         r.LeftSeq > 0,
			MemberCount:  r.MemberCount,
			PeerReadSeq:  peerRead[r.ID],
			Muted:        muted[r.ID],
			ClearedSeq:   r.ClearedSeq,
			Hidden:       r.HiddenSeq > 0 && r.LastSeq <= r.HiddenSeq,
			MentionSeq:   r.MentionSeq,
			PinnedSeqs:   pins[r.ID],
		}
		// The message's own seq decides, not last_seq: after a restore's
		// gap (MoveSeqsPastRestore) last_seq is past a cleared last message.
		if m, ok := msgs[r.LastMsgID]; ok && m.Seq > r.ClearedSeq {
			out[i].LastMessage = m.toThrift()
		}
		if peer, err := peerOf(r.ID, session.UserId); err == nil {
			out[i].PeerUserId = peer
		}
		if r.Type == int16(common.ConvType_GROUP) {
			out[i].Dismissed = &r.Dismissed
		}
	}
	return out, nil
}

// unreadCounts counts, for each of rows, the messages stored after the later
// of its read and cleared positions, REACTION events left out: a reaction
// is not a message to read. It counts rows rather than subtracting seqs, so
// that seqs no message has (the gap of a restore: MoveSeqsPastRestore) are
// not unread. One query for the page.
//
// TODO: each conversation's unread range is scanned on the (conv_id, seq)
// index, so the cost grows with the unread messages of the page; a count
// kept per conversation and member would make it constant.
func (s *Service) unreadCounts(ctx context.Context,
	rows []convSummaryRow) (map[string]int64, error) {
	var (
		where strings.Builder
		args  []any
	)
	for _, r := range rows {
		from := max(r.ReadSeq, r.ClearedSeq)
		if r.LastSeq <= from {
			continue
		}
		if where.Len() > 0 {
			where.WriteString(" OR ")
		}
		where.WriteString("(conv_id = ? AND seq > ? AND seq <= ?)")
		args = append(args, r.ID, from, r.LastSeq)
	}
	if len(args) == 0 {
		return nil, nil
	}
	var counts []struct {
		ConvID string
		N      int64
	}
	err := s.rdc(ctx).Model(&messageRow{}).Select("conv_id, COUNT(*) AS n").
		Where("content_type <> ?", int16(common.ContentType_REACTION)).
		Where("("+where.String()+")", args...).Group("conv_id").Scan(&counts).Error
	if err != nil {
		return nil, fmt.Errorf("unread counts (%d convs): %w", len(args)/3, err)
	}
	out := make(map[string]int64, len(counts))
	for _, c := range counts {
		out[c.ConvID] = c.N
	}
	return out, nil
}

// capLeft ends the rows of groups the user left at the leaving: their last
// seq and last message become those of the event that ended the membership.
func (s *Service) capLeft(ctx context.Context, rows []convSummaryRow) error {
	for i := range rows {
		r := &rows[i]
		if r.LeftSeq == 0 || r.LeftSeq >= r.LastSeq {
			continue
		}
		var ids []int64
		err := s.rdc(ctx).Model(&messageRow{}).Where("conv_id = ? AND seq = ?", r.ID, r.LeftSeq).
			Limit(1).Pluck("id", &ids).Error
		if err != nil {
			return fmt.Errorf("last message of conv=%s at seq=%d: %w", r.ID, r.LeftSeq, err)
		}
		r.LastSeq, r.LastMsgID = r.LeftSeq, 0
		if len(ids) > 0 {
			r.LastMsgID = ids[0]
		}
	}
	return nil
}

// peerReadSeqs returns, for each p2p conversation of user in convIDs, how
// far the other user has read.
func (s *Service) peerReadSeqs(ctx context.Context, user int64,
	convIDs []string) (map[string]int64, error) {
	out := make(map[string]int64, len(convIDs))
	if len(convIDs) == 0 {
		return out, nil
	}
	var rows []memberRow
	err := s.rdc(ctx).Select("conv_id", "read_seq").
		Where("conv_id IN ? AND user_id <> ?", convIDs, user).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("peer read positions user=%d (%d convs): %w", user, len(convIDs), err)
	}
	for _, r := range rows {
		out[r.ConvID] = r.ReadSeq
	}
	return out, nil
}

// messagesByID returns the messages with the given ids, by id.
func (s *Service) messagesByID(ctx context.Context, ids []int64) (map[int64]*messageRow, error) {
	out := make(map[int64]*messageRow, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var rows []messageRow
	if err := s.rdc(ctx).Where("id IN ?", ids).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("messages by id (%d ids): %w", len(ids), err)
	}
	for i := range rows {
		out[rows[i].ID] = &rows[i]
	}
	return out, nil
}
