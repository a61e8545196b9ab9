// Package tokengen owns the layout of the fixed header of an access token,
// which logic signs and the gateway reads one field of: the device's token
// generation. The gateway reads it, unverified, only from tokens logic has
// just returned to it (LOGIN_ACK, CHANGE_PASSWORD_ACK), to learn the
// generation its connection was authenticated at (logicrpc.Session.token_gen).
package tokengen

import (
	"encoding/base64"
	"encoding/binary"
	"strings"
)

// Version is the first payload byte of an access token. Version 2 added the
// generation; logic refuses any other.
const Version = 2

// The payload is version(1) | user id(8) | expiry unix ms(8) |
// generation(8) | device id; HeaderLen is the fixed part before the device.
const (
	GenerationOffset = 1 + 8 + 8
	HeaderLen        = GenerationOffset + 8
)

// Generation returns the token generation an access token carries, without
// checking its signature, or 0 when token does not parse as one. 0 is what
// logic reads as "unknown, not checked", so a token of a format this reader
// does not know only loses the check, never the connection.
func Generation(token string) int64 {
	enc, _, found := strings.Cut(token, ".")
	if !found || base64.RawURLEncoding.DecodedLen(len(enc)) < HeaderLen {
		return 0
	}
	payload, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || len(payload) < HeaderLen || payload[0] != Version {
		return 0
	}
	return int64(binary.BigEndian.Uint64(payload[GenerationOffset:HeaderLen]))
}
