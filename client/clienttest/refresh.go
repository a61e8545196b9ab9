package clienttest

import (
	"strings"
	"time"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// refreshPrefix starts every refresh token, as the server's do: LOGIN tells
// a refresh token from an access token by it.
const refreshPrefix = "rt1."

// refreshRetryGrace is how long after a rotation the rotated-away refresh
// token may come back once, as on the server: a client whose REFRESH answer
// was lost retries with the token it still holds. Options.RefreshRetryGrace
// shortens it for tests.
const refreshRetryGrace = 30 * time.Second

// access is what an access token proves: its device, until it expires.
type access struct {
	device
	expires time.Time
}

// refreshState is the refresh token of one device: the current one, and
// the one rotated away, which may come back once while rotatedAt is set
// and within refreshRetryGrace; any other return of it is reuse.
type refreshState struct {
	current   string
	expires   time.Time
	prev      string
	rotatedAt time.Time
}

// tokenPair is what a login, refresh or password change hands out; times
// are Unix milliseconds.
type tokenPair struct {
	access         string
	accessExpires  int64
	refresh        string
	refreshExpires int64
}

// issueToken returns a new access token of the user's device.
func (s *Server) issueToken(userID int64, deviceID string) (string, int64) {
	token := newToken()
	expires := time.Now().Add(s.opts.TokenTTL)
	s.tokens[token] = access{device: device{userID: userID, id: deviceID}, expires: expires}
	return token, expires.UnixMilli()
}

// issuePairLocked gives the device a new pair; its previous refresh token
// stops working and is not remembered as rotated, as on the server.
func (s *Server) issuePairLocked(d device) tokenPair {
	st := &refreshState{}
	s.refresh[d] = st
	return s.renewLocked(d, st)
}

// renewLocked puts a new refresh token in st and returns it with a new
// access token of d.
func (s *Server) renewLocked(d device, st *refreshState) tokenPair {
	st.current = refreshPrefix + newToken()
	st.expires = time.Now().Add(refreshTTL)
	p := tokenPair{refresh: st.current, refreshExpires: st.expires.UnixMilli()}
	p.access, p.accessExpires = s.issueToken(d.userID, d.id)
	return p
}

// accessDevice returns the device a live access token proves.
func (s *Server) accessDevice(token string) (device, bool) {
	a, ok := s.tokens[token]
	if !ok || !time.Now().Before(a.expires) {
		return device{}, false
	}
	return a.device, true
}

// refreshOwner returns the device whose current or rotated-away refresh
// token is token.
func (s *Server) refreshOwner(token string) (device, *refreshState, bool) {
	if !strings.HasPrefix(token, refreshPrefix) {
		return device{}, nil, false
	}
	for d, st := range s.refresh {
		if token == st.current || token == st.prev {
			return d, st, true
		}
	}
	return device{}, nil, false
}

// rotateLocked exchanges a refresh token of d for a new pair, as the
// server's rotate: the current token is rotated away; the rotated-away one
// is taken once within the grace, and otherwise revokes the device and
// closes its connections, since two parties hold it.
func (s *Server) rotateLocked(d device, st *refreshState, token string) (tokenPair, error) {
	now := time.Now()
	switch {
	case token == st.current && now.Before(st.expires):
		st.prev, st.rotatedAt = token, now
	case token == st.current:
		return tokenPair{}, fail(common.ErrorCode_TOKEN_INVALID, "revoked or expired")
	case !st.rotatedAt.IsZero() && now.Sub(st.rotatedAt) < s.opts.RefreshRetryGrace:
		// A retry of a rotation whose answer was lost, once: the token
		// that answer carried is rotated away in its place, with no retry,
		// so that its holder coming back revokes the device.
		st.prev, st.rotatedAt = st.current, time.Time{}
	default:
		s.revokeLocked(d.userID, d.id)
		s.signOutLocked(d.userID, d.id, nil)
		return tokenPair{}, errSignedOut
	}
	return s.renewLocked(d, st), nil
}

// refreshTokens serves REFRESH: the token must be of the connection's
// device. One revoked since it was issued is refused as a signed-out
// device's (the connection is closed with SIGNED_OUT), as the server.
func (s *Server) refreshTokens(c *conn, req *protocol.RefreshReq) (codec.Body, error) {
	if s.revoked[req.RefreshToken] {
		return nil, errSignedOut
	}
	d, st, ok := s.refreshOwner(req.RefreshToken)
	if !ok {
		return nil, fail(common.ErrorCode_TOKEN_INVALID, "revoked or expired")
	}
	if d != (device{userID: c.userID, id: c.device}) {
		return nil, fail(common.ErrorCode_TOKEN_INVALID, "issued for another device")
	}
	p, err := s.rotateLocked(d, st, req.RefreshToken)
	if err != nil {
		return nil, err
	}
	return &protocol.RefreshResp{Token: p.access, TokenExpiresMs: p.accessExpires,
		RefreshToken: p.refresh, RefreshExpiresMs: p.refreshExpires}, nil
}

// tokenLogin returns the device a LOGIN's token proves, and the pair to
// hand out: a refresh token is rotated, an access token gives a new access
// token only (keep the refresh token held), as on the server.
func (s *Server) tokenLogin(req *protocol.LoginReq) (device, tokenPair, error) {
	if s.revoked[req.Token] {
		return device{}, tokenPair{}, errSignedOut
	}
	refused := fail(common.ErrorCode_TOKEN_INVALID, "token invalid")
	if strings.HasPrefix(req.Token, refreshPrefix) {
		d, st, ok := s.refreshOwner(req.Token)
		if !ok || req.DeviceId != "" && req.DeviceId != d.id {
			return device{}, tokenPair{}, refused
		}
		p, err := s.rotateLocked(d, st, req.Token)
		return d, p, err
	}
	// As the server: a token is its device's, named or not.
	d, ok := s.accessDevice(req.Token)
	if !ok || req.DeviceId != "" && req.DeviceId != d.id {
		return device{}, tokenPair{}, refused
	}
	var p tokenPair
	p.access, p.accessExpires = s.issueToken(d.userID, d.id)
	return d, p, nil
}
