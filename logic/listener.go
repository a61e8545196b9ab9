package logic

import (
	"net"
	"sync"

	"github.com/cloudwego/netpoll"
)

// ownedListener is the listener Serve hands to Kitex, so that Serve can
// close it after Run returns. Kitex cannot always: its Stop runs once, and
// a Stop that comes before Run has built the transport, or before the
// transport's goroutine has taken the listener, shuts nothing down; Run
// then serves the port on after it returns. The netpoll form is what
// Kitex's transport uses as is (any other it converts to a duplicate file
// descriptor, which closing ln would leave open). Close runs once, as the
// transport may have closed it already and a second close of the same
// descriptor number could close another socket's.
//
// polled is closed when the transport's event loop first asks for the
// descriptor, to register it: from then on Kitex's Stop shuts that loop
// down (see Service.awaitTransport). A Stop can still close the descriptor
// between that and the registration, which then fails (EBADF, or EEXIST
// when the number was already reused for a registered socket) and ends the
// loop with that error (see Serve).
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
