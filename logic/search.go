package logic

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/rs/zerolog"
	"gorm.io/gorm"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Message search limits.
const (
	// maxSearchQueryRunes bounds a query's length in characters.
	maxSearchQueryRunes = 64
	// defaultSearchMatches and maxSearchMatches are a page's matches when
	// the request asks for none, and the most it may ask for.
	defaultSearchMatches = 20
	maxSearchMatches     = 50
	// searchScanRows bounds the stored messages one page reads, give or
	// take one conversation's share: the cost of a page is the same for a
	// history of a hundred messages and of a million. Searching all of a
	// user's conversations adds their member rows and, for each with
	// messages at or above the cursor, one index entry (searchTops).
	// TODO: a user of tens of thousands of conversations pays those per
	// page; a cursor that kept each conversation's position would not.
	searchScanRows = 2000
	// searchMinPerConv is the fewest messages a page reads of each
	// conversation it reads, however many the user has.
	searchMinPerConv = 16
)

// SearchMessages finds the messages the session's user may read by SYNC
// whose text contains the query, case-insensitively, newest first (by
// msg_id), in one conversation or in all of the user's. A page reads about
// searchScanRows stored messages and says where the next one starts, so a
// rare word in a long history takes several pages, never one long scan.
//
// The text searched is the message's current one: an EDIT rewrites its
// target's row, so the original text is no longer found. Recalled
// messages, events and BINARY content never match; a FILE matches by its
// name or caption. The matching is in Go rather than in SQL, so that it is
// the same on SQLite and MySQL (whose LIKE on a BLOB is case-sensitive).
func (s *Service) SearchMessages(ctx context.Context, session *logicrpc.Session,
	req *protocol.SearchMessagesReq) (*protocol.SearchMessagesResp, error) {
	if err := s.authorizeRead(ctx, "search_messages", session); err != nil {
		return nil, err
	}
	if req == nil {
		req = &protocol.SearchMessagesReq{} // a missing body reads as empty
	}
	logIDs := func(e *zerolog.Event) *zerolog.Event {
		return e.Int64("user", session.UserId).Str("conv", req.GetConvId())
	}
	resp, err := s.searchMessages(ctx, session.UserId, req)
	if err != nil {
		return nil, s.fail("search_messages", err, logIDs)
	}
	return resp, nil
}

func (s *Service) searchMessages(ctx context.Context, user int64,
	req *protocol.SearchMessagesReq) (*protocol.SearchMessagesResp, error) {
	needle, err := searchNeedle(req.GetQuery())
	if err != nil {
		return nil, err
	}
	if req.GetCursor() < 0 {
		return nil, fmt.Errorf("%w: negative cursor", ErrBadRequest)
	}
	if err := s.limits.allowMessageSearch(user); err != nil {
		return nil, err
	}
	convs, err := s.searchConvs(ctx, user, req.GetConvId())
	if err != nil {
		return nil, err
	}
	before := req.GetCursor()
	if before == 0 {
		before = math.MaxInt64
	}
	rows, frontier, err := s.searchScan(ctx, convs, before)
	if err != nil {
		return nil, err
	}
	return matchPage(rows, frontier, needle, searchMatches(req.GetLimit())), nil
}

// searchNeedle checks a query and returns it folded for matching: 1 to
// maxSearchQueryRunes characters of UTF-8 once spaces around it are
// trimmed.
func searchNeedle(query string) (string, error) {
	q := strings.TrimSpace(query)
	switch {
	case !utf8.ValidString(q):
		return "", fmt.Errorf("%w: query is not valid UTF-8", ErrBadRequest)
	case q == "" || utf8.RuneCountInString(q) > maxSearchQueryRunes:
		return "", fmt.Errorf("%w: query must be 1-%d characters", ErrBadRequest,
			maxSearchQueryRunes)
	}
	return strings.ToLower(q), nil
}

func searchMatches(asked int32) int {
	if asked <= 0 {
		return defaultSearchMatches
	}
	return min(int(asked), maxSearchMatches)
}

// searchConv is one conversation a search reads, what of it the user may
// read, and top, a bound of its msg ids: none is above it.
type searchConv struct {
	id  string
	rr  readRange
	top int64
}

// searchMember is a member row of the user's and its conversation's last
// msg id.
type searchMember struct {
	ConvID     string
	JoinSeq    int64
	LeftSeq    int64
	ClearedSeq int64
	LastMsgID  int64
}

// searchConvs returns the conversations to search: convID alone, refused as
// SYNC refuses it, or when empty every conversation the user is or was a
// member of, each with the range SYNC gives them.
func (s *Service) searchConvs(ctx context.Context, user int64,
	convID string) ([]searchConv, error) {
	if convID != "" {
		if err := checkConvID(convID); err != nil {
			return nil, err
		}
		rr, err := s.readable(ctx, convID, user)
		if err != nil {
			return nil, err
		}
		return []searchConv{{id: convID, rr: rr, top: math.MaxInt64}}, nil
	}
	var members []searchMember
	err := s.rdc(ctx).Table(s.tables.member+" AS m").
		Select("m.conv_id, m.join_seq, m.left_seq, m.cleared_seq, c.last_msg_id").
		Joins("JOIN "+s.tables.conv+" AS c ON c.id = m.conv_id").
		Where("m.user_id = ?", user).Scan(&members).Error
	if err != nil {
		return nil, fmt.Errorf("search conversations user=%d: %w", user, err)
	}
	convs := make([]searchConv, 0, len(members))
	for _, m := range members {
		rr, err := rangeOf(m.ConvID, memberRow{JoinSeq: m.JoinSeq, LeftSeq: m.LeftSeq,
			ClearedSeq: m.ClearedSeq}, true)
		if err != nil || (rr.to > 0 && rr.syncFrom() > rr.to) {
			continue // nothing left to read
		}
		// The last message's id bounds the others': ids grow with seqs.
		top := m.LastMsgID
		if top == 0 {
			top = math.MaxInt64 // not known: no bound
		}
		convs = append(convs, searchConv{id: m.ConvID, rr: rr, top: top})
	}
	return convs, nil
}

// searchScan reads the messages of convs below msg id before, newest first,
// and returns those in the user's ranges and where the next page starts, 0
// when everything below before was read.
//
// Each conversation gives a share of the page's budget, its newest
// messages. Where it has more, those below the share were not looked at,
// so the rows returned stop at the highest such share's oldest id: the
// frontier. Conversations go newest first (by top, see searchTops), so once
// the budget is spent the frontier rises above the next one's top, and once
// the frontier is above a conversation's top nothing of it or of those after
// would be returned: either way the rest are not read, and a page reads
// about the budget however many conversations the user has.
func (s *Service) searchScan(ctx context.Context, convs []searchConv,
	before int64) ([]messageRow, int64, error) {
	budget := cmp.Or(s.searchRows, searchScanRows)
	perConv := max(min(searchMinPerConv, budget), budget/max(len(convs), 1))
	convs, err := s.searchTops(ctx, convs, before)
	if err != nil {
		return nil, 0, err
	}
	var all []messageRow
	var frontier int64
	read := 0
	for _, c := range convs {
		if c.top < max(frontier, 1) {
			break
		}
		if read >= budget {
			frontier = max(frontier, c.top+1)
			break
		}
		// One row past the share tells whether the conversation has more.
		rows, err := s.searchConvRows(ctx, c, before, perConv+1)
		if err != nil {
			return nil, 0, err
		}
		read += len(rows)
		if len(rows) > perConv {
			rows = rows[:perConv]
			frontier = max(frontier, rows[perConv-1].ID)
		}
		for _, m := range rows {
			if m.Seq >= c.rr.syncFrom() && (c.rr.to == 0 || m.Seq <= c.rr.to) {
				all = append(all, m)
			}
		}
	}
	all = slices.DeleteFunc(all, func(m messageRow) bool { return m.ID < frontier })
	slices.SortFunc(all, func(a, b messageRow) int { return cmp.Compare(b.ID, a.ID) })
	return all, frontier, nil
}

// searchTops returns convs newest first, each with a top below before that
// is one of its msg ids: where the last message's id is not below before,
// the newest readable id below it, read from the (conv_id, id) index
// alone; a conversation with none is left out. Being ids of distinct
// messages, the tops differ, so the frontier searchScan sets when its
// budget is spent is below before: every page makes progress.
func (s *Service) searchTops(ctx context.Context, convs []searchConv,
	before int64) ([]searchConv, error) {
	out := convs[:0]
	for _, c := range convs {
		if c.top >= before {
			var ids []int64
			q := searchConvQuery(s.rdc(ctx).Model(&messageRow{}), c, before, 1)
			if err := q.Pluck("id", &ids).Error; err != nil {
				return nil, fmt.Errorf("search top conv=%s before=%d: %w", c.id, before, err)
			}
			if len(ids) == 0 {
				continue
			}
			c.top = ids[0]
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b searchConv) int { return cmp.Compare(b.top, a.top) })
	return out, nil
}

// searchConvRows reads up to n messages of c below msg id before, newest
// first, through the (conv_id, id) index: the range's seq bounds become id
// bounds, read through the (conv_id, seq) index, because within one
// conversation ids grow with seqs (both are taken under its row lock), so
// the store reads n rows, not the history outside the range. The caller
// still checks each row's seq against the range.
func (s *Service) searchConvRows(ctx context.Context, c searchConv, before int64,
	n int) ([]messageRow, error) {
	var rows []messageRow
	q := searchConvQuery(s.rdc(ctx), c, before, n)
	if err := q.Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("search conv=%s before=%d: %w", c.id, before, err)
	}
	return rows, nil
}

// searchConvQuery is searchConvRows's query on db.
func searchConvQuery(db *gorm.DB, c searchConv, before int64, n int) *gorm.DB {
	sub := func() *gorm.DB { return db.Session(&gorm.Session{NewDB: true}).Model(&messageRow{}) }
	q := db.Where("conv_id = ? AND id < ?", c.id, before)
	if from := c.rr.syncFrom(); from > 1 {
		q = q.Where("id >= (?)", sub().Select("id").
			Where("conv_id = ? AND seq >= ?", c.id, from).Order("seq ASC").Limit(1))
	}
	if c.rr.to > 0 {
		q = q.Where("id <= (?)", sub().Select("id").
			Where("conv_id = ? AND seq <= ?", c.id, c.rr.to).Order("seq DESC").Limit(1))
	}
	return q.Order("id DESC").Limit(n)
}

// matchPage returns the matches among rows (newest first) up to limit, and
// the cursor of the next page: the last match's id when the page filled
// before the rows ran out, else frontier.
func matchPage(rows []messageRow, frontier int64, needle string,
	limit int) *protocol.SearchMessagesResp {
	resp := &protocol.SearchMessagesResp{Messages: []*common.Message{}, NextCursor: frontier}
	for i := range rows {
		if !matches(&rows[i], needle) {
			continue
		}
		resp.Messages = append(resp.Messages, rows[i].toThrift())
		if len(resp.Messages) == limit {
			if i < len(rows)-1 || frontier > 0 {
				resp.NextCursor = rows[i].ID
			}
			break
		}
	}
	// Matches may be large: cut a page that would not fit in one frame.
	if n := fitFront(resp.Messages, replyBudget); n < len(resp.Messages) {
		resp.Messages = resp.Messages[:n]
		resp.NextCursor = resp.Messages[n-1].MsgId
	}
	return resp
}

// matches reports whether m's searchable text contains needle (folded).
func matches(m *messageRow, needle string) bool {
	if m.Recalled {
		return false
	}
	switch common.ContentType(m.ContentType) {
	case common.ContentType_TEXT:
		return containsFold(string(m.Content), needle)
	case common.ContentType_FILE:
		var ref common.FileRef
		if codec.ReadBody(m.Content, &ref) != nil {
			return false
		}
		return containsFold(ref.Name, needle) || containsFold(ref.GetCaption(), needle)
	}
	return false
}

// containsFold reports whether text contains needle, which is lower-case,
// ignoring case. strings.ToLower returns an ASCII text without capitals as
// it is, and strings.Contains stays near linear on any text: a loop that
// compared the query at each position cost text × query, 2.4 s of CPU for
// one page of 16 KiB messages of one letter.
func containsFold(text, needle string) bool {
	return strings.Contains(strings.ToLower(text), needle)
}
