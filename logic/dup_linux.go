package logic

import "syscall"

// dupOnto makes newfd a close-on-exec duplicate of oldfd, closing what
// newfd was in the same step.
func dupOnto(oldfd, newfd int) error {
	return syscall.Dup3(oldfd, newfd, syscall.O_CLOEXEC)
}
