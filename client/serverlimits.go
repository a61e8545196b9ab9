package client

import (
	"time"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Defaults of a server's limits, assumed for a limit a server older than
// LoginResp.limits does not report (docs/protocol.md, Limits). They
// mirror logic's defaults, which the client package may not import.
const (
	DefaultMaxContentBytes = 16 << 10
	DefaultMaxFileBytes    = 25 << 20
	DefaultRecallWindow    = 2 * time.Minute
	DefaultEditWindow      = 24 * time.Hour
	DefaultMaxGroupMembers = 500
	DefaultMaxPins         = 20
)

// Limits are the server's limits that decide what a client offers: a file
// over MaxFileBytes is refused before its upload, Recall and Edit are
// offered only within their windows. The server refuses beyond them
// either way; these spare the user an attempt bound to fail.
type Limits struct {
	// MaxContentBytes bounds one message's or edit's content, in bytes.
	MaxContentBytes int
	// MaxFileBytes bounds one upload, in bytes.
	MaxFileBytes int64
	// RecallWindow and EditWindow are how long after a message's
	// SendTimeMs (the server's clock) its sender may recall or edit it.
	RecallWindow time.Duration
	EditWindow   time.Duration
	// MaxGroupMembers bounds a group's active members, owner included.
	MaxGroupMembers int
	// MaxPins bounds the pinned messages of one conversation.
	MaxPins int
	// Reported says the server sent its limits at login. Without them
	// every field is its default, which a server set otherwise does not
	// keep: a client may then prefer the server's refusal to its own.
	Reported bool
}

// DefaultLimits are the limits assumed before a login, and from a server
// that reports none.
func DefaultLimits() Limits {
	return Limits{MaxContentBytes: DefaultMaxContentBytes, MaxFileBytes: DefaultMaxFileBytes,
		RecallWindow: DefaultRecallWindow, EditWindow: DefaultEditWindow,
		MaxGroupMembers: DefaultMaxGroupMembers, MaxPins: DefaultMaxPins}
}

// LimitsOf returns the limits a login's reply reports, each one the
// server leaves unset (or reports as zero or less) being its default.
func LimitsOf(resp *protocol.LoginResp) Limits {
	l := DefaultLimits()
	sl := resp.GetLimits()
	if sl == nil {
		return l
	}
	l.Reported = true
	if v := sl.GetMaxContentBytes(); v > 0 {
		l.MaxContentBytes = int(v)
	}
	if v := sl.GetMaxFileBytes(); v > 0 {
		l.MaxFileBytes = v
	}
	if v := sl.GetRecallWindowMs(); v > 0 {
		l.RecallWindow = time.Duration(v) * time.Millisecond
	}
	if v := sl.GetEditWindowMs(); v > 0 {
		l.EditWindow = time.Duration(v) * time.Millisecond
	}
	if v := sl.GetMaxGroupMembers(); v > 0 {
		l.MaxGroupMembers = int(v)
	}
	if v := sl.GetMaxPins(); v > 0 {
		l.MaxPins = int(v)
	}
	return l
}

// RecallOpen reports whether m's recall window is still open at now, a
// time on the server's clock (see Session.ServerNow): as the server judges,
// the window's last instant is still in it.
func (l Limits) RecallOpen(m *common.Message, now time.Time) bool {
	return !now.After(sentAt(m).Add(l.RecallWindow))
}

// EditOpen reports whether m's edit window is still open at now, a time on
// the server's clock (see Session.ServerNow).
func (l Limits) EditOpen(m *common.Message, now time.Time) bool {
	return !now.After(sentAt(m).Add(l.EditWindow))
}

// sentAt is m's send time, as the server stamped it.
func sentAt(m *common.Message) time.Time {
	return time.UnixMilli(m.GetSendTimeMs())
}
