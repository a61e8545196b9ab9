package logic

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Logout revokes every token of the session's device. The gateway closes the
// session's own connection with SIGNED_OUT after the reply; any other
// connection of the device is closed through task. A session whose device
// was signed out since is TOKEN_INVALID: the device may have logged in
// again, and that login is not this connection's to end.
func (s *Service) Logout(ctx context.Context, session *logicrpc.Session,
	_ *protocol.LogoutReq) (*protocol.LogoutResp, error) {
	if err := s.authorizeWrite(ctx, "logout", session); err != nil {
		return nil, err
	}
	if _, err := s.revokeDevices(ctx, session.UserId, session.DeviceId); err != nil {
		return nil, s.fail("logout", err, sessionIDs(session))
	}
	if err := s.removePushTokens(ctx, session.UserId, session.DeviceId); err != nil {
		return nil, s.fail("logout", err, sessionIDs(session))
	}
	s.signOutConns(ctx, session.UserId, session.DeviceId, ownConn(session))
	s.log.Info().Int64("user", session.UserId).Str("device", session.DeviceId).Msg("logged out")
	return &protocol.LogoutResp{}, nil
}

// ChangePassword checks the old password (rate-limited like a login), sets
// the new one, revokes the tokens of every device of the user, closes the
// user's other connections with SIGNED_OUT, and returns a new pair for the
// session's device, whose connection stays open. A session whose device was
// signed out since is TOKEN_INVALID, before any password is tried: a device
// signed out for being lost must not lock the owner out with the password
// it knows.
func (s *Service) ChangePassword(ctx context.Context, session *logicrpc.Session,
	req *protocol.ChangePasswordReq) (*protocol.ChangePasswordResp, error) {
	if err := s.authorizeWrite(ctx, "change_password", session); err != nil {
		return nil, err
	}
	if req == nil {
		req = &protocol.ChangePasswordReq{} // a missing body reads as empty
	}
	p, err := s.changePassword(ctx, session, req)
	if err != nil {
		return nil, s.fail("change_password", err, sessionIDs(session))
	}
	s.signOutConns(ctx, session.UserId, "", ownConn(session))
	s.log.Info().Int64("user", session.UserId).Msg("password changed")
	return &protocol.ChangePasswordResp{Token: p.access, TokenExpiresMs: p.accessExpires,
		RefreshToken: p.refresh, RefreshExpiresMs: p.refreshExpires}, nil
}

// changePassword is ChangePassword up to the new pair.
func (s *Service) changePassword(ctx context.Context, session *logicrpc.Session,
	req *protocol.ChangePasswordReq) (tokenPair, error) {
	u, err := s.findUser(ctx, "", session.UserId)
	if err == nil && u == nil {
		err = fmt.Errorf("%w: user", ErrNotFound)
	}
	if err != nil {
		return tokenPair{}, err
	}
	if err := validNewPassword(u.Username, req.GetNewPassword_()); err != nil {
		return tokenPair{}, err
	}
	if err := s.limits.allowPassword(u.Username, session.RemoteAddr); err != nil {
		return tokenPair{}, err
	}
	checked, err := s.authPassword(ctx, u.Username, req.GetOldPassword())
	if err != nil {
		return tokenPair{}, err
	}
	hash, err := s.hash.hash(ctx, req.NewPassword_)
	if err != nil {
		return tokenPair{}, err
	}
	// One transaction: a new password stored with the revocation failing
	// after it would leave the old tokens working, a thief's among them
	// (a password is changed for fear of one), and answer an error for a
	// password that did change.
	var p tokenPair
	err = s.dbc(ctx).Transaction(func(tx *gorm.DB) error {
		p, err = s.setPassword(tx, checked, session.DeviceId, hash)
		return err
	})
	return p, err
}

// setPassword stores the new password hash of u, whose old password was
// checked against u.PasswordHash, revokes the tokens of all the user's
// devices and returns a new pair for device, on tx.
func (s *Service) setPassword(tx *gorm.DB, u *userRow, device, hash string) (tokenPair, error) {
	user := u.ID
	// The devices' rows before the user's: a password login writes its
	// device's row, then reads the user's (issuePairChecked), and locking
	// in the same order keeps the two from deadlocking on MySQL.
	if _, err := revokeDevicesIn(tx, user, ""); err != nil {
		return tokenPair{}, err
	}
	// Only over the hash the old password was checked against: a change
	// that raced in since set a password this caller never proved, and
	// overwriting it would tell both callers their password is set.
	res := tx.Model(&userRow{}).Where("id = ? AND password_hash = ?", user, u.PasswordHash).
		Update("password_hash", hash)
	if res.Error != nil {
		return tokenPair{}, fmt.Errorf("set password user=%d: %w", user, res.Error)
	}
	if res.RowsAffected == 0 {
		return tokenPair{}, ErrInvalidCredentials
	}
	// Every other device is signed out; the session's own keeps its token.
	if err := removeOtherPushTokens(tx, user, device); err != nil {
		return tokenPair{}, err
	}
	// Read after the revocation, so the new pair carries the new generation.
	dev, err := findDeviceIn(tx, user, device)
	if err == nil && dev == nil {
		dev, err = s.touchDeviceIn(tx, user, device, "")
	}
	if err != nil {
		return tokenPair{}, err
	}
	return s.issuePairIn(tx, dev)
}

// SignOutDevice revokes the tokens of one of the user's devices and closes
// its connections with SIGNED_OUT (the session's own too, when it names its
// own device). A device the user never logged in from is NOT_FOUND; a
// session whose own device was signed out is TOKEN_INVALID.
func (s *Service) SignOutDevice(ctx context.Context, session *logicrpc.Session,
	req *protocol.SignOutDeviceReq) (*protocol.SignOutDeviceResp, error) {
	// Checked: a signed-out phone whose close was lost must not sign the
	// user's other devices out.
	if err := s.authorizeWrite(ctx, "sign_out_device", session); err != nil {
		return nil, err
	}
	if req == nil {
		req = &protocol.SignOutDeviceReq{} // a missing body reads as empty
	}
	device := req.GetDeviceId()
	err := validDeviceID(device)
	if err == nil && device == "" {
		err = fmt.Errorf("%w: device_id required", ErrBadRequest)
	}
	if err != nil {
		return nil, s.fail("sign_out_device", err, sessionIDs(session))
	}
	n, err := s.revokeDevices(ctx, session.UserId, device)
	if err == nil && n == 0 {
		err = fmt.Errorf("%w: device", ErrNotFound)
	}
	if err == nil {
		err = s.removePushTokens(ctx, session.UserId, device)
	}
	if err != nil {
		return nil, s.fail("sign_out_device", err, sessionIDs(session))
	}
	s.signOutConns(ctx, session.UserId, device, connRef{})
	s.log.Info().Int64("user", session.UserId).Str("device", device).Msg("device signed out")
	return &protocol.SignOutDeviceResp{}, nil
}

// ListDevices lists the user's signed-in devices (signed-out ones are left
// out), most recent login first (at most maxListedDevices), each online when
// it has a live route.
func (s *Service) ListDevices(ctx context.Context, session *logicrpc.Session,
	_ *protocol.ListDevicesReq) (*protocol.ListDevicesResp, error) {
	if err := s.authorizeRead(ctx, "list_devices", session); err != nil {
		return nil, err
	}
	rows, err := s.listDevices(ctx, session.UserId)
	if err != nil {
		return nil, s.fail("list_devices", err, sessionIDs(session))
	}
	online := map[string]bool{}
	rs, err := s.deps.Routes.Lookup(ctx, []int64{session.UserId})
	if err != nil {
		// The list is still right without presence; say offline.
		s.failLog.Warn().Err(err).Int64("user", session.UserId).Msg("device presence unknown")
	}
	for _, r := range rs {
		online[r.DeviceID] = true
	}
	resp := &protocol.ListDevicesResp{Devices: make([]*protocol.Device, len(rows))}
	for i, d := range rows {
		resp.Devices[i] = &protocol.Device{DeviceId: d.DeviceID, Platform: d.Platform,
			LastLoginMs: d.LastLoginMs, Online: online[d.DeviceID],
			Current: d.DeviceID == session.DeviceId}
	}
	return resp, nil
}

// ownConn names the session's connection.
func ownConn(session *logicrpc.Session) connRef {
	return connRef{gateway: session.Gateway, connID: session.ConnId}
}
