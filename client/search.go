package client

import (
	"context"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// SearchParams asks SearchMessages for one page of a message search.
type SearchParams struct {
	// Query is the text to find, 1 to 64 characters; case is ignored.
	Query string
	// ConvID limits the search to one conversation; empty searches all of
	// the user's.
	ConvID string
	// Cursor is 0 for the newest messages, else the next cursor the page
	// before returned.
	Cursor int64
	// Limit is the most matches of the page: 0 means 20, over 50 means 50.
	Limit int32
}

// SearchMessages returns one page of the messages the user may read whose
// text contains p.Query (a FILE by its name or caption), newest first, and
// the cursor of the next page, 0 when the search is done. The server reads
// a bounded number of messages per page, so a page may hold fewer matches
// than asked, even none, with a next cursor: keep asking while it is not 0.
// Searches are rate-limited per user (RATE_LIMITED); an empty or over-long
// query is BAD_REQUEST.
func (c *Client) SearchMessages(ctx context.Context,
	p SearchParams) ([]*common.Message, int64, error) {
	req := &protocol.SearchMessagesReq{Query: p.Query, ConvId: p.ConvID, Cursor: p.Cursor,
		Limit: p.Limit}
	resp := protocol.NewSearchMessagesResp()
	if err := c.roundTrip(ctx, protocol.Op_SEARCH_MESSAGES, req, resp); err != nil {
		return nil, 0, errorf("search messages %q: %w", p.Query, err)
	}
	return resp.Messages, resp.NextCursor, nil
}

// SearchMessages is Client.SearchMessages on the current connection. A
// cursor stays valid across connections.
func (s *Session) SearchMessages(ctx context.Context,
	p SearchParams) ([]*common.Message, int64, error) {
	c, err := s.Client(ctx)
	if err != nil {
		return nil, 0, errorf("session search messages: %w", err)
	}
	return c.SearchMessages(ctx, p)
}
