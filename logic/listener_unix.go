//go:build unix

package logic

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ownedListener is the listener Serve hands to Kitex, so that Serve can
// close it after Run returns. Kitex cannot always: its Stop runs once, and
// a Stop that comes before Run has built the transport, or before the
// transport's goroutine has taken the listener, shuts nothing down; Run
// then serves the port on after it returns. It is a netpoll.Listener,
// which Kitex's transport uses as is (any other it converts to a duplicate
// file descriptor, which closing ln would leave open). Close runs once, as
// the transport may have closed it already and a second close of the same
// descriptor number could close another socket's.
//
// It is not netpoll's own (netpoll.ConvertListener), whose Close closes
// its descriptor twice, by number and then through its os.File: a file or
// socket opened in between by another goroutine got the number and lost
// it. A Stop racing Serve's start can hit that window with the epoll
// descriptor netpoll creates, lazily, for its first event loop.
//
// polled is closed when the transport's event loop first asks for the
// descriptor, to register it: from then on Kitex's Stop shuts that loop
// down (see Service.awaitTransport). A Stop can still close the listener
// between that and the registration, which then fails and ends the loop
// with that error (see Serve). So Close leaves the descriptor's number
// taken, by /dev/null, until release, which Serve calls once Run has
// returned: were the number free, a connection of another part of the
// process could take it, fail that registration with EEXIST, and have its
// own registration removed from netpoll's poller by the shutdown's detach
// of the number, never to read again.
//
// When Accept runs out of descriptors (EMFILE, ENFILE), netpoll's server
// detaches the listener and retries Accept from a goroutine of its own,
// which Kitex's Stop does not end: only a nil connection and error do,
// after which it registers the number with its poller again. So Accept
// after Close accepts nothing and returns nil, nil, and a listener that has
// run out keeps /dev/null on the number for good: that registration then
// fails, where on a freed number it could poll another part of the
// process's socket, and the goroutine's Accept could take the connections
// of a listener that got the number. (The os.File's finalizer frees it once
// nothing, that goroutine included, holds the listener.)
type ownedListener struct {
	ln net.Listener
	// file is a duplicate of ln's socket, non-blocking, which netpoll
	// polls and accepts on; closing it and ln closes the socket.
	file *os.File
	fd   int
	// null is /dev/null, which Close puts on fd's number.
	null        int
	once        sync.Once
	err         error
	releaseOnce sync.Once
	releaseErr  error
	// numberMu is held by Accept around its use of fd, and by Close and
	// release around freeing the number, so Accept never accepts on a
	// freed number.
	numberMu sync.RWMutex
	// outOfFds is set once Accept has failed for want of descriptors.
	outOfFds   atomic.Bool
	closed     chan struct{}
	polled     chan struct{}
	polledOnce sync.Once
	// onPolled, when set (by tests), runs in Fd after polled is closed.
	onPolled func()
}

// ownListener converts ln, a TCP or Unix listener, to the listener Serve
// gives Kitex. On error ln is left open.
func ownListener(ln net.Listener) (*ownedListener, error) {
	var file *os.File
	var err error
	switch l := ln.(type) {
	case *net.TCPListener:
		file, err = l.File()
	case *net.UnixListener:
		file, err = l.File()
	default:
		return nil, fmt.Errorf("listener %T: want TCP or Unix", ln)
	}
	if err != nil {
		return nil, err
	}
	fd := int(file.Fd()) // leaves it blocking, which the next line undoes
	if err := syscall.SetNonblock(fd, true); err != nil {
		_ = file.Close()
		return nil, err
	}
	// Opened now, not in Close: a Close while the process is out of
	// descriptors, as when netpoll retries Accept, could not open it then.
	null, err := syscall.Open("/dev/null", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		_ = file.Close()
		return nil, fmt.Errorf("open /dev/null for listener %s: %w", ln.Addr(), err)
	}
	return &ownedListener{ln: ln, file: file, fd: fd, null: null,
		closed: make(chan struct{}), polled: make(chan struct{})}, nil
}

// Fd returns the descriptor netpoll polls, noting that it was asked for.
func (l *ownedListener) Fd() int {
	l.polledOnce.Do(func() {
		close(l.polled)
		if l.onPolled != nil {
			l.onPolled()
		}
	})
	return l.fd
}

// Accept accepts a connection as netpoll's event loop wants it: nil and no
// error when none is waiting, and a non-blocking descriptor that the
// connection netpoll builds on it owns.
func (l *ownedListener) Accept() (net.Conn, error) {
	fd, sa, err := l.accept()
	if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
		l.outOfFds.Store(true)
	}
	if fd < 0 && err == nil {
		return nil, nil // closed
	}
	if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) ||
		errors.Is(err, syscall.ECONNABORTED) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		_ = syscall.Close(fd)
		return nil, err
	}
	conn := &acceptedConn{fd: fd, local: l.ln.Addr()}
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		conn.remote = &net.TCPAddr{IP: append(net.IP(nil), sa.Addr[:]...), Port: sa.Port}
	case *syscall.SockaddrInet6:
		conn.remote = &net.TCPAddr{IP: append(net.IP(nil), sa.Addr[:]...), Port: sa.Port}
	case *syscall.SockaddrUnix:
		conn.remote = &net.UnixAddr{Net: "unix", Name: sa.Name}
	}
	if conn.remote != nil && conn.remote.Network() == "tcp" {
		// netpoll sets it only on the connections its own listener accepts.
		_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	}
	return conn, nil
}

// accept accepts on fd unless the listener is closed, when it returns -1
// and no error.
func (l *ownedListener) accept() (int, syscall.Sockaddr, error) {
	l.numberMu.RLock()
	defer l.numberMu.RUnlock()
	select {
	case <-l.closed:
		return -1, nil, nil
	default:
	}
	// Under ForkLock, as the net package does where accept4 is missing:
	// a child forked before CloseOnExec would inherit the descriptor.
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fd, sa, err := syscall.Accept(l.fd)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	return fd, sa, err
}

// Addr returns ln's address.
func (l *ownedListener) Addr() net.Addr { return l.ln.Addr() }

// Close closes the listener the first time; later calls return its error.
// The socket closes, but its descriptor's number stays taken until release.
func (l *ownedListener) Close() error {
	l.once.Do(func() {
		// Under numberMu: vacate may free the number.
		l.numberMu.Lock()
		defer l.numberMu.Unlock()
		l.err = errors.Join(l.vacate(), l.ln.Close())
		close(l.closed)
	})
	return l.err
}

// vacate closes the duplicate of the socket by putting /dev/null in its
// place (dupOnto does both at once), or, failing that, closes it outright.
func (l *ownedListener) vacate() error {
	err := dupOnto(l.null, l.fd)
	_ = syscall.Close(l.null)
	if err != nil {
		return l.closeFile()
	}
	return nil
}

// release closes the listener if Close has not, and frees the descriptor
// number Close left taken, unless Accept ever ran out of descriptors (see
// ownedListener). Call it once the transport can no longer register or
// detach the number: after Run has returned.
func (l *ownedListener) release() error {
	err := l.Close()
	if l.outOfFds.Load() {
		return err // netpoll's accept retry may still register the number
	}
	l.numberMu.Lock()
	defer l.numberMu.Unlock()
	return errors.Join(err, l.closeFile())
}

// closeFile closes the duplicate's os.File, and with it the descriptor
// number, the first time; later calls return its error.
func (l *ownedListener) closeFile() error {
	l.releaseOnce.Do(func() { l.releaseErr = l.file.Close() })
	return l.releaseErr
}

// errAcceptedConn is what acceptedConn's I/O methods return: netpoll reads
// and writes the descriptor itself.
var errAcceptedConn = errors.New("logic: accepted descriptor is netpoll's to use")

// acceptedConn is a connection ownedListener accepted, as netpoll takes it:
// netpoll reads its descriptor and addresses and does the rest on the
// descriptor itself. It does not learn the network, which only its
// SetKeepAlive needs (a no-op then); Kitex's server does not call it.
type acceptedConn struct {
	fd            int
	local, remote net.Addr
}

func (c *acceptedConn) Fd() int                          { return c.fd }
func (c *acceptedConn) LocalAddr() net.Addr              { return c.local }
func (c *acceptedConn) RemoteAddr() net.Addr             { return c.remote }
func (c *acceptedConn) Read([]byte) (int, error)         { return 0, errAcceptedConn }
func (c *acceptedConn) Write([]byte) (int, error)        { return 0, errAcceptedConn }
func (c *acceptedConn) Close() error                     { return errAcceptedConn }
func (c *acceptedConn) SetDeadline(time.Time) error      { return errAcceptedConn }
func (c *acceptedConn) SetReadDeadline(time.Time) error  { return errAcceptedConn }
func (c *acceptedConn) SetWriteDeadline(time.Time) error { return errAcceptedConn }
