package logic

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/resonance-im/resonance/internal/tokengen"
)

// tokenVersion is the first payload byte, so that the format can change
// without accepting old tokens as new ones. Version 2 added the generation;
// version 1 tokens (no generation, hence not revocable) are refused.
const tokenVersion = tokengen.Version

// tokenHeader is the fixed part of the payload: version, user id, expiry,
// generation.
const tokenHeader = tokengen.HeaderLen

// tokenClaims is what a token proves: who, on which device, until when, and
// the device's token generation when it was issued. Revoking the device's
// tokens bumps the stored generation, so an older one no longer logs in.
type tokenClaims struct {
	UserID     int64
	DeviceID   string
	Expires    time.Time
	Generation int64
}

// tokenSigner issues and verifies stateless tokens:
// base64url(payload) "." base64url(HMAC-SHA256(secret, payload)), where the
// payload is version(1) | user id(8) | expiry unix ms(8) | generation(8) |
// device id. The signature alone does not make a token valid: login also
// checks the generation against the device's row (see authToken).
type tokenSigner struct {
	secret []byte
	ttl    time.Duration
}

// b64url is strict so that each token has exactly one spelling: a lax
// decoder ignores the unused low bits of the last character, and a token
// with those bits changed would still verify.
var b64url = base64.RawURLEncoding.Strict()

// issue returns a token for c's user, device and generation valid for ttl
// from now, and the claims it carries (c with Expires set).
func (ts tokenSigner) issue(c tokenClaims, now time.Time) (string, tokenClaims) {
	c.Expires = now.Add(ts.ttl)
	payload := make([]byte, tokenHeader, tokenHeader+len(c.DeviceID))
	payload[0] = tokenVersion
	binary.BigEndian.PutUint64(payload[1:9], uint64(c.UserID))
	binary.BigEndian.PutUint64(payload[9:17], uint64(c.Expires.UnixMilli()))
	binary.BigEndian.PutUint64(payload[tokengen.GenerationOffset:], uint64(c.Generation))
	payload = append(payload, c.DeviceID...)
	return b64url.EncodeToString(payload) + "." + b64url.EncodeToString(ts.mac(payload)), c
}

// verify checks the signature and expiry of token. Every failure wraps
// ErrTokenInvalid with a short reason that is safe to show.
func (ts tokenSigner) verify(token string, now time.Time) (tokenClaims, error) {
	var c tokenClaims
	enc, sig, ok := strings.Cut(token, ".")
	if !ok {
		return c, fmt.Errorf("%w: malformed", ErrTokenInvalid)
	}
	payload, err1 := b64url.DecodeString(enc)
	mac, err2 := b64url.DecodeString(sig)
	if err1 != nil || err2 != nil {
		return c, fmt.Errorf("%w: malformed", ErrTokenInvalid)
	}
	// hmac.Equal compares in constant time, so a forger learns nothing from
	// how long a rejection takes.
	if !hmac.Equal(mac, ts.mac(payload)) {
		return c, fmt.Errorf("%w: bad signature", ErrTokenInvalid)
	}
	if len(payload) < tokenHeader || payload[0] != tokenVersion {
		return c, fmt.Errorf("%w: unknown version", ErrTokenInvalid)
	}
	c.UserID = int64(binary.BigEndian.Uint64(payload[1:9]))
	c.Expires = time.UnixMilli(int64(binary.BigEndian.Uint64(payload[9:17])))
	c.Generation = int64(binary.BigEndian.Uint64(payload[tokengen.GenerationOffset:]))
	c.DeviceID = string(payload[tokenHeader:])
	if !now.Before(c.Expires) {
		return c, fmt.Errorf("%w: expired", ErrTokenInvalid)
	}
	return c, nil
}

func (ts tokenSigner) mac(payload []byte) []byte {
	m := hmac.New(sha256.New, ts.secret)
	m.Write(payload)
	return m.Sum(nil)
}

// tokenNames returns the user and device token (an access or a refresh
// token) names, without checking it: the log of a failed login says whom it
// was aimed at, which a forged token chooses. ok is false when token does
// not parse. The device is cut at maxDeviceID+1 bytes, as a forged access
// token may carry a frame's worth.
func tokenNames(token string) (user int64, device string, ok bool) {
	if strings.HasPrefix(token, refreshPrefix) {
		user, device, err := parseRefreshToken(token)
		return user, device, err == nil
	}
	enc, _, found := strings.Cut(token, ".")
	payload, err := b64url.DecodeString(enc)
	if !found || err != nil || len(payload) < tokenHeader || payload[0] != tokenVersion {
		return 0, "", false
	}
	device = string(payload[tokenHeader:min(len(payload), tokenHeader+maxDeviceID+1)])
	return int64(binary.BigEndian.Uint64(payload[1:9])), device, true
}
