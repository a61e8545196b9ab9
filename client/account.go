package client

import (
	"context"
	"errors"
	"time"

	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Block blocks (blocked true) or unblocks userID for the logged-in user:
// while either of two users blocks the other, neither can send to the
// other 1:1. Both ways it is idempotent; blocking oneself fails with
// BAD_REQUEST and an unknown user with NOT_FOUND. Being idempotent, it
// never reports ErrOutcomeUnknown: after a lost answer, call it again.
func (c *Client) Block(ctx context.Context, userID int64, blocked bool) error {
	req := &protocol.BlockReq{UserId: userID, Blocked: blocked}
	if err := c.roundTrip(ctx, protocol.Op_BLOCK, req, protocol.NewBlockResp()); err != nil {
		return errorf("block user %d (%t): %w", userID, blocked, err)
	}
	return nil
}

// ListDevices returns the signed-in devices of the logged-in user, this one
// marked Current; a signed-out device is left out until it logs in again.
func (c *Client) ListDevices(ctx context.Context) ([]*protocol.Device, error) {
	resp := protocol.NewListDevicesResp()
	err := c.roundTrip(ctx, protocol.Op_LIST_DEVICES, &protocol.ListDevicesReq{}, resp)
	if err != nil {
		return nil, errorf("list devices: %w", err)
	}
	return resp.Devices, nil
}

// Logout revokes this device's tokens, access and refresh, and removes its
// push token; the server answers, then closes the connection with CLOSE
// SIGNED_OUT, and the device's other connections with it. The device logs
// in again with the password only. When the LOGOUT was sent but its answer
// lost, the error wraps ErrOutcomeUnknown: the device may be signed out or
// not, and repeating it takes a new login, which by password would sign
// the device in again; a login by its token that fails with TOKEN_INVALID
// tells it was signed out. A Session signs out with Session.Logout
// instead, which reports what was handed over first.
func (c *Client) Logout(ctx context.Context) error {
	err := c.roundTripOnce(ctx, protocol.Op_LOGOUT, &protocol.LogoutReq{},
		protocol.NewLogoutResp())
	if err != nil {
		return errorf("logout: %w", err)
	}
	return nil
}

// ChangePassword replaces the user's password. The server revokes the
// tokens of every device of the user and closes the other connections with
// SIGNED_OUT; this connection stays, and the reply is this device's new
// token pair, the only one that still logs in. A new password the server
// refuses (under 8 or over 128 bytes, the username, one character
// repeated) fails with BAD_REQUEST, a wrong old password with
// INVALID_CREDENTIALS, and tries are rate-limited as password logins are
// (RATE_LIMITED). When the request was sent but its answer lost (the
// connection ended, or the wait did), the error wraps ErrOutcomeUnknown:
// the password may have changed, and every token with it; log in with the
// new password, then with the old. A Session changes it with
// Session.ChangePassword, which keeps the new pair for its reconnects.
func (c *Client) ChangePassword(ctx context.Context, oldPassword,
	newPassword string) (*protocol.ChangePasswordResp, error) {
	req := &protocol.ChangePasswordReq{OldPassword: oldPassword, NewPassword_: newPassword}
	resp := protocol.NewChangePasswordResp()
	if err := c.roundTripOnce(ctx, protocol.Op_CHANGE_PASSWORD, req, resp); err != nil {
		return nil, errorf("change password: %w", err)
	}
	return resp, nil
}

// ChangePassword changes the user's password as Client.ChangePassword does,
// on the Session's connection (it waits for one as Client does), and keeps
// the new token pair, and the new password if the Session was given one,
// so that its next reconnect logs in: the change revoked every other token
// of the user. It returns the reply, for an app that stores the pair for
// its next Session.
//
// When the outcome is unknown (the error wraps ErrOutcomeUnknown), the
// Session keeps its tokens and its password, and holds the new password
// as unconfirmed: if the change was made, its tokens are refused at the
// next login, and it logs in with the new password; if that is refused as
// well, the change was not made, and the Session drops the new password
// and logs in with the old one at the attempt after (a wrong password the
// server counts as a failed login). A login by the old tokens or password
// likewise drops the new password. A Session given no password has none
// to try: once its tokens are refused it ends with ErrSessionEnded.
func (s *Session) ChangePassword(ctx context.Context, oldPassword,
	newPassword string) (*protocol.ChangePasswordResp, error) {
	// The connection first: waiting for one under tokenMu would hold up
	// the login that makes it.
	c, err := s.Client(ctx)
	if err != nil {
		return nil, errorf("session change password: %w", err)
	}
	s.tokenMu.Lock()
	defer s.tokenMu.Unlock()
	resp, err := c.ChangePassword(ctx, oldPassword, newPassword)
	if errors.Is(err, ErrOutcomeUnknown) {
		s.mu.Lock()
		if s.password != "" {
			s.unconfirmed = newPassword
		}
		s.mu.Unlock()
	}
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Every part replaced: a refresh token the reply lacks is revoked all
	// the same.
	s.tokens = tokens{access: resp.Token, refresh: resp.RefreshToken}
	if resp.TokenExpiresMs > 0 {
		s.tokens.accessExpiry = time.UnixMilli(resp.TokenExpiresMs)
	}
	if s.password != "" {
		s.password, s.unconfirmed = newPassword, ""
	}
	return resp, nil
}

// DeleteAccount deletes the logged-in user's account for good; password
// is the account's, asked again. The server leaves the user's groups
// (handing owned ones over), signs every device out and closes the user's
// other connections with ACCOUNT_DELETED, then this one after the reply.
// Messages the user sent stay in their conversations; the username is
// free for anyone to register, as a new user. A wrong password fails with
// INVALID_CREDENTIALS, and tries are rate-limited as password logins are
// (RATE_LIMITED). When the request was sent but its answer lost, the
// error wraps ErrOutcomeUnknown: the account may be deleted or not; a
// login by its token refused with TOKEN_INVALID, or a password login
// refused with INVALID_CREDENTIALS, says it is. A Session deletes it with
// Session.DeleteAccount, which ends the Session.
func (c *Client) DeleteAccount(ctx context.Context, password string) error {
	err := c.roundTripOnce(ctx, protocol.Op_DELETE_ACCOUNT,
		&protocol.DeleteAccountReq{Password: password}, protocol.NewDeleteAccountResp())
	if err != nil && closedFor(err, protocol.CloseReason_ACCOUNT_DELETED) {
		// Only a deleted account's connection is closed so: whether its
		// reply was lost or the close overtook it, the account is gone.
		return nil
	}
	if err != nil {
		return errorf("delete account: %w", err)
	}
	return nil
}

// DeleteAccount deletes the account as Client.DeleteAccount does, on the
// Session's connection (it waits for one as Client does), and on success
// ends the Session with ErrAccountDeleted, its tokens and password
// forgotten: nothing of it logs in again. What it handed over but did not
// report stays unreported, as the account's positions are gone with it.
// On any error the Session goes on: after one wrapping ErrOutcomeUnknown,
// a deleted account shows as the Session ending with ErrSessionEnded at
// its next login, or with ErrAccountDeleted.
func (s *Session) DeleteAccount(ctx context.Context, password string) error {
	c, err := s.Client(ctx)
	if err != nil {
		return errorf("session delete account: %w", err)
	}
	if err := c.DeleteAccount(ctx, password); err != nil {
		return err
	}
	s.mu.Lock()
	s.deleted = true
	s.tokens, s.password, s.unconfirmed = tokens{}, "", ""
	s.mu.Unlock()
	s.shut(ctx, ErrAccountDeleted)
	return nil
}

// ProfileParams is a change of the user's profile: a nil field is left as
// it is, an empty one is cleared. Nickname is at most 64 characters;
// AvatarURL an absolute http or https URL of at most 512 bytes.
type ProfileParams struct {
	Nickname  *string
	AvatarURL *string
}

// UpdateProfile sets the fields of the user's profile that p sets and
// returns the profile as stored. A field over its limit fails with
// TOO_LARGE, a malformed one with BAD_REQUEST.
func (c *Client) UpdateProfile(ctx context.Context, p ProfileParams) (*protocol.UserInfo, error) {
	req := &protocol.UpdateProfileReq{Nickname: p.Nickname, AvatarUrl: p.AvatarURL}
	resp := protocol.NewUserInfo()
	if err := c.roundTrip(ctx, protocol.Op_UPDATE_PROFILE, req, resp); err != nil {
		return nil, errorf("update profile: %w", err)
	}
	return resp, nil
}

// SignOutDevice revokes the tokens of one of the user's devices (see
// ListDevices) and closes its connections with SIGNED_OUT: this one too
// when deviceID is its own, and then it returns nil whether the reply or
// the close came first. A device the user never logged in from fails with
// NOT_FOUND. It never reports ErrOutcomeUnknown: signing a device out again
// is answered as the first time, so after a lost answer call it again (for
// this device, on a new connection: a login by its token refused with
// TOKEN_INVALID says it is signed out).
func (c *Client) SignOutDevice(ctx context.Context, deviceID string) error {
	req := &protocol.SignOutDeviceReq{DeviceId: deviceID}
	err := c.roundTrip(ctx, protocol.Op_SIGN_OUT_DEVICE, req, protocol.NewSignOutDeviceResp())
	if err != nil && closedFor(err, protocol.CloseReason_SIGNED_OUT) && deviceID == c.loggedInAs() {
		// The server closes the device's connections through task, beside
		// the reply rather than after it: the close mostly comes first.
		// Either way this device is signed out, as asked.
		return nil
	}
	if err != nil {
		return errorf("sign out device %q: %w", deviceID, err)
	}
	return nil
}

// loggedInAs returns the device c logged in as, "" before Login.
func (c *Client) loggedInAs() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.device
}

// SearchUsers finds users by exact username, or by a username prefix of
// at least 3 characters, in username order: at most limit of them (0, or
// over 20, means 20). Searches are rate-limited per user (RATE_LIMITED).
func (c *Client) SearchUsers(ctx context.Context, query string,
	limit int32) ([]*protocol.UserInfo, error) {
	req := &protocol.SearchUsersReq{Query: query, Limit: limit}
	resp := protocol.NewSearchUsersResp()
	if err := c.roundTrip(ctx, protocol.Op_SEARCH_USERS, req, resp); err != nil {
		return nil, errorf("search users %q: %w", query, err)
	}
	return resp.Users, nil
}
