//go:build !unix

package dirlock

import "os"

// tryLock takes no lock.
// TODO: lock with LockFileEx on Windows; until then two processes there can
// share a data dir unwarned.
func tryLock(*os.File) (held bool, err error) { return false, nil }
