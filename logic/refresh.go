package logic

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"gorm.io/gorm"

	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// refreshPrefix marks a refresh token, so that LOGIN can tell one from an
// access token without trying both.
const refreshPrefix = "rt1."

// refreshRandom is the random part of a refresh token in bytes.
const refreshRandom = 32

// refreshRetryGrace is how long after a rotation the rotated-away refresh
// token may come back once without counting as reuse: a client whose
// connection broke before the REFRESH answer arrived retries with the token
// it still holds, and would otherwise be signed out. The retry may come as
// a REFRESH or, from a client whose access token lapsed too, as a LOGIN, so
// a thief holding the rotated-away token could make it as well; the token
// the retry replaced is therefore remembered as contested (see
// retryRotation), and the party holding it, coming back, revokes the
// device: both are signed out rather than the device's owner alone.
const refreshRetryGrace = 30 * time.Second

// tokenPair is what a login, refresh or password change hands out.
type tokenPair struct {
	access         string
	accessExpires  int64 // Unix ms
	refresh        string
	refreshExpires int64 // Unix ms
	// generation is the device's token generation the access token carries.
	generation int64
}

// newRefreshToken returns a random refresh token naming its user and device:
// "rt1." base64url(user id(8) | random(32) | device id). Only its SHA-256 is
// stored, so a leaked table does not leak usable tokens.
func newRefreshToken(user int64, device string) (string, error) {
	raw := make([]byte, 8+refreshRandom, 8+refreshRandom+len(device))
	binary.BigEndian.PutUint64(raw[:8], uint64(user))
	if _, err := rand.Read(raw[8:]); err != nil {
		return "", fmt.Errorf("refresh token user=%d: %w", user, err)
	}
	raw = append(raw, device...)
	return refreshPrefix + b64url.EncodeToString(raw), nil
}

// parseRefreshToken returns the user and device a refresh token names. It
// proves nothing: the caller compares its hash with the stored one.
func parseRefreshToken(token string) (user int64, device string, err error) {
	enc, ok := strings.CutPrefix(token, refreshPrefix)
	raw, derr := b64url.DecodeString(enc)
	if !ok || derr != nil || len(raw) < 8+refreshRandom ||
		len(raw) > 8+refreshRandom+maxDeviceID {
		return 0, "", fmt.Errorf("%w: malformed refresh token", ErrTokenInvalid)
	}
	return int64(binary.BigEndian.Uint64(raw[:8])), string(raw[8+refreshRandom:]), nil
}

func hashRefresh(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func sameHash(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// issuePairIn gives the device a new refresh token (the previous one of the
// device stops working and is not remembered as rotated) and an access token
// of the device's current generation, on db, a transaction's handle.
func (s *Service) issuePairIn(db *gorm.DB, dev *deviceRow) (tokenPair, error) {
	q := db.Model(&deviceRow{}).Where("user_id = ? AND device_id = ?", dev.UserID, dev.DeviceID)
	p, _, err := s.storePair(q, dev, false)
	return p, err
}

// issuePairChecked is issuePairIn for a password login, on its transaction
// tx: only while the user's password hash is still passwordHash, the one its
// password was checked against, else ErrInvalidCredentials. A change of
// password committed since revoked every device, and the pair would bring
// this one back in with the old password. The condition rides on the
// UPDATE, so the check and the write are one statement (on MySQL the
// subquery takes a shared lock on the user's row, so a change waits or is
// seen). It also revokes the device's earlier access tokens: a password
// login starts the device afresh, and a thief holding one of them (whose
// refresh token this pair replaces) is shut out with it. A suspension
// committed since the check refuses it the same way (an operator's Suspend
// races a login in flight: its revocation may come first).
func (s *Service) issuePairChecked(tx *gorm.DB, dev *deviceRow,
	passwordHash string) (tokenPair, error) {
	q := tx.Model(&deviceRow{}).Where("user_id = ? AND device_id = ? AND EXISTS "+
		"(SELECT 1 FROM `"+s.tables.user+"` WHERE id = ? AND password_hash = ? "+
		"AND suspended_ms = 0)",
		dev.UserID, dev.DeviceID, dev.UserID, passwordHash)
	p, n, err := s.storePair(q, dev, true)
	if err == nil && n == 0 {
		err = ErrInvalidCredentials // the client reads what a wrong password reads
	}
	if err != nil {
		return tokenPair{}, err
	}
	// The access token carries the generation the bump left, read under
	// the row's lock this transaction now holds.
	bumped, err := findDeviceIn(tx, dev.UserID, dev.DeviceID)
	if err == nil && bumped == nil {
		err = fmt.Errorf("%w: device user=%d device=%q vanished", ErrNotFound, dev.UserID, dev.DeviceID)
	}
	if err != nil {
		return tokenPair{}, err
	}
	*dev = *bumped
	access := s.accessToken(dev)
	p.access, p.accessExpires, p.generation = access.access, access.accessExpires, access.generation
	return p, nil
}

// storePair gives the device a new refresh token through q, an UPDATE of
// the device's row, and returns the pair and how many rows q updated. With
// revokeOlder the update also bumps the device's generation, so that every
// access token issued to the device before stops working; the pair's
// access token is then the caller's to issue. A new pair also forgets a
// contested token (see retryRotation): the device starts afresh.
func (s *Service) storePair(q *gorm.DB, dev *deviceRow, revokeOlder bool) (tokenPair, int64, error) {
	refresh, err := newRefreshToken(dev.UserID, dev.DeviceID)
	if err != nil {
		return tokenPair{}, 0, err
	}
	expires := s.now().Add(s.cfg.RefreshTTL).UnixMilli()
	set := map[string]any{"refresh_hash": hashRefresh(refresh),
		"prev_refresh_hash": "", "rotated_ms": 0, "contested_refresh_hash": "",
		"refresh_expires_ms": expires}
	if revokeOlder {
		set["token_gen"] = gorm.Expr("token_gen + 1")
	}
	res := q.Updates(set)
	if res.Error != nil {
		return tokenPair{}, 0, fmt.Errorf("store refresh user=%d device=%q: %w",
			dev.UserID, dev.DeviceID, res.Error)
	}
	var p tokenPair
	if !revokeOlder {
		p = s.accessToken(dev)
	}
	p.refresh, p.refreshExpires = refresh, expires
	return p, res.RowsAffected, nil
}

// accessToken returns a pair holding only an access token for dev.
func (s *Service) accessToken(dev *deviceRow) tokenPair {
	tok, c := s.tokens.issue(tokenClaims{UserID: dev.UserID, DeviceID: dev.DeviceID,
		Generation: dev.TokenGen}, s.now())
	return tokenPair{access: tok, accessExpires: c.Expires.UnixMilli(), generation: c.Generation}
}

// Refresh exchanges the refresh token of the session's device for a new
// pair; the old refresh token stops working. Presenting a refresh token that
// was already rotated away means two parties hold it: the device's tokens are
// revoked and its connections closed, and the answer is TOKEN_INVALID.
//
// A session whose device was signed out since (or whose account was
// deleted) is TOKEN_INVALID marked signed_out, whatever token it presents,
// so that the gateway closes it with SIGNED_OUT; an expired, malformed or
// rotated-away token of a current session is unmarked and leaves the
// connection open. The generation check costs one read, as a write's: a
// REFRESH comes once per access token lifetime.
func (s *Service) Refresh(ctx context.Context, session *logicrpc.Session,
	req *protocol.RefreshReq) (*protocol.RefreshResp, error) {
	if err := s.authorizeWrite(ctx, "refresh", session); err != nil {
		return nil, err
	}
	if req == nil {
		req = &protocol.RefreshReq{} // a missing body reads as empty, as on the wire
	}
	p, err := s.rotate(ctx, session.UserId, session.DeviceId, req.GetRefreshToken(),
		tokenFrom{conn: session.ConnId, remote: session.RemoteAddr})
	if err != nil {
		return nil, s.fail("refresh", err, sessionIDs(session))
	}
	return &protocol.RefreshResp{Token: p.access, TokenExpiresMs: p.accessExpires,
		RefreshToken: p.refresh, RefreshExpiresMs: p.refreshExpires}, nil
}

// errRotationLost means a concurrent rotation replaced the refresh token
// between rotate's read and its write.
var errRotationLost = fmt.Errorf("%w: already used", ErrTokenInvalid)

// tokenFrom names, for the logs, the connection that presented a token.
type tokenFrom struct {
	conn   int64
	remote string
}

// rotate checks token, presented by from, against the device's stored
// refresh token and replaces it. The conditional UPDATE makes two
// concurrent rotations of one token have one winner.
func (s *Service) rotate(ctx context.Context, user int64, device, token string,
	from tokenFrom) (tokenPair, error) {
	tu, td, err := parseRefreshToken(token)
	if err != nil {
		return tokenPair{}, err
	}
	if tu != user || td != device {
		return tokenPair{}, fmt.Errorf("%w: issued for another device", ErrTokenInvalid)
	}
	p, err := s.rotateOnce(ctx, user, device, token, from)
	if errors.Is(err, errRotationLost) {
		// The loser is most often a retry that overtook its original,
		// whose answer is being lost: judged again on what the winner
		// wrote, it is the retry within the grace it would be a moment
		// later, rather than a client locked out for its own retry.
		p, err = s.rotateOnce(ctx, user, device, token, from)
	}
	return p, err
}

// rotateOnce is rotate on one read of the device's row.
func (s *Service) rotateOnce(ctx context.Context, user int64, device, token string,
	from tokenFrom) (tokenPair, error) {
	dev, err := s.findDevice(ctx, user, device)
	switch {
	case err != nil:
		return tokenPair{}, err
	case dev == nil:
		// Pruned once its refresh token expired, or deleted with its
		// account: not told apart, and the expiry is the common case.
		return tokenPair{}, fmt.Errorf("%w: revoked or expired", ErrTokenInvalid)
	case dev.RefreshHash == "":
		// A sign-out clears the refresh token; only it does, as a rotation
		// or a password login puts a new one in its place.
		return tokenPair{}, errDeviceRevoked
	}
	h := hashRefresh(token)
	now := s.now().UnixMilli()
	switch {
	case sameHash(dev.ContestedRefreshHash, h):
		// First: the pair a grace retry displaced is looked for through
		// every rotation since, not only the next (see retryRotation).
		return s.revokeReused(ctx, dev, from, reuseContested)
	case sameHash(dev.PrevRefreshHash, h):
		if dev.RotatedMs > 0 && withinGrace(now-dev.RotatedMs) {
			return s.retryRotation(ctx, dev, from)
		}
		return s.revokeReused(ctx, dev, from, reuseRotated)
	case !sameHash(dev.RefreshHash, h) || now >= dev.RefreshExpiresMs:
		return tokenPair{}, fmt.Errorf("%w: revoked or expired", ErrTokenInvalid)
	}
	return s.replaceRefresh(ctx, dev, map[string]any{"prev_refresh_hash": h, "rotated_ms": now})
}

// retryRotation answers a retry, by from, of the rotation of dev's refresh
// token whose answer was lost: the token the client never received is
// replaced, and remembered as contested (ContestedRefreshHash) until a
// password login or a revocation. It comes back only if the answer did
// arrive, to another party than this retry's: two parties hold the device.
// Later rotations keep the mark, so the retrier cannot wipe it by
// refreshing.
//
// A retry while the device holds a mark is reuse: allowed, it would
// replace the mark, and a thief who made the first retry could make a
// second one to wipe it. The cost falls on an honest client that loses a
// second answer (and retries) before its next password login: it is
// signed out and logs in with its password again. Lost answers are rare,
// since one is lost only when the connection breaks between the rotation
// and the answer's arrival, and a password prompt is cheaper than leaving
// a thief the device.
func (s *Service) retryRotation(ctx context.Context, dev *deviceRow,
	from tokenFrom) (tokenPair, error) {
	if dev.ContestedRefreshHash != "" {
		return s.revokeReused(ctx, dev, from, reuseRetriedAgain)
	}
	// The conditional UPDATE on the refresh hash also guards the mark:
	// every write that sets or clears it replaces the refresh hash too. The
	// retried token stays remembered, its retry spent: presented once more
	// (the owner retrying after a thief's retry went first), it revokes,
	// until the retrier's next rotation takes its place.
	p, err := s.replaceRefresh(ctx, dev, map[string]any{"prev_refresh_hash": dev.PrevRefreshHash,
		"rotated_ms": 0, "contested_refresh_hash": dev.RefreshHash})
	if err == nil {
		// At info: the device's owner makes it after a lost answer, and a
		// thief holding the token can make it too.
		s.log.Info().Int64("user", dev.UserID).Str("device", dev.DeviceID).
			Int64("conn", from.conn).Str("remote", from.remote).
			Msg("rotated-away refresh token retried within the grace")
	}
	return p, err
}

// withinGrace reports whether sinceMs, the time since a rotation, allows
// its one retry. It reads negative when another logic instance, its clock
// ahead of this one's, rotated: bounded below as above, a retry is allowed
// for less than twice the grace however far apart the clocks are, rather
// than for as long as they disagree. Clocks further apart than the grace
// judge even a prompt retry as reuse, which signs the device out; NTP keeps
// them far closer.
func withinGrace(sinceMs int64) bool {
	grace := refreshRetryGrace.Milliseconds()
	return sinceMs > -grace && sinceMs < grace
}

// replaceRefresh swaps the device's refresh token, while its hash is still
// dev.RefreshHash, for a new one, and writes marks beside it: the columns
// remembering the rotated-away token (prev_refresh_hash, rotated_ms: when,
// 0 when no retry of it is allowed, contested_refresh_hash).
func (s *Service) replaceRefresh(ctx context.Context, dev *deviceRow,
	marks map[string]any) (tokenPair, error) {
	refresh, err := newRefreshToken(dev.UserID, dev.DeviceID)
	if err != nil {
		return tokenPair{}, err
	}
	expires := s.now().Add(s.cfg.RefreshTTL).UnixMilli()
	set := map[string]any{"refresh_hash": hashRefresh(refresh), "refresh_expires_ms": expires}
	maps.Copy(set, marks)
	res := s.dbc(ctx).Model(&deviceRow{}).
		Where("user_id = ? AND device_id = ? AND refresh_hash = ?",
			dev.UserID, dev.DeviceID, dev.RefreshHash).
		Updates(set)
	if res.Error != nil {
		return tokenPair{}, fmt.Errorf("rotate refresh user=%d device=%q: %w",
			dev.UserID, dev.DeviceID, res.Error)
	}
	if res.RowsAffected == 0 {
		return tokenPair{}, errRotationLost
	}
	p := s.accessToken(dev)
	p.refresh, p.refreshExpires = refresh, expires
	return p, nil
}

// Kinds of refresh token reuse, logged as "reuse".
const (
	// reuseRotated: a rotated-away token came back after its grace.
	reuseRotated = "rotated"
	// reuseContested: the token a grace retry displaced came back.
	reuseContested = "contested"
	// reuseRetriedAgain: a grace retry while an earlier one's mark stands.
	reuseRetriedAgain = "retried again"
)

// revokeReused revokes dev, whose rotated refresh token came back (how:
// reuse, one of the reuse constants), presented by from, and closes its
// connections (the caller's too: it may be the thief's). It returns the
// presenter's answer.
func (s *Service) revokeReused(ctx context.Context, dev *deviceRow, from tokenFrom,
	reuse string) (tokenPair, error) {
	user, device := dev.UserID, dev.DeviceID
	if _, err := s.revokeDevices(ctx, user, device); err != nil {
		s.failLog.Error().Err(err).Int64("user", user).Str("device", device).
			Str("reuse", reuse).Msg("revoking a device after refresh token reuse failed")
	} else {
		s.log.Warn().Int64("user", user).Str("device", device).Int64("conn", from.conn).
			Str("remote", from.remote).Str("reuse", reuse).
			Msg("rotated refresh token reused; device signed out")
		s.signOutConns(ctx, user, device, connRef{})
	}
	return tokenPair{}, errDeviceRevoked
}

// authenticated reports whether session names a logged-in user.
func authenticated(session *logicrpc.Session) bool {
	return session != nil && session.UserId > 0
}

// sessionIDs returns the log fields naming session.
func sessionIDs(session *logicrpc.Session) func(*zerolog.Event) *zerolog.Event {
	return func(e *zerolog.Event) *zerolog.Event {
		return e.Int64("user", session.UserId).Str("device", session.DeviceId).
			Int64("conn", session.ConnId).Str("remote", session.RemoteAddr)
	}
}
