//go:build unix

package logic

import (
	"sync"
	"syscall"
	"testing"
)

// Closing the listener Serve owns closes its descriptor once. netpoll's
// own listener closes the same number twice (syscall.Close, then its
// os.File), and whatever another goroutine opened in between took that
// number and lost it to the second close: a Stop racing Serve's start
// closed the epoll descriptor netpoll was creating for its first loop, or
// a file or socket of another part of the process. Here a goroutine opens
// and checks /dev/null descriptors while listeners close; one closed under
// it, or replaced by another file, is such a loss.
func TestOwnedListener_CloseClosesDescriptorOnce(t *testing.T) {
	var devNull syscall.Stat_t
	if err := syscall.Stat("/dev/null", &devNull); err != nil {
		t.Skipf("no /dev/null: %v", err)
	}
	stop := make(chan struct{})
	lost := make(chan int, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			fd, err := syscall.Open("/dev/null", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
			if err != nil {
				continue // out of descriptors for a moment
			}
			var st syscall.Stat_t
			if err := syscall.Fstat(fd, &st); err != nil || st.Rdev != devNull.Rdev {
				lost <- fd // not ours any more: leave the number alone
				return
			}
			_ = syscall.Close(fd)
		}
	})
	for range 20000 {
		owned := ownedLocal(t)
		_ = owned.Close()
		_ = owned.release()
		if len(lost) > 0 {
			break
		}
	}
	close(stop)
	wg.Wait()
	select {
	case fd := <-lost:
		t.Fatalf("closing owned listeners closed descriptor %d, opened meanwhile", fd)
	default:
	}
}

// ownedLocal is listenLocal's listener as Serve owns it (ownListener).
func ownedLocal(t testing.TB) *ownedListener {
	t.Helper()
	owned, err := ownListener(listenLocal(t))
	if err != nil {
		t.Fatal(err)
	}
	return owned
}
