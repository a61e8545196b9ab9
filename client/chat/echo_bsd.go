//go:build darwin || freebsd || netbsd || openbsd || dragonfly

package chat

import "golang.org/x/sys/unix"

// The termios requests of echoOff.
const (
	ioctlGetTermios = unix.TIOCGETA
	ioctlSetTermios = unix.TIOCSETA
)
