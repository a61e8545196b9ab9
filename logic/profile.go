package logic

import (
	"context"
	"fmt"
	"strings"

	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Search bounds.
const (
	minSearchPrefix = 3  // a shorter query matches exact usernames only
	maxSearchLimit  = 20 // also the default
)

// UpdateProfile sets the nickname and avatar URL that req sets (an unset
// field is unchanged, an empty one clears) and returns the profile.
func (s *Service) UpdateProfile(ctx context.Context, session *logicrpc.Session,
	req *protocol.UpdateProfileReq) (*protocol.UserInfo, error) {
	if err := s.authorizeWrite(ctx, "update_profile", session); err != nil {
		return nil, err
	}
	changes, err := profileChanges(req)
	if err == nil && len(changes) > 0 {
		// Not a deleted account's: a late request of a connection its
		// deletion has not closed yet must not write a profile back.
		err = s.dbc(ctx).Model(&userRow{}).Where("id = ? AND deleted_ms = 0", session.UserId).
			Updates(changes).Error
		if err != nil {
			err = fmt.Errorf("update profile user=%d: %w", session.UserId, err)
		}
	}
	var u *userRow
	if err == nil {
		u, err = s.findUser(ctx, "", session.UserId)
	}
	if err == nil && u == nil {
		err = fmt.Errorf("%w: user", ErrNotFound)
	}
	if err != nil {
		return nil, s.fail("update_profile", err, sessionIDs(session))
	}
	return userInfo(u), nil
}

// profileChanges validates req and returns the columns it sets.
func profileChanges(req *protocol.UpdateProfileReq) (map[string]any, error) {
	changes := map[string]any{}
	if req == nil {
		return changes, nil
	}
	if req.Nickname != nil {
		if err := validNickname(*req.Nickname); err != nil {
			return nil, err
		}
		changes["nickname"] = *req.Nickname
	}
	if req.AvatarUrl != nil {
		if err := validAvatarURL(*req.AvatarUrl); err != nil {
			return nil, err
		}
		changes["avatar_url"] = *req.AvatarUrl
	}
	return changes, nil
}

// SearchUsers finds users by exact username, or by username prefix when the
// query has at least minSearchPrefix characters, at most maxSearchLimit of
// them in username order. It is rate-limited per user, so walking every
// prefix to list all users takes days, not seconds.
func (s *Service) SearchUsers(ctx context.Context, session *logicrpc.Session,
	req *protocol.SearchUsersReq) (*protocol.SearchUsersResp, error) {
	if err := s.authorizeRead(ctx, "search_users", session); err != nil {
		return nil, err
	}
	if req == nil {
		req = &protocol.SearchUsersReq{} // a missing body reads as empty
	}
	query := canonicalName(req.GetQuery())
	err := validSearch(query)
	if err == nil {
		err = s.limits.allowSearch(session.UserId)
	}
	var rows []userRow
	if err == nil {
		rows, err = s.searchUsers(ctx, query, searchLimit(req.GetLimit()))
	}
	if err != nil {
		return nil, s.fail("search_users", err, sessionIDs(session))
	}
	resp := &protocol.SearchUsersResp{Users: make([]*protocol.UserInfo, len(rows))}
	for i := range rows {
		resp.Users[i] = userInfo(&rows[i])
	}
	return resp, nil
}

// validSearch checks a folded query: 1-32 username characters.
func validSearch(query string) error {
	if query == "" || len(query) > maxUsername {
		return fmt.Errorf("%w: query must be 1-%d characters", ErrBadRequest, maxUsername)
	}
	for i := 0; i < len(query); i++ {
		if !usernameByte(query[i]) {
			return fmt.Errorf("%w: query may hold only username characters", ErrBadRequest)
		}
	}
	return nil
}

func searchLimit(asked int32) int {
	if asked <= 0 || asked > maxSearchLimit {
		return maxSearchLimit
	}
	return int(asked)
}

// searchUsers runs the search. '_' is a LIKE wildcard and a username
// character, so the prefix is escaped; '!' cannot occur in a username and
// serves as the escape character on both SQLite and MySQL.
func (s *Service) searchUsers(ctx context.Context, query string, limit int) ([]userRow, error) {
	q := s.dbc(ctx).Where("deleted_ms = 0").Order("username ASC").Limit(limit)
	if len(query) < minSearchPrefix {
		q = q.Where("username = ?", query)
	} else {
		pattern := strings.ReplaceAll(query, "_", "!_") + "%"
		q = q.Where("username LIKE ? ESCAPE '!'", pattern)
	}
	var rows []userRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("search users %q: %w", query, err)
	}
	return rows, nil
}

func userInfo(u *userRow) *protocol.UserInfo {
	if u.DeletedMs != 0 {
		return &protocol.UserInfo{UserId: u.ID, Deleted: true}
	}
	return &protocol.UserInfo{UserId: u.ID, Username: u.Username, Nickname: u.Nickname,
		AvatarUrl: u.AvatarURL}
}
