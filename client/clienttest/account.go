package clienttest

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Search bounds, as the server's.
const (
	minSearchPrefix = 3
	maxSearchLimit  = 20
)

// Bounds of a new password in bytes, and the life of a refresh token, as
// the server's defaults.
const (
	minPassword = 8
	maxPassword = 128
	refreshTTL  = 30 * 24 * time.Hour
)

// handleAccountOps serves LOGOUT, CHANGE_PASSWORD, UPDATE_PROFILE,
// LIST_DEVICES, SIGN_OUT_DEVICE, SEARCH_USERS, BLOCK and DELETE_ACCOUNT. The close that
// follows a LOGOUT's or DELETE_ACCOUNT's reply is sent by afterReply.
func (s *Server) handleAccountOps(c *conn, op protocol.Op, body []byte) (codec.Body, error) {
	switch op {
	case protocol.Op_LOGOUT:
		s.revokeLocked(c.userID, c.device)
		s.signOutLocked(c.userID, c.device, c)
		return &protocol.LogoutResp{}, nil
	case protocol.Op_CHANGE_PASSWORD:
		req := protocol.NewChangePasswordReq()
		return readThen(body, req, func() (codec.Body, error) { return s.changePassword(c, req) })
	case protocol.Op_UPDATE_PROFILE:
		req := protocol.NewUpdateProfileReq()
		return readThen(body, req, func() (codec.Body, error) { return s.updateProfile(c, req) })
	case protocol.Op_LIST_DEVICES:
		return s.listDevices(c), nil
	case protocol.Op_SIGN_OUT_DEVICE:
		req := protocol.NewSignOutDeviceReq()
		return readThen(body, req, func() (codec.Body, error) { return s.signOutDevice(c, req) })
	case protocol.Op_SEARCH_USERS:
		req := protocol.NewSearchUsersReq()
		return readThen(body, req, func() (codec.Body, error) { return s.searchUsers(req) })
	case protocol.Op_BLOCK:
		req := protocol.NewBlockReq()
		return readThen(body, req, func() (codec.Body, error) { return s.block(c, req) })
	case protocol.Op_DELETE_ACCOUNT:
		req := protocol.NewDeleteAccountReq()
		return readThen(body, req, func() (codec.Body, error) { return s.deleteAccount(c, req) })
	}
	return nil, fail(common.ErrorCode_UNSUPPORTED, fmt.Sprintf("op %s", op))
}

// listDevices lists every device c's user logged in with, sorted by id;
// the fake keeps no platform or login time.
func (s *Server) listDevices(c *conn) *protocol.ListDevicesResp {
	resp := &protocol.ListDevicesResp{}
	for id := range s.usersByID[c.userID].devices {
		online := false
		for other := range s.conns {
			online = online || other.userID == c.userID && other.device == id
		}
		resp.Devices = append(resp.Devices, &protocol.Device{DeviceId: id, Platform: "test",
			Online: online, Current: id == c.device})
	}
	slices.SortFunc(resp.Devices, func(a, b *protocol.Device) int {
		return strings.Compare(a.DeviceId, b.DeviceId)
	})
	return resp
}

// block records or drops a block of req.UserId by c's user.
func (s *Server) block(c *conn, req *protocol.BlockReq) (codec.Body, error) {
	if s.usersByID[req.UserId] == nil {
		return nil, fail(common.ErrorCode_NOT_FOUND, "no such user")
	}
	pair := [2]int64{c.userID, req.UserId}
	if req.Blocked {
		s.blocks[pair] = true
	} else {
		delete(s.blocks, pair)
	}
	return &protocol.BlockResp{}, nil
}

// Blocked reports whether blocker has blocked the user named blocked.
func (s *Server) Blocked(blocker, blocked string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, b := s.users[blocker], s.users[blocked]
	return a != nil && b != nil && s.blocks[[2]int64{a.id, b.id}]
}

// SignedIn reports whether a token of the user's device still logs in.
func (s *Server) SignedIn(username, deviceID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[username]
	if u == nil {
		return false
	}
	d := device{userID: u.id, id: deviceID}
	if s.refresh[d] != nil {
		return true
	}
	for token, a := range s.tokens {
		if a.device == d {
			if _, live := s.accessDevice(token); live {
				return true
			}
		}
	}
	return false
}

// revokeLocked invalidates the tokens, access and refresh, of the user's
// device, or of every device of the user when deviceID is "".
func (s *Server) revokeLocked(userID int64, deviceID string) {
	revoked := func(d device) bool {
		return d.userID == userID && (deviceID == "" || d.id == deviceID)
	}
	for token, a := range s.tokens {
		if revoked(a.device) {
			delete(s.tokens, token)
			s.revoked[token] = true
		}
	}
	for d, st := range s.refresh {
		if revoked(d) {
			delete(s.refresh, d)
			s.revoked[st.current] = true
			if st.prev != "" {
				s.revoked[st.prev] = true
			}
		}
	}
}

// signOutLocked closes with SIGNED_OUT the connections of the user's
// device, or of every device when deviceID is "", but not except.
func (s *Server) signOutLocked(userID int64, deviceID string, except *conn) {
	s.closeUserLocked(userID, deviceID, except, signedOutFrame())
}

// closeUserLocked is signOutLocked with any CLOSE frame.
func (s *Server) closeUserLocked(userID int64, deviceID string, except *conn, frame []byte) {
	for c := range s.conns {
		if c != except && c.userID == userID && (deviceID == "" || c.device == deviceID) {
			c.enqueue(frame)
			c.closeAfterFlush()
		}
	}
}

func accountDeletedFrame() []byte {
	return closeFrame(protocol.CloseReason_ACCOUNT_DELETED, "account deleted")
}

// deleteAccount deletes c's user as the server does, less the groups,
// which it leaves as they are: the name is free again, GET_USER by id
// answers deleted, every token is revoked and the user's other
// connections are closed with ACCOUNT_DELETED (c's after the reply).
func (s *Server) deleteAccount(c *conn, req *protocol.DeleteAccountReq) (codec.Body, error) {
	u := s.usersByID[c.userID]
	if u == nil || u.deleted {
		return nil, fail(common.ErrorCode_TOKEN_INVALID, "token invalid")
	}
	if u.password != req.Password {
		return nil, fail(common.ErrorCode_INVALID_CREDENTIALS, "invalid credentials")
	}
	u.deleted, u.password, u.nickname, u.avatarURL = true, "", "", ""
	delete(s.users, u.name)
	s.revokeLocked(u.id, "")
	s.closeUserLocked(u.id, "", c, accountDeletedFrame())
	return &protocol.DeleteAccountResp{}, nil
}

// Deleted reports whether the user of id deleted its account.
func (s *Server) Deleted(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.usersByID[id]
	return u != nil && u.deleted
}

func signedOutFrame() []byte {
	return closeFrame(protocol.CloseReason_SIGNED_OUT, "signed out")
}

// changePassword signs every other connection of the user out and gives
// this device the only pair that still logs in: an access token and a
// refresh token, which LOGIN takes alike. As the server, it refuses a new
// password it would not set before it checks the old one.
func (s *Server) changePassword(c *conn, req *protocol.ChangePasswordReq) (codec.Body, error) {
	u := s.usersByID[c.userID]
	if reason := newPasswordFault(u.name, req.NewPassword_); reason != "" {
		return nil, fail(common.ErrorCode_BAD_REQUEST, reason)
	}
	if u.password != req.OldPassword {
		return nil, fail(common.ErrorCode_INVALID_CREDENTIALS, "invalid credentials")
	}
	u.password = req.NewPassword_
	s.revokeLocked(u.id, "")
	s.signOutLocked(u.id, "", c)
	p := s.issuePairLocked(device{userID: u.id, id: c.device})
	return &protocol.ChangePasswordResp{Token: p.access, TokenExpiresMs: p.accessExpires,
		RefreshToken: p.refresh, RefreshExpiresMs: p.refreshExpires}, nil
}

// newPasswordFault says why the server would refuse password as username's
// new one, "" when it would set it.
func newPasswordFault(username, password string) string {
	switch {
	case len(password) < minPassword || len(password) > maxPassword:
		return fmt.Sprintf("password must be %d-%d bytes", minPassword, maxPassword)
	case strings.EqualFold(password, username):
		return "password must differ from the username"
	case strings.Count(password, password[:1]) == len(password):
		return "password must not repeat one character"
	}
	return ""
}

func (s *Server) updateProfile(c *conn, req *protocol.UpdateProfileReq) (codec.Body, error) {
	u := s.usersByID[c.userID]
	if req.Nickname != nil {
		u.nickname = *req.Nickname
	}
	if req.AvatarUrl != nil {
		u.avatarURL = *req.AvatarUrl
	}
	return u.info(), nil
}

func (u *user) info() *protocol.UserInfo {
	return &protocol.UserInfo{UserId: u.id, Username: u.name, Nickname: u.nickname,
		AvatarUrl: u.avatarURL}
}

// signOutDevice closes the named device's connections, this one's too when
// it names its own device: before the reply, as the server's close, sent
// through task beside the reply, mostly comes.
func (s *Server) signOutDevice(c *conn, req *protocol.SignOutDeviceReq) (codec.Body, error) {
	if req.DeviceId == "" {
		return nil, fail(common.ErrorCode_BAD_REQUEST, "device_id required")
	}
	if !s.usersByID[c.userID].devices[req.DeviceId] {
		return nil, fail(common.ErrorCode_NOT_FOUND, "no such device")
	}
	s.revokeLocked(c.userID, req.DeviceId)
	s.signOutLocked(c.userID, req.DeviceId, nil)
	return &protocol.SignOutDeviceResp{}, nil
}

// searchUsers matches the exact username, or a prefix of at least
// minSearchPrefix characters, in username order.
func (s *Server) searchUsers(req *protocol.SearchUsersReq) (codec.Body, error) {
	if req.Query == "" {
		return nil, fail(common.ErrorCode_BAD_REQUEST, "query required")
	}
	limit := int(req.Limit)
	if limit <= 0 || limit > maxSearchLimit {
		limit = maxSearchLimit
	}
	resp := &protocol.SearchUsersResp{Users: []*protocol.UserInfo{}}
	for _, name := range slices.Sorted(maps.Keys(s.users)) {
		prefix := len(req.Query) >= minSearchPrefix && strings.HasPrefix(name, req.Query)
		if (name == req.Query || prefix) && len(resp.Users) < limit {
			resp.Users = append(resp.Users, s.users[name].info())
		}
	}
	return resp, nil
}

func accountSuspendedFrame() []byte {
	return closeFrame(protocol.CloseReason_ACCOUNT_SUSPENDED, "account suspended")
}

// Suspend suspends the account of username as an operator does, less the
// revocation of its tokens: its connections are closed with
// ACCOUNT_SUSPENDED, and its logins, by password or token, are refused
// with that code once their credentials are checked.
func (s *Server) Suspend(username string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[username]
	if u == nil {
		return
	}
	u.suspended = true
	s.closeUserLocked(u.id, "", nil, accountSuspendedFrame())
}
