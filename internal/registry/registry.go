// Package registry owns the gateway registry: which gateway push addresses
// are alive. Each gateway registers its address with a time-to-live and
// refreshes it; task reads snapshots to drop the Push clients of gateways
// that are gone and to skip pushes to them instead of waiting out a timeout.
//
// An address that expired or deregistered is kept for Retention so that a
// reader can tell "vanished" (skip it) from "never heard of" (a gateway that
// does not register: try it). Two stores implement Registry: Memory for the
// single-process mode and Redis for a cluster.
package registry

import (
	"context"
	"errors"
	"time"
)

// DefaultRetention is how long a vanished address stays in a snapshot when a
// store is built with zero retention. It exceeds route.DefaultTTL (90s), so
// that the routes a dead gateway leaves behind still resolve to "vanished"
// until they expire.
const DefaultRetention = 5 * time.Minute

// ErrBadTTL is returned by Register for a time-to-live that is not positive.
var ErrBadTTL = errors.New("registry: time-to-live must be positive")

// Registry records the push addresses of running gateways. All methods are
// safe for concurrent use.
type Registry interface {
	// Register marks addr alive until ttl from now, replacing any earlier
	// registration of it (also a deregistered or expired one).
	Register(ctx context.Context, addr string, ttl time.Duration) error
	// Deregister marks addr gone now. An address never registered (or
	// trimmed) is left unknown.
	Deregister(ctx context.Context, addr string) error
	// Snapshot returns the live addresses and those gone within retention.
	Snapshot(ctx context.Context) (Snapshot, error)
}

// State is what a snapshot says about one address.
type State int

// The states of an address.
const (
	// Unknown: never registered, or gone for longer than retention.
	Unknown State = iota
	// Live: registered and not yet expired.
	Live
	// Vanished: expired or deregistered within retention.
	Vanished
)

func (s State) String() string {
	switch s {
	case Live:
		return "live"
	case Vanished:
		return "vanished"
	}
	return "unknown"
}

// Snapshot is the registry as read at one moment. Its maps belong to the
// caller; a nil map reads as empty.
type Snapshot struct {
	// Live maps each live address to when its registration expires.
	Live map[string]time.Time
	// Gone maps each vanished address to when it expired or deregistered.
	Gone map[string]time.Time
}

// State returns what the snapshot says about addr.
func (s Snapshot) State(addr string) State {
	if _, ok := s.Live[addr]; ok {
		return Live
	}
	if _, ok := s.Gone[addr]; ok {
		return Vanished
	}
	return Unknown
}

// classify sorts an address expiring at expires into snap as of now, or
// leaves it out when it has been gone for longer than retention.
func (s *Snapshot) classify(addr string, expires, now time.Time, retention time.Duration) {
	switch {
	case expires.After(now):
		if s.Live == nil {
			s.Live = make(map[string]time.Time)
		}
		s.Live[addr] = expires
	case now.Sub(expires) <= retention:
		if s.Gone == nil {
			s.Gone = make(map[string]time.Time)
		}
		s.Gone[addr] = expires
	}
}
