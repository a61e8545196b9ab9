//go:build unix && !linux

package logic

import "syscall"

// dupOnto makes newfd a close-on-exec duplicate of oldfd, closing what
// newfd was in the same step. Without dup3, the flag is set under
// ForkLock, so that no child forked in between inherits newfd.
func dupOnto(oldfd, newfd int) error {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	if err := syscall.Dup2(oldfd, newfd); err != nil {
		return err
	}
	syscall.CloseOnExec(newfd)
	return nil
}
