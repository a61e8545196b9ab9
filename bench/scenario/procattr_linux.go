package scenario

import "syscall"

// childAttr makes the kernel kill a role when the bench dies, even by
// SIGKILL, so that no server outlives its run. The signal is tied to the
// thread that started the child; Go ends threads only after LockOSThread,
// which the bench does not use.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
