package logic

import (
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
