package logic

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"
	"gorm.io/gorm"

	"github.com/resonance-im/resonance/internal/route"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Password limits in bytes; the upper one bounds hashing work per request.
const (
	minPassword = 8
	maxPassword = 128
)

// defaultDevice names the device of a login that names none.
const defaultDevice = "default"

// Register creates an account. A taken username is USERNAME_TAKEN, even when
// two registrations race. Every attempt, valid or not, is taken from the
// budget of conn's address first: USERNAME_TAKEN tells whether a name
// exists, so the limit bounds name probing as well as hashing and rows.
func (s *Service) Register(ctx context.Context, req *protocol.RegisterReq,
	conn *logicrpc.ConnInfo) (*protocol.RegisterResp, error) {
	err := s.limits.allowRegister(conn.GetRemoteAddr())
	if err == nil {
		err = validateCredentials(req.GetUsername(), req.GetPassword())
	}
	if err == nil {
		err = validNewName(req.Username)
	}
	if err == nil {
		err = validNewPassword(req.Username, req.Password)
	}
	if err != nil {
		return nil, s.fail("register", err, func(e *zerolog.Event) *zerolog.Event {
			return e.Str("remote", conn.GetRemoteAddr())
		})
	}
	hash, err := s.hash.hash(ctx, req.Password)
	if err != nil {
		return nil, s.fail("register", err, nil)
	}
	id, err := s.createUser(ctx, canonicalName(req.Username), hash)
	if err != nil {
		return nil, s.fail("register", err, nil)
	}
	s.log.Info().Int64("user", id).Msg("user registered")
	return &protocol.RegisterResp{UserId: id}, nil
}

// Login authenticates with a token when req carries one (an access token,
// or a refresh token, which is rotated), otherwise with username and
// password (rate-limited per username and per conn's address); it records
// the device and the route of conn and issues tokens. A password or refresh
// login returns a new refresh token; an access-token login leaves
// RefreshToken empty (keep the one held). Limits are this instance's
// configured limits; HeartbeatIntervalMs is left for the gateway to fill.
//
// The call answers within Config.LoginBatchWait, as a LoginBatch does: a
// login still running then is cancelled and answered UNAVAILABLE, and its
// route is removed should it log in all the same (undoLateLogins).
func (s *Service) Login(ctx context.Context, req *protocol.LoginReq,
	conn *logicrpc.ConnInfo) (*protocol.LoginResp, error) {
	out := s.runLogins(ctx, "login", []*logicrpc.LoginAttempt{{Req: req, Conn: conn}})
	if out[0].Err != nil {
		return nil, out[0].Err
	}
	return out[0].Resp, nil
}

// login is Login without its bound, for one attempt of runLogins.
func (s *Service) login(ctx context.Context, req *protocol.LoginReq,
	conn *logicrpc.ConnInfo) (*protocol.LoginResp, error) {
	if req == nil || conn == nil || conn.Gateway == "" {
		err := fmt.Errorf("%w: missing request or connection", ErrBadRequest)
		return nil, s.fail("login", err, nil)
	}
	u, dev, pair, err := s.authenticate(ctx, req, conn)
	if err != nil {
		return nil, s.fail("login", err, func(e *zerolog.Event) *zerolog.Event {
			e = e.Int64("conn", conn.ConnId).Str("remote", conn.RemoteAddr)
			if user, device, ok := tokenNames(req.Token); ok {
				e = e.Int64("user", user).Str("device", device) // claimed, not proved
			}
			return e
		})
	}
	s.limits.loggedIn(u.Username, conn.RemoteAddr)
	r := route.Route{UserID: u.ID, DeviceID: dev.DeviceID, Gateway: conn.Gateway,
		ConnID: conn.ConnId}
	replaced, err := s.deps.Routes.Put(ctx, r)
	if err != nil {
		err = fmt.Errorf("%w: route put: %w", ErrUnavailable, err)
		return nil, s.fail("login", err, func(e *zerolog.Event) *zerolog.Event {
			return e.Int64("user", u.ID).Int64("conn", conn.ConnId)
		})
	}
	if replaced != nil {
		s.kick(ctx, replaced)
	}
	if err := s.keepRoute(ctx, r, pair.generation); err != nil {
		return nil, s.fail("login", err, func(e *zerolog.Event) *zerolog.Event {
			return e.Int64("user", u.ID).Str("device", dev.DeviceID).Int64("conn", conn.ConnId).
				Str("remote", conn.RemoteAddr)
		})
	}
	s.publishPresence(u.ID)
	return &protocol.LoginResp{
		UserId:           u.ID,
		Username:         u.Username,
		Token:            pair.access,
		TokenExpiresMs:   pair.accessExpires,
		RefreshToken:     pair.refresh,
		RefreshExpiresMs: pair.refreshExpires,
		ServerTimeMs:     s.now().UnixMilli(),
		DeviceId:         dev.DeviceID,
		Limits:           s.cfg.clientLimits(),
	}, nil
}

// keepRoute re-reads, once a login has put its route r, the token
// generation of r's device; unless it is still gen, the one the login
// proved, it removes r (if r still owns it) and returns TOKEN_INVALID. A
// revocation (SIGN_OUT_DEVICE, LOGOUT, CHANGE_PASSWORD) commits, then looks
// the routes up to close their connections: a login that checked its
// token before the commit and puts its route after the lookup is missed by
// the lookup, and would stay open and logged in, but its read here, after
// its put, sees the new generation. It costs every login, reconnects
// included, one read by primary key.
func (s *Service) keepRoute(ctx context.Context, r route.Route, gen int64) error {
	stored, ok, err := s.deviceGeneration(ctx, r.UserID, r.DeviceID)
	if err == nil && ok && stored == gen {
		return nil
	}
	if err == nil {
		err = errDeviceRevoked
	}
	// Failing closed on a failed read too: the login cannot tell whether
	// its connection is still allowed in.
	if derr := s.deps.Routes.Delete(ctx, r); derr != nil && !errors.Is(derr, route.ErrNotOwner) {
		s.failLog.Warn().Err(derr).Int64("user", r.UserID).Str("device", r.DeviceID).
			Int64("conn", r.ConnID).Msg("route of a refused login not removed; it expires")
	}
	return err
}

// authenticate returns the user req proves to be, its device's row and the
// tokens to hand out.
func (s *Service) authenticate(ctx context.Context, req *protocol.LoginReq,
	conn *logicrpc.ConnInfo) (*userRow, *deviceRow, tokenPair, error) {
	if err := validDeviceID(req.DeviceId); err != nil {
		return nil, nil, tokenPair{}, err
	}
	if err := validPlatform(req.Platform); err != nil {
		return nil, nil, tokenPair{}, err
	}
	if strings.HasPrefix(req.Token, refreshPrefix) {
		return s.authRefresh(ctx, req, tokenFrom{conn: conn.ConnId, remote: conn.RemoteAddr})
	}
	if req.Token != "" {
		return s.authToken(ctx, req)
	}
	return s.authPasswordLogin(ctx, req, conn.RemoteAddr)
}

// authPasswordLogin checks a password login and issues a new token pair for
// its device.
func (s *Service) authPasswordLogin(ctx context.Context, req *protocol.LoginReq,
	remote string) (*userRow, *deviceRow, tokenPair, error) {
	if err := s.limits.allowPassword(req.Username, remote); err != nil {
		return nil, nil, tokenPair{}, err
	}
	u, err := s.authPassword(ctx, req.Username, req.Password)
	if err != nil {
		return nil, nil, tokenPair{}, err
	}
	if u.DeletedMs != 0 {
		// Its deletion has begun (beginDeletion): the password only finishes it.
		return nil, nil, tokenPair{}, fmt.Errorf("%w: user %d is being deleted",
			ErrInvalidCredentials, u.ID)
	}
	if u.SuspendedMs != 0 {
		// Told only to whoever proved the password.
		return nil, nil, tokenPair{}, fmt.Errorf("%w: user %d", ErrAccountSuspended, u.ID)
	}
	device := req.DeviceId
	if device == "" {
		device = defaultDevice
	}
	// One transaction, so that a login refused for a password changed since
	// its check leaves the device's row as it was.
	var dev *deviceRow
	var pair tokenPair
	err = s.dbc(ctx).Transaction(func(tx *gorm.DB) error {
		dev, err = s.touchDeviceIn(tx, u.ID, device, req.Platform)
		if err == nil {
			pair, err = s.issuePairChecked(tx, dev, u.PasswordHash)
		}
		return err
	})
	if err != nil {
		return nil, nil, tokenPair{}, err
	}
	return u, dev, pair, nil
}

// authToken checks an access token. A token is bound to its device
// (presenting it for another device is TOKEN_INVALID) and to the device's
// token generation, which revocation bumps.
func (s *Service) authToken(ctx context.Context,
	req *protocol.LoginReq) (*userRow, *deviceRow, tokenPair, error) {
	claims, err := s.tokens.verify(req.Token, s.now())
	if err != nil {
		return nil, nil, tokenPair{}, err
	}
	if req.DeviceId != "" && req.DeviceId != claims.DeviceID {
		return nil, nil, tokenPair{}, fmt.Errorf("%w: issued for another device", ErrTokenInvalid)
	}
	dev, u, err := s.findLoginDevice(ctx, claims.UserID, claims.DeviceID)
	if err == nil && u != nil && u.SuspendedMs != 0 {
		// Before the generation, which the suspension bumped: the client
		// learns why rather than that it was signed out. The token's
		// signature proved it was issued to this user.
		err = fmt.Errorf("%w: user %d", ErrAccountSuspended, u.ID)
	}
	if err == nil && (dev == nil || dev.TokenGen != claims.Generation) {
		err = errDeviceRevoked
	}
	if err != nil {
		return nil, nil, tokenPair{}, err
	}
	u, dev, err = s.loginDevice(ctx, u, dev, req.Platform)
	if err != nil {
		return nil, nil, tokenPair{}, err
	}
	// The generation the token proved, not the row's as read back by the
	// login's write: a revocation since would otherwise hand this login a
	// token of the generation meant to shut it out.
	proved := *dev
	proved.TokenGen = claims.Generation
	return u, dev, s.accessToken(&proved), nil
}

// authRefresh logs in with a refresh token, which is rotated: the client
// whose access token expired reconnects without its password.
func (s *Service) authRefresh(ctx context.Context, req *protocol.LoginReq,
	from tokenFrom) (*userRow, *deviceRow, tokenPair, error) {
	user, device, err := parseRefreshToken(req.Token)
	if err != nil {
		return nil, nil, tokenPair{}, err
	}
	if req.DeviceId != "" && req.DeviceId != device {
		return nil, nil, tokenPair{}, fmt.Errorf("%w: issued for another device", ErrTokenInvalid)
	}
	pair, err := s.rotate(ctx, user, device, req.Token, from)
	if err != nil {
		return nil, nil, tokenPair{}, err
	}
	u, dev, err := s.loginDevice(ctx, nil, &deviceRow{UserID: user, DeviceID: device}, req.Platform)
	return u, dev, pair, err
}

// loginDevice returns the user of a device a token proved (u, unless the
// caller has not read it), and records the login on the device's row unless
// the row, as read, already shows a login within deviceTouchEvery on the same
// platform: a reconnect storm of token logins then costs no write (on SQLite,
// no commit each).
func (s *Service) loginDevice(ctx context.Context, u *userRow, dev *deviceRow,
	platform string) (*userRow, *deviceRow, error) {
	if u == nil {
		var err error
		u, err = s.findUser(ctx, "", dev.UserID)
		if err == nil && u == nil {
			err = fmt.Errorf("%w: user %d gone", errDeviceRevoked, dev.UserID)
		}
		if err != nil {
			return nil, nil, err
		}
	}
	fresh := dev.LastLoginMs > 0 && s.now().UnixMilli()-dev.LastLoginMs < deviceTouchEvery.Milliseconds()
	if fresh && (platform == "" || platform == dev.Platform) {
		return u, dev, nil
	}
	dev, err := s.touchDevice(ctx, dev.UserID, dev.DeviceID, platform)
	return u, dev, err
}

// deviceTouchEvery is how stale a device's last login may be before a token
// login records it again: LIST_DEVICES shows last logins to this precision.
const deviceTouchEvery = 10 * time.Minute

// authPassword checks a username and password. Malformed input, an unknown
// user and a wrong password all cost one hash and give the same error, so
// neither timing nor code tells whether a username exists.
func (s *Service) authPassword(ctx context.Context, username, password string) (*userRow, error) {
	var u *userRow
	var err error
	if validateCredentials(username, password) == nil {
		if u, err = s.findUser(ctx, canonicalName(username), 0); err != nil {
			return nil, err
		}
	} else if len(password) > maxPassword {
		password = password[:maxPassword] // bound the work; it fails anyway
	}
	stored := ""
	if u != nil {
		stored = u.PasswordHash
	}
	ok, err := s.hash.verify(ctx, password, stored)
	if err != nil {
		return nil, fmt.Errorf("verify password user %q: %w", username, err)
	}
	if !ok {
		return nil, ErrInvalidCredentials
	}
	return u, nil
}

// Disconnect removes the route of a closed connection unless a newer login of
// the same device owns it now, which is not an error.
func (s *Service) Disconnect(ctx context.Context, session *logicrpc.Session) error {
	if session == nil || session.UserId == 0 {
		return s.fail("disconnect", ErrUnauthenticated, nil)
	}
	err := s.deps.Routes.Delete(ctx, sessionRoute(session))
	if err != nil && !errors.Is(err, route.ErrNotOwner) {
		err = fmt.Errorf("%w: route delete: %w", ErrUnavailable, err)
		return s.fail("disconnect", err, func(e *zerolog.Event) *zerolog.Event {
			return e.Int64("user", session.UserId).Int64("conn", session.ConnId)
		})
	}
	if err == nil {
		s.publishPresence(session.UserId)
	}
	return nil
}

// DisconnectBatch is Disconnect for up to logicrpc.MaxDisconnectBatch
// sessions, the closed connections a gateway found queued together. It
// answers how many failed: their routes expire, as a failed Disconnect's
// would, and each failure is logged by Disconnect.
func (s *Service) DisconnectBatch(ctx context.Context, sessions []*logicrpc.Session) (int32, error) {
	if len(sessions) == 0 || len(sessions) > logicrpc.MaxDisconnectBatch {
		err := fmt.Errorf("%w: %d sessions in a batch, want 1-%d", ErrBadRequest, len(sessions),
			logicrpc.MaxDisconnectBatch)
		return 0, s.fail("disconnect batch", err, nil)
	}
	// A few at a time, so that a batch of 256 against a slow route store
	// stays well inside the gateway's timeout for one call.
	var (
		failed atomic.Int32
		wg     sync.WaitGroup
		slots  = make(chan struct{}, disconnectBatchConcurrency)
	)
	for _, sess := range sessions {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			if s.Disconnect(ctx, sess) != nil {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	return failed.Load(), nil
}

// disconnectBatchConcurrency is how many of a DisconnectBatch's sessions are
// disconnected at once.
const disconnectBatchConcurrency = 16

// Renew extends the routes of the given live connections, and writes back
// those a route store restart lost, but not a signed-out device's
// (renewable): its connection, whose close was lost, would receive the
// user's new messages by PUSH again.
func (s *Service) Renew(ctx context.Context, sessions []*logicrpc.Session) error {
	rs := make([]route.Route, 0, len(sessions))
	for _, ss := range s.renewable(ctx, sessions) {
		rs = append(rs, sessionRoute(ss))
	}
	if len(rs) == 0 {
		return nil
	}
	if err := s.deps.Routes.Renew(ctx, rs); err != nil {
		err = fmt.Errorf("%w: route renew: %w", ErrUnavailable, err)
		return s.fail("renew", err, func(e *zerolog.Event) *zerolog.Event {
			return e.Int("routes", len(rs))
		})
	}
	return nil
}

// renewable returns the logged-in sessions of sessions whose device was
// not signed out since they logged in (signedOutSessions: one read for the
// batch at most). A stale one is only left out, not closed: a renewal that
// loaded a session just before its own CHANGE_PASSWORD renewed it reads
// stale too, and its route, still there, is renewed by the next one. When
// the generations cannot be read, all are renewed: a route lost in an
// outage is a live connection unreachable.
func (s *Service) renewable(ctx context.Context,
	sessions []*logicrpc.Session) []*logicrpc.Session {
	live := make([]*logicrpc.Session, 0, len(sessions))
	for _, ss := range sessions {
		if ss != nil && ss.UserId != 0 {
			live = append(live, ss)
		}
	}
	stale, err := s.signedOutSessions(ctx, live)
	if err != nil {
		s.failLog.Warn().Err(err).Int("routes", len(live)).
			Msg("device generations unread; renewing every route")
		return live
	}
	kept := live[:0]
	for i, ss := range live {
		if stale[i] {
			s.log.Debug().Int64("user", ss.UserId).Str("device", ss.DeviceId).
				Int64("conn", ss.ConnId).Msg("route of a signed-out connection not renewed")
			continue
		}
		kept = append(kept, ss)
	}
	return kept
}

// GetUser looks a user up by username, or by id when username is empty. A
// deleted user is found by id only, with Deleted set and no profile.
func (s *Service) GetUser(ctx context.Context, session *logicrpc.Session,
	req *protocol.GetUserReq) (*protocol.GetUserResp, error) {
	if err := s.authorizeRead(ctx, "get_user", session); err != nil {
		return nil, err
	}
	if req == nil {
		req = &protocol.GetUserReq{} // a missing body reads as empty
	}
	logIDs := func(e *zerolog.Event) *zerolog.Event {
		// Cut: a name over the limit is refused, and may be a frame long.
		name := req.Username[:min(len(req.Username), maxUsername+1)]
		return e.Int64("user", session.UserId).Int64("target", req.UserId).Str("username", name)
	}
	if req.Username == "" && req.UserId <= 0 {
		err := fmt.Errorf("%w: username or user_id required", ErrBadRequest)
		return nil, s.fail("get_user", err, logIDs)
	}
	if req.Username != "" {
		if err := validateUsername(req.Username); err != nil {
			return nil, s.fail("get_user", err, logIDs)
		}
	}
	u, err := s.findUser(ctx, canonicalName(req.Username), req.UserId)
	if err == nil && u == nil {
		err = fmt.Errorf("%w: user", ErrNotFound)
	}
	if err != nil {
		return nil, s.fail("get_user", err, logIDs)
	}
	if u.DeletedMs != 0 {
		// Only by id: the row's name is no username (deletedNamePrefix).
		// The peer of a deleted user learns why its messages are refused.
		return &protocol.GetUserResp{UserId: u.ID, Deleted: true}, nil
	}
	return &protocol.GetUserResp{UserId: u.ID, Username: u.Username, Nickname: u.Nickname,
		AvatarUrl: u.AvatarURL}, nil
}

func sessionRoute(ss *logicrpc.Session) route.Route {
	return route.Route{
		UserID: ss.UserId, DeviceID: ss.DeviceId, Gateway: ss.Gateway, ConnID: ss.ConnId,
	}
}

// validateCredentials checks the shape of a username and password.
func validateCredentials(username, password string) error {
	if err := validateUsername(username); err != nil {
		return err
	}
	if len(password) < minPassword || len(password) > maxPassword {
		return fmt.Errorf("%w: password must be %d-%d bytes",
			ErrBadRequest, minPassword, maxPassword)
	}
	return nil
}

// validateUsername checks the shape of a username: 3-32 bytes of
// letters, digits, '_', '.', '-' (hence ASCII, hence valid UTF-8).
func validateUsername(username string) error {
	if len(username) < minUsername || len(username) > maxUsername {
		return fmt.Errorf("%w: username must be %d-%d characters",
			ErrBadRequest, minUsername, maxUsername)
	}
	for _, r := range username {
		// Named, and "ASCII" said: "å" is a letter to the person typing it.
		if r >= utf8.RuneSelf || !usernameByte(byte(r)) {
			return fmt.Errorf("%w: username may hold only ASCII letters, digits, '_', '.' "+
				"and '-', not %q", ErrBadRequest, r)
		}
	}
	return nil
}

// reservedNames are words that name no one: "@all" mentions every member
// of a group, so a user named "all" could never be mentioned alone.
var reservedNames = []string{"all"}

// validNewName refuses a reserved username to a new account. Only
// registration checks it: an account that took the name before it was
// reserved still logs in.
func validNewName(username string) error {
	if slices.Contains(reservedNames, canonicalName(username)) {
		return fmt.Errorf("%w: username %q is reserved", ErrBadRequest, username)
	}
	return nil
}

// canonicalName folds a username to lower case. Usernames are unique and
// looked up regardless of case, the same on SQLite (case-sensitive by
// default) and MySQL (case-insensitive collation), and "Alice" cannot pose as
// "alice". Usernames are ASCII, so the fold is exact.
func canonicalName(username string) string {
	return strings.ToLower(username)
}

func usernameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '.' || c == '-'
}
