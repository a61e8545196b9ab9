package redistest

import (
	"os/exec"
	"syscall"
)

// killWithParent has the kernel kill the node if the test binary dies
// without cleaning up (a -timeout panic, a SIGKILL), so no redis-server
// outlives its test run.
func killWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
