package clienttest

import (
	"io"
	"net"
	"sync"
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

// OtherProtocolAddr returns the address of a server of another protocol:
// it answers every connection as an HTTP server answers bytes it cannot
// parse, then closes it. It stops with the test.
func OtherProtocolAddr(t testing.TB) string {
	t.Helper()
	return serve(t, func(c net.Conn) {
		_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
		_ = c.Close()
	})
}

// SilentAddr returns the address of a server that takes every connection
// and never answers, as a port of another service waiting for its own
// protocol does. Its connections close with the test.
func SilentAddr(t testing.TB) string {
	t.Helper()
	var mu sync.Mutex
	var held []net.Conn
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			_ = c.Close()
		}
	})
	return serve(t, func(c net.Conn) {
		mu.Lock()
		defer mu.Unlock()
		held = append(held, c)
	})
}

// serve listens on a loopback port and hands each connection to handle
// until the test ends.
func serve(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			handle(c)
		}
	}()
	return ln.Addr().String()
}
