package gateway

import (
	"context"
	"sync"

	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/pushrpc"
)

// maxHeldKicks bounds the kicks a connection's LOGIN in flight holds. One is
// the usual case (a newer login of the device, or a sign-out); a Kick past
// the bound is answered as missing, as it was before kicks were held.
const maxHeldKicks = 4

// loginFlight is a connection's LOGIN from the moment the gateway sends it
// to logic until the connection is registered as logged in, or the LOGIN
// failed. Logic records the connection's route during that time, so a Kick
// can name the connection before Kick's lookup could find it: a newer login
// of the same device, in the same LoginBatch or not, or a sign-out. Such a
// kick is held here and applied when the login completes, instead of being
// answered as missing and lost.
//
// Flights live in Gateway.loginFlights, keyed by connection id, and not in
// conn: only the few connections logging in pay for them.
type loginFlight struct {
	// cancel takes a token LOGIN still queued in the batcher out of the
	// queue; a call already out runs on (callLogin). onClose calls it.
	cancel context.CancelFunc

	mu    sync.Mutex
	done  bool       // the connection is registered, or never will be
	kicks []heldKick // arrived before done
}

// heldKick is a Kick target held until its connection's login completes.
type heldKick struct {
	user  int64 // the target's user; the login must make the connection his
	cause closeCause
}

// startLogin records c's LOGIN as in flight, cancel ending its wait, and
// reports whether c is still open. Kick holds the kicks of c from now on.
func (g *Gateway) startLogin(c *conn, cancel context.CancelFunc) (*loginFlight, bool) {
	f := &loginFlight{cancel: cancel}
	g.loginFlights.Store(c.id, f)
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed { // onClose may have looked before the Store
		g.loginFlights.CompareAndDelete(c.id, f)
	}
	return f, !closed
}

// endLogin ends c's flight f and returns the kicks it held. The caller of a
// successful login calls it after registering c, so that a Kick which finds
// the flight ended finds c in the registry.
func (g *Gateway) endLogin(c *conn, f *loginFlight) []heldKick {
	g.loginFlights.CompareAndDelete(c.id, f)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.done = true
	kicks := f.kicks
	f.kicks = nil
	return kicks
}

// applyHeldKicks closes c, just logged in as sess, if one of kicks names
// its user. A kick of another user is dropped: it was meant for another
// life of the connection id, as Kick's lookup would have said.
func (g *Gateway) applyHeldKicks(c *conn, sess *logicrpc.Session, kicks []heldKick) {
	for _, k := range kicks {
		if k.user != sess.UserId {
			continue
		}
		if err := g.kick(c, k.cause); err != nil {
			g.warn.Warn().Err(err).Int64("conn", c.id).Int64("user", sess.UserId).
				Msg("held kick not applied")
		}
		return
	}
}

// hold keeps k for the end of the flight and reports true, unless the
// flight has ended or holds maxHeldKicks already.
func (f *loginFlight) hold(k heldKick) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done || len(f.kicks) >= maxHeldKicks {
		return false
	}
	f.kicks = append(f.kicks, k)
	return true
}

// kickTarget kicks the connection of t with cause, or holds the kick while
// its LOGIN is in flight. It reports false when t is neither open here as
// its user nor logging in.
func (g *Gateway) kickTarget(t *pushrpc.Target, cause closeCause) bool {
	if c := g.target(t); c != nil {
		return g.kick(c, cause) == nil
	}
	v, ok := g.loginFlights.Load(t.ConnId)
	if !ok {
		return false
	}
	if v.(*loginFlight).hold(heldKick{user: t.UserId, cause: cause}) {
		return true
	}
	// Not held: the login ended between the two looks, or the flight is
	// full. endLogin follows the registration, so the connection is
	// registered now if it ever will be.
	c := g.target(t)
	return c != nil && g.kick(c, cause) == nil
}
