package client

import (
	"context"
	"errors"
	"net"
)

// Tracks reports whether the Session keeps a state for convID: one of its
// messages was offered, or a listing named it. Tests wait on it to order a
// push before a listing.
func (s *Session) Tracks(convID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq.convs[convID] != nil
}

// AfterFailedAttempt makes the Session opened with cfg call f on its
// connection goroutine each time a reconnect attempt fails, before it looks
// for Close.
func AfterFailedAttempt(cfg *SessionConfig, f func(*Session)) {
	cfg.hooks.afterFailedAttempt = f
}

// Closing is closed once Close has begun: the session's context is
// cancelled.
func (s *Session) Closing() <-chan struct{} { return s.ctx.Done() }

// BeforeHandOverWait makes the Session opened with cfg call f when a final
// DELIVERED starts waiting for the delivery goroutine to stop.
func BeforeHandOverWait(cfg *SessionConfig, f func(*Session)) {
	cfg.hooks.beforeHandOverWait = f
}

// AfterWatch makes the Session opened with cfg call f each time a
// connection's watch goroutine has sent the presence watch set, or passed
// over sending it.
func AfterWatch(cfg *SessionConfig, f func(*Session)) {
	cfg.hooks.afterWatch = f
}

// AfterLogoutBegins makes the Session opened with cfg call f in Logout once
// the session is marked as logging out, before Logout ends it.
func AfterLogoutBegins(cfg *SessionConfig, f func(*Session)) {
	cfg.hooks.logoutBegun = f
}

// errNoNetworkDNS is what a lookup through LocalOnlyResolver meets when it
// would ask a name server.
var errNoNetworkDNS = errors.New("test: no name server")

// WithLocalOnlyResolver returns opts with a resolver that never leaves the
// machine: it reads the hosts file and fails where it would ask a name
// server.
func WithLocalOnlyResolver(opts Options) Options {
	opts.resolver = &net.Resolver{
		PreferGo: true,
		Dial: func(context.Context, string, string) (net.Conn, error) {
			return nil, errNoNetworkDNS
		},
	}
	return opts
}

// LacksOp reports whether the Session takes err, a request's error, as the
// server lacking the request's op.
func LacksOp(err error) bool { return lacksOp(err) }
