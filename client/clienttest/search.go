package clienttest

import (
	"cmp"
	"slices"
	"strings"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// searchMessages finds the TEXT messages the user may read (after their
// clear, up to their leaving) that hold the query in any case, newest
// first by msg id below the cursor. A page looks at Options.SearchScan
// messages at most, so it may hold no match and still a next cursor.
func (s *Server) searchMessages(c *conn,
	req *protocol.SearchMessagesReq) (codec.Body, error) {
	query := strings.ToLower(strings.TrimSpace(req.Query))
	if query == "" || len([]rune(query)) > 64 || req.Cursor < 0 {
		return nil, fail(common.ErrorCode_BAD_REQUEST, "query must be 1-64 characters")
	}
	if req.ConvId != "" {
		if _, ok := s.readable(c.userID, req.ConvId); !ok {
			return nil, fail(common.ErrorCode_FORBIDDEN, "not a member")
		}
	}
	limit := 20
	if req.Limit > 0 {
		limit = min(int(req.Limit), 50)
	}
	seen := s.searchable(c.userID, req.ConvId, req.Cursor)
	resp := &protocol.SearchMessagesResp{Messages: []*common.Message{}}
	for i, m := range seen {
		if s.opts.SearchScan > 0 && i == s.opts.SearchScan {
			resp.NextCursor = seen[i-1].MsgId
			break
		}
		if m.ContentType != common.ContentType_TEXT || m.Recalled ||
			!strings.Contains(strings.ToLower(string(m.Content)), query) {
			continue
		}
		resp.Messages = append(resp.Messages, m)
		if len(resp.Messages) == limit {
			if i < len(seen)-1 {
				resp.NextCursor = m.MsgId
			}
			break
		}
	}
	return resp, nil
}

// searchable returns the messages user may read of convID (all theirs when
// empty) below msg id cursor (0: no bound), newest first.
func (s *Server) searchable(user int64, convID string, cursor int64) []*common.Message {
	var out []*common.Message
	for id, cv := range s.convs {
		if convID != "" && id != convID {
			continue
		}
		last, ok := s.readable(user, id)
		if !ok {
			continue
		}
		from := min(cv.clears[user].cleared, last)
		for _, m := range cv.msgs[from:last] {
			if cursor == 0 || m.MsgId < cursor {
				out = append(out, m)
			}
		}
	}
	slices.SortFunc(out, func(a, b *common.Message) int { return cmp.Compare(b.MsgId, a.MsgId) })
	return out
}
