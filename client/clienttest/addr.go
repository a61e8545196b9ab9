package clienttest

import (
	"net"
	"testing"
)

// ClosedAddr returns a loopback address with nothing listening on it: a
// port the OS handed out, closed again.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
