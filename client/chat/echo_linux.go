package chat

import "golang.org/x/sys/unix"

// The termios requests of echoOff.
const (
	ioctlGetTermios = unix.TCGETS
	ioctlSetTermios = unix.TCSETS
)
