package logic

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"strconv"
	"strings"
)

const p2pPrefix = "p2p:"

// p2pConvID names the 1:1 conversation of a and b: "p2p:<low>:<high>", so
// both sides compute the same id.
func p2pConvID(a, b int64) string {
	if a > b {
		a, b = b, a
	}
	return p2pPrefix + strconv.FormatInt(a, 10) + ":" + strconv.FormatInt(b, 10)
}

// parseP2P returns the two members of a p2p conversation id, rejecting any
// spelling p2pConvID would not produce (so one pair has exactly one id).
func parseP2P(convID string) (low, high int64, err error) {
	rest, ok := strings.CutPrefix(convID, p2pPrefix)
	if !ok || len(convID) > maxConvID {
		return 0, 0, fmt.Errorf("%w: unknown conversation id", ErrBadRequest)
	}
	a, b, ok := strings.Cut(rest, ":")
	if ok {
		low, err = strconv.ParseInt(a, 10, 64)
	}
	if ok && err == nil {
		high, err = strconv.ParseInt(b, 10, 64)
	}
	if !ok || err != nil || low <= 0 || high <= low || p2pConvID(low, high) != convID {
		return 0, 0, fmt.Errorf("%w: malformed conversation id", ErrBadRequest)
	}
	return low, high, nil
}

// peerOf returns the other member of convID, or ErrForbidden when user is not
// a member.
func peerOf(convID string, user int64) (int64, error) {
	low, high, err := parseP2P(convID)
	if err != nil {
		return 0, err
	}
	switch user {
	case low:
		return high, nil
	case high:
		return low, nil
	}
	return 0, fmt.Errorf("%w: not a member of the conversation", ErrForbidden)
}

const groupPrefix = "g:"

// newGroupID returns a fresh group conversation id: "g:" and 26 characters
// of base32 over 128 random bits, so ids reveal nothing and never collide.
func newGroupID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return groupPrefix + strings.ToLower(groupIDEncoding.EncodeToString(b[:]))
}

var groupIDEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// isGroupID reports whether convID is spelled as newGroupID spells ids.
func isGroupID(convID string) bool {
	rest, ok := strings.CutPrefix(convID, groupPrefix)
	if !ok || len(rest) != 26 {
		return false
	}
	for _, r := range rest {
		if (r < 'a' || r > 'z') && (r < '2' || r > '7') {
			return false
		}
	}
	return true
}

// checkConvID rejects a conversation id that is neither a p2p nor a group
// id, before any query.
func checkConvID(convID string) error {
	if isGroupID(convID) {
		return nil
	}
	_, _, err := parseP2P(convID)
	return err
}
