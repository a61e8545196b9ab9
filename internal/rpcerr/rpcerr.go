// Package rpcerr reads the errors of Kitex calls between the roles.
package rpcerr

import (
	"errors"

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
