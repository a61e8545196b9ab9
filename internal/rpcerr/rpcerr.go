// Package rpcerr reads the errors of Kitex calls between the roles.
package rpcerr

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/cloudwego/kitex/pkg/remote"
)

// UnknownMethod reports whether err says the server has no such method: a
// release older than the method answers with a Thrift application
// exception, of type UnknownMethod when the call came over TTHeader (which
// names the service), or UnknownService when it did not, since the server
// then looks the service up by method name and finds none. A caller that
// meets it during a rolling upgrade falls back to the older calls.
func UnknownMethod(err error) bool {
	var te *remote.TransError
	if !errors.As(err, &te) {
		return false
	}
	return te.TypeID() == remote.UnknownMethod || te.TypeID() == remote.UnknownService
}

// OlderPeer remembers, for a while after each refusal, that a peer refused a
// method as unknown (UnknownMethod): a release older than the method, met
// during a rolling upgrade, which the caller then sends the older calls.
// Once the while is over the method is tried again, so that the peer's
// upgrade at the same address gets it back. The zero value remembers no
// refusal; it is safe for concurrent use.
type OlderPeer struct {
	until atomic.Int64 // Unix nanoseconds; zero: no refusal remembered
}

// Active reports whether a refusal is remembered now. It reads the clock
// only while one is, so that the usual answer costs one atomic load per
// request.
func (o *OlderPeer) Active() bool {
	until := o.until.Load()
	if until == 0 {
		return false
	}
	if time.Now().UnixNano() < until {
		return true
	}
	o.until.CompareAndSwap(until, 0)
	return false
}

// Refused remembers a refusal for recheck from now and reports whether it
// is the first since none was remembered, however many callers meet it at
// once: the one to log.
func (o *OlderPeer) Refused(recheck time.Duration) (first bool) {
	now := time.Now()
	return o.until.Swap(now.Add(recheck).UnixNano()) < now.UnixNano()
}
