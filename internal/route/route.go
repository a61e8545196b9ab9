// Package route owns the route table: where each logged-in device of a user is
// connected (which gateway, which connection). Logic writes it on login,
// renewal and disconnect; task reads it to find where to push. Two stores
// implement Table: Memory for the single-process mode and Redis for a cluster.
package route

import (
	"context"
	"errors"
	"time"
)

// DefaultTTL is how long a route lives without renewal when a store is built
// with a zero TTL. Gateways renew well within it; a dead gateway's routes
// vanish after it.
const DefaultTTL = 90 * time.Second

// ErrNotOwner is returned by Delete when the route of the device now belongs
// to another connection (a newer login), which must not be removed.
var ErrNotOwner = errors.New("route: connection does not own the route")

// Route is one live device connection of a user.
type Route struct {
	UserID   int64
	DeviceID string
	Gateway  string // push address of the gateway holding the connection
	ConnID   int64  // unique within the gateway's lifetime
}

// Table stores routes. All methods are safe for concurrent use.
type Table interface {
	// Put records r, replacing any route of the same user and device, and
	// returns the route it replaced, if any (so the caller may kick it).
	Put(ctx context.Context, r Route) (replaced *Route, err error)
	// Delete removes the route of r's user and device if it still points at
	// r's gateway and connection; otherwise it returns ErrNotOwner.
	Delete(ctx context.Context, r Route) error
	// Renew extends the lifetime of routes that still point at the given
	// connections and writes back those that are missing, so that routes a
	// Redis restart or failover lost come back within one renewal interval
	// instead of leaving live connections unreachable until they reconnect.
	// Routes owned by other connections are left alone. A renewal racing
	// the Delete of a connection that just closed can write its route back;
	// it then points at a connection the gateway no longer has and lapses
	// after the TTL.
	Renew(ctx context.Context, rs []Route) error
	// Lookup returns the live routes of the given users, in no order.
	Lookup(ctx context.Context, userIDs []int64) ([]Route, error)
}
