//go:build !linux

package redistest

import "os/exec"

// killWithParent does nothing where the kernel has no parent-death signal:
// a test binary that dies without cleaning up leaves its nodes running.
func killWithParent(*exec.Cmd) {}
