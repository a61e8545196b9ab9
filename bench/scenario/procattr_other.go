//go:build !linux

package scenario

import "syscall"

// childAttr has no parent-death signal outside Linux: the deferred cleanup
// of Chaos is all that stops the roles.
func childAttr() *syscall.SysProcAttr { return nil }

// openFileLimit is unknown outside Linux: no check is made.
func openFileLimit() int { return 0 }

// bindNoPort does nothing beyond Linux.
func bindNoPort(_, _ string, _ syscall.RawConn) error { return nil }
