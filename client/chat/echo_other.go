//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package chat

import "errors"

// echoOff is not done here: the read of the password turns the echo off
// as it starts (term.ReadPassword), after its prompt is printed.
func echoOff(int) (func(), error) {
	return nil, errors.ErrUnsupported
}
