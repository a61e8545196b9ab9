package logic

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cloudwego/netpoll"
	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/internal/testwait"
)

// stopOnServing is a log writer that starts stop when Serve logs that it
// serves, after Serve has created the Kitex server and before Run has built
// the transport that a Kitex Stop would shut down, and holds Serve there
// until sent says Stop has sent the exit signal, or Stop logs that it waits
// for the transport to start. When set, stopped runs as Serve logs that Run
// returned, before Serve closes the listener.
type stopOnServing struct {
	stop    func()
	sent    func() bool
	stopped func()
	waiting atomic.Bool // Stop waits for the transport
}

func (w *stopOnServing) Write(p []byte) (int, error) {
	switch {
	case bytes.Contains(p, []byte("stop waits for the transport")):
		w.waiting.Store(true)
	case bytes.Contains(p, []byte("logic server stopped")) && w.stopped != nil:
		w.stopped()
	case bytes.Contains(p, []byte("logic serving")) && w.stop != nil:
		go w.stop()
		for deadline := time.Now().Add(5 * time.Second); !w.sent() && !w.waiting.Load(); {
			if time.Now().After(deadline) {
				break // Stop never got that far; the test fails below
			}
			time.Sleep(time.Millisecond)
		}
	}
	return len(p), nil
}

// A Stop that comes between Serve creating the Kitex server and Run
// starting it still closes the listener: Kitex's Stop, run once only, finds
// nothing to shut down then, and Run would serve on after Serve returned.
func TestService_StopAsServeStartsClosesListener(t *testing.T) {
	w := &stopOnServing{}
	e := newEnvWith(t, sqliteConfig(t), func(d *Deps) {
		d.Log = zerolog.New(w).Level(zerolog.DebugLevel)
	})
	stopped := make(chan error, 1)
	w.stop = func() { stopped <- e.svc.Stop() }
	// Read on Serve's goroutine, which set exit.
	w.sent = func() bool { return len(e.svc.exit) == 1 }

	ln := listenLocal(t)
	addr := ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- e.svc.Serve(ln) }()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve still running 10 s after Stop")
	}
	if err := <-stopped; err != nil {
		t.Fatalf("stop: %v", err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		_ = c.Close()
		t.Fatalf("%s still accepts connections after Stop and Serve returned", addr)
	}
}

// eventLoops counts the goroutines of netpoll event loops: in Serve, which
// returns only when the loop ends, or, with polling, in its wait for the
// end, which Serve enters once it has registered its listener.
func eventLoops(polling bool) int {
	frame := []byte("netpoll.(*eventLoop).Serve(")
	if polling {
		frame = []byte("netpoll.(*eventLoop).waitQuit(")
	}
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	return bytes.Count(buf, frame)
}

// The same race leaves no netpoll event loop behind. Kitex's Stop, run
// once, found no transport to shut down, and the loop that Run started next
// waited for ever on the listener Serve closed: epoll drops a closed
// descriptor without an event. Stop now waits for the transport to take the
// listener before it stops Kitex; when it had not (the old order), Serve
// here is held until the loop polls, so that the close finds it waiting.
func TestService_StopAsServeStartsEndsEventLoop(t *testing.T) {
	before, polling := eventLoops(false), eventLoops(true)
	w := &stopOnServing{}
	e := newEnvWith(t, sqliteConfig(t), func(d *Deps) {
		d.Log = zerolog.New(w).Level(zerolog.DebugLevel)
	})
	stopped := make(chan error, 1)
	w.stop = func() { stopped <- e.svc.Stop() }
	w.sent = func() bool { return len(e.svc.exit) == 1 }
	w.stopped = func() {
		if w.waiting.Load() {
			return
		}
		testwait.For(t, 5*time.Second, "the transport's event loop polling the listener",
			func() bool { return eventLoops(true) > polling })
	}

	ln := listenLocal(t)
	if err := e.svc.Serve(ln); err != nil {
		t.Fatalf("serve: %v", err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("stop: %v", err)
	}
	testwait.For(t, 5*time.Second, "the transport's event loop ended after Serve returned",
		func() bool { return eventLoops(false) == before })
}

// A Stop that closes the listener after the transport has asked for its
// descriptor, but before it has registered it with epoll, ends Run with
// an error (EBADF, or EPERM now that the closed number holds /dev/null).
// Serve still returns nil, as after any Stop: the error is the Stop's, not
// a failure to serve.
func TestService_StopAsTransportRegistersServesNil(t *testing.T) {
	e := newEnvWith(t, sqliteConfig(t), func(*Deps) {})
	stopped := make(chan error, 1)
	e.svc.onPolled = func() {
		go func() { stopped <- e.svc.Stop() }()
		// Run's goroutine, after Serve set owned.
		select {
		case <-e.svc.owned.closed:
		case <-time.After(5 * time.Second): // Stop never closed it; Serve fails below
		}
	}

	ln := listenLocal(t)
	if err := e.svc.Serve(ln); err != nil {
		t.Fatalf("serve: %v", err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// dialOnto dials addr with netpoll, whose connection should take descriptor
// number n, free now: it fills the free numbers below n first. It returns
// nil when n was not free or the connection got another number, and the
// placeholders to close once the connection no longer needs n's place.
func dialOnto(t *testing.T, n int, addr string) (netpoll.Connection, []int) {
	t.Helper()
	var held []int
	for {
		fd, err := syscall.Open("/dev/null", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			t.Errorf("open a placeholder: %v", err)
			return nil, held
		}
		if fd == n {
			_ = syscall.Close(fd)
			break
		}
		held = append(held, fd)
		if fd > n {
			return nil, held // n is taken
		}
	}
	conn, err := netpoll.DialConnection("tcp", addr, 5*time.Second)
	if err != nil {
		t.Errorf("dial %s: %v", addr, err)
		return nil, held
	}
	if conn.(netpoll.Conn).Fd() != n {
		_ = conn.Close()
		return nil, held
	}
	return conn, held
}

// The same Stop must not free the listener's descriptor number while the
// transport may still register it. A netpoll connection of another part of
// the process that took the number then made the registration fail
// (EEXIST), and the transport's shutdown detached the number from the
// poll: the connection's registration, which it never read through again.
func TestService_StopAsTransportRegistersLeavesOthersConnections(t *testing.T) {
	peerLn := listenLocal(t)
	defer peerLn.Close()
	// netpoll's poller starts now, not on the number the dial is to take.
	warm, err := netpoll.DialConnection("tcp", peerLn.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = warm.Close()
	if c, err := peerLn.Accept(); err == nil {
		_ = c.Close()
	}

	e := newEnvWith(t, sqliteConfig(t), func(*Deps) {})
	stopped := make(chan error, 1)
	var conn netpoll.Connection
	var held []int
	defer func() {
		for _, fd := range held {
			_ = syscall.Close(fd)
		}
	}()
	e.svc.onPolled = func() {
		go func() { stopped <- e.svc.Stop() }()
		select {
		case <-e.svc.owned.closed:
		case <-time.After(5 * time.Second): // Stop never closed it; Serve fails below
			return
		}
		conn, held = dialOnto(t, e.svc.owned.fd, peerLn.Addr().String())
	}

	ln := listenLocal(t)
	if err := e.svc.Serve(ln); err != nil {
		t.Fatalf("serve: %v", err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("stop: %v", err)
	}
	if conn == nil {
		return // the number stayed taken until Serve returned
	}
	defer conn.Close()
	peer, err := peerLn.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if _, err := peer.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if err := conn.SetReadTimeout(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Reader().Next(4); err != nil {
		t.Fatalf("connection on the listener's old number %d, after Stop: read: %v",
			e.svc.owned.fd, err)
	}
}

// Serve takes an error from Run after a Stop began as the Stop's only when
// it is one the Stop's closing of the listener causes; any other is still a
// failure to serve.
func TestEndedByStop(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{syscall.EBADF, true},
		{syscall.EPERM, true},
		{fmt.Errorf("register listener: %w", syscall.EEXIST), true},
		{fmt.Errorf("accept: %w", net.ErrClosed), true},
		{syscall.ENOMEM, false},
		{errors.New("bad file descriptor"), false}, // text alone proves nothing
		{fmt.Errorf("register service: %w", ErrUnavailable), false},
	} {
		if got := endedByStop(tc.err); got != tc.want {
			t.Errorf("endedByStop(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
