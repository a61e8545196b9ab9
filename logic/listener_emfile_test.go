//go:build unix

package logic

import (
	"errors"
	"net"
	"syscall"
	"testing"
)

// exhaustDescriptors lowers the process's descriptor limit to a little
// above what is open and fills the rest with /dev/null, so that the next
// accept fails with EMFILE. It returns a func that frees them and restores
// the limit. Tests that use it must not run in parallel with others.
func exhaustDescriptors(t *testing.T) (restore func()) {
	t.Helper()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Skipf("getrlimit: %v", err)
	}
	probe, err := syscall.Open("/dev/null", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no /dev/null: %v", err)
	}
	_ = syscall.Close(probe)
	low := old
	low.Cur = uint64(probe) + 64
	if low.Cur > old.Cur {
		t.Skipf("descriptor limit %d too low to lower", old.Cur)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Skipf("setrlimit: %v", err)
	}
	var fds []int
	restore = func() {
		for _, fd := range fds {
			_ = syscall.Close(fd)
		}
		fds = nil
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old)
	}
	for {
		fd, err := syscall.Open("/dev/null", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if errors.Is(err, syscall.EMFILE) {
			return restore
		}
		if err != nil {
			restore()
			t.Fatalf("filling descriptors: %v", err)
		}
		fds = append(fds, fd)
	}
}

// acceptOutOfDescriptors dials owned and has it accept while the process
// is out of descriptors: the EMFILE on which netpoll's server detaches the
// listener and retries Accept from a goroutine of its own, which Kitex's
// Stop does not end.
func acceptOutOfDescriptors(t *testing.T, owned *ownedListener) (restore func()) {
	t.Helper()
	c, err := net.Dial("tcp", owned.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	restore = exhaustDescriptors(t)
	conn, err := owned.Accept()
	if !errors.Is(err, syscall.EMFILE) {
		restore()
		t.Fatalf("accept out of descriptors: conn %v, err %v; want EMFILE", conn, err)
	}
	return restore
}

// netpoll's server, when Accept fails with EMFILE, retries it from a
// goroutine that only a nil connection and nil error end, and that Kitex's
// Stop leaves running. Accept after Close must not accept on the
// descriptor's number, which after release another part of the process
// may hold: that goroutine would take its connections.
func TestOwnedListener_AcceptAfterReleaseTakesNothing(t *testing.T) {
	owned := ownedLocal(t)
	restore := acceptOutOfDescriptors(t, owned)
	restore()
	_ = owned.Close()
	_ = owned.release()

	// Another listener of the process takes the number, if it is free.
	other := listenLocal(t)
	defer other.Close()
	if _, err := fcntlGetfd(owned.fd); errors.Is(err, syscall.EBADF) {
		f, err := other.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := syscall.Dup2(int(f.Fd()), owned.fd); err != nil {
			t.Fatal(err)
		}
		defer syscall.Close(owned.fd)
		if err := syscall.SetNonblock(owned.fd, true); err != nil {
			t.Fatal(err)
		}
	}
	c, err := net.Dial("tcp", other.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// Dial has returned: the connection waits in other's backlog.
	conn, err := owned.Accept()
	if conn != nil {
		t.Fatalf("Accept after release took a connection (%v) of the listener "+
			"now on its old number %d", conn.RemoteAddr(), owned.fd)
	}
	if err != nil {
		t.Fatalf("Accept after release: %v; netpoll's retry goroutine ends only "+
			"on a nil connection and error", err)
	}
}

func fcntlGetfd(fd int) (int, error) {
	r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFD, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

// Close keeps the descriptor's number taken until release even when the
// process is out of descriptors, as it is when netpoll's accept retry runs
// (see ownedListener): a number freed before Run returns is the one another
// part of the process's connection could take and lose to the transport's
// detach, or the retry register with its poller.
func TestOwnedListener_CloseOutOfDescriptorsKeepsNumber(t *testing.T) {
	owned := ownedLocal(t)
	defer owned.release()
	restore := exhaustDescriptors(t)
	closeErr := owned.Close()
	_, taken := fcntlGetfd(owned.fd)
	restore()
	if closeErr != nil {
		t.Errorf("close out of descriptors: %v", closeErr)
	}
	if taken != nil {
		t.Fatalf("close out of descriptors freed number %d before release: %v",
			owned.fd, taken)
	}
}
