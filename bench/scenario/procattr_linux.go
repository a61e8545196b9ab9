package scenario

import "syscall"

// childAttr makes the kernel kill a role when the bench dies, even by
// SIGKILL, so that no server outlives its run. The signal is tied to the
// thread that started the child; Go ends threads only after LockOSThread,
// which the bench does not use.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// openFileLimit returns the open files this process may have, or 0 when
// unknown. The Go runtime raised it to the hard limit at start; the Go
// processes the bench starts (roles, workers) do the same.
func openFileLimit() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	return int(min(lim.Cur, 1<<30))
}
