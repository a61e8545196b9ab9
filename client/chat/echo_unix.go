//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package chat

import "golang.org/x/sys/unix"

// echoOff turns the echo of the terminal fd off and returns what turns it
// back on. A password prompt turns it off before it is printed: turned off
// by the read that follows, as term.ReadPassword does, a password typed
// the moment the prompt shows could be echoed before the read began. The
// line stays canonical, so the read still takes a whole line.
func echoOff(fd int) (restore func(), err error) {
	t, err := unix.IoctlGetTermios(fd, ioctlGetTermios)
	if err != nil {
		return nil, err
	}
	old := *t
	t.Lflag &^= unix.ECHO
	if err := unix.IoctlSetTermios(fd, ioctlSetTermios, t); err != nil {
		return nil, err
	}
	return func() { _ = unix.IoctlSetTermios(fd, ioctlSetTermios, &old) }, nil
}
