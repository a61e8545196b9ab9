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

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT (Linux 4.2), absent from
// package syscall.
const ipBindAddressNoPort = 24

// bindNoPort lets a socket bound to a source address take its port at
// connect time, by the whole address pair. A plain bind to port 0 must find
// a port no other socket of that address uses, TIME_WAIT ones included: a
// re-login of 15,000 connections from few addresses spent the client's CPU
// in the kernel's port search (850 logins/s at 168% client CPU).
func bindNoPort(_, _ string, c syscall.RawConn) error {
	var err error
	cerr := c.Control(func(fd uintptr) {
		err = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
	})
	return cmpOrErr(cerr, err)
}
