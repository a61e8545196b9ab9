//go:build !unix

package logic

import (
	"net"
	"sync"

	"github.com/cloudwego/netpoll"
)

// ownedListener is the listener Serve hands to Kitex (see listener_unix.go).
// Off Unix it stays netpoll's own: that file works on Unix descriptors.
type ownedListener struct {
	netpoll.Listener
	once       sync.Once
	err        error
	closed     chan struct{}
	polled     chan struct{}
	polledOnce sync.Once
	// onPolled, when set (by tests), runs in Fd after polled is closed.
	onPolled func()
}

// ownListener converts ln to the listener Serve gives Kitex.
func ownListener(ln net.Listener) (*ownedListener, error) {
	nl, err := netpoll.ConvertListener(ln)
	if err != nil {
		return nil, err
	}
	return &ownedListener{Listener: nl, closed: make(chan struct{}), polled: make(chan struct{})}, nil
}

// Fd returns the descriptor netpoll polls, noting that it was asked for.
func (l *ownedListener) Fd() int {
	l.polledOnce.Do(func() {
		close(l.polled)
		if l.onPolled != nil {
			l.onPolled()
		}
	})
	return l.Listener.Fd()
}

// Close closes the listener the first time; later calls return its error.
func (l *ownedListener) Close() error {
	l.once.Do(func() {
		l.err = l.Listener.Close()
		close(l.closed)
	})
	return l.err
}

// release is Close: off Unix, Close frees the descriptor at once.
func (l *ownedListener) release() error { return l.Close() }
