// Package dirlock keeps a second process off a directory that one process
// owns, such as the data dir of embedded NATS, SQLite and the token key: two
// processes on one dir would share the database but not the rest, and each
// would lose the other's messages without a word.
//
// Acquire takes an exclusive flock(2) on a lock file in the directory. The
// kernel drops the lock with the last descriptor of the file, so however the
// process ends, kill -9 included, no stale lock is left to clear by hand.
package dirlock

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// FileName is the lock file Acquire creates in the directory. It stays
// after Release: removing it would let a process that opened it just before
// lock a file no one else can find.
const FileName = "resonance.lock"

// ErrLocked means another process holds the directory's lock.
var ErrLocked = errors.New("dirlock: directory in use by another process")

// Lock is a held directory lock.
type Lock struct {
	f *os.File
}

// Acquire locks dir, which must exist, or fails at once with ErrLocked
// naming the directory and, when it recorded one, the pid of the holder.
// The lock is held until Release or the end of the process.
func Acquire(dir string) (*Lock, error) {
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("dirlock: open %s: %w", path, err)
	}
	held, err := tryLock(f)
	if err != nil || held {
		defer f.Close()
		if err != nil {
			return nil, fmt.Errorf("dirlock: lock %s: %w", path, err)
		}
		if pid := holder(f); pid != "" {
			return nil, fmt.Errorf("%w: %s is locked by pid %s", ErrLocked, dir, pid)
		}
		return nil, fmt.Errorf("%w: %s is locked", ErrLocked, dir)
	}
	// The pid is for the error of the next process to try; the lock does
	// not depend on it.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

// Release gives the lock up. It is idempotent.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the only descriptor drops the lock
	l.f = nil
	return err
}

// holder returns the pid the holder of f's lock recorded, or "" when it has
// not (yet) written one.
func holder(f *os.File) string {
	raw, err := io.ReadAll(io.NewSectionReader(f, 0, 32))
	if err != nil {
		return ""
	}
	pid := strings.TrimSpace(string(raw))
	if _, err := strconv.Atoi(pid); err != nil {
		return ""
	}
	return pid
}
