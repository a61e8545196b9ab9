package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// A backup copies what an embedded deployment keeps in its data dir while
// the server runs, into a new directory laid out as a data dir, so that
// `--data-dir BACKUP` starts a server on it as it is:
//
//   - resonance.db: a snapshot of the SQLite store by VACUUM INTO, which
//     reads one transaction's view, so it is consistent whatever the
//     writer does meanwhile, and compacts it;
//   - token.key: the secret that signs access tokens, so that devices stay
//     signed in after a restore;
//   - files: the bytes of uploaded files, copied after the snapshot, so
//     that every file the snapshot names as complete is there (they never
//     change once complete). An upload in progress is copied as far as it
//     went; its client sends the rest again, and a hash check refuses
//     anything else;
//   - restore.pending: the mark that has the first server started on the
//     copy move every conversation's seqs past those of the messages sent
//     after the snapshot, which devices may hold (restore.go).
//
// The embedded NATS store (nats) is left out: it holds delivery work, not
// messages. Events the snapshot's outbox still holds are published again
// by the restored server's relay; the rest were pushed already, and a
// device that missed one catches up from the store when it connects.

// Backup names the inputs of a backup.
type Backup struct {
	// DataDir is the server's data dir.
	DataDir string
	// DBPath is the SQLite file; default DataDir/resonance.db, as the
	// server's.
	DBPath string
	// FileDir is the directory of uploaded files' bytes; default files
	// beside DBPath, as the server's.
	FileDir string
	// To is the directory to create; it must not exist, or be empty.
	To string
}

// BackupReport says what a backup copied.
type BackupReport struct {
	DBBytes   int64
	Users     int64
	Messages  int64
	Files     int
	FileBytes int64
	TokenKey  bool // false when the data dir had none (a --token-secret server)
}

// ErrBackup marks a backup that could not be made; nothing of it is left.
var ErrBackup = errors.New("backup")

// Run makes the backup. On failure it removes what it wrote of To.
func (b Backup) Run(ctx context.Context) (BackupReport, error) {
	b = b.withDefaults()
	if err := b.check(); err != nil {
		return BackupReport{}, fmt.Errorf("%w: %w", ErrBackup, err)
	}
	created, err := makeEmptyDir(b.To)
	if err != nil {
		return BackupReport{}, fmt.Errorf("%w: %w", ErrBackup, err)
	}
	rep, err := b.copyAll(ctx)
	if err != nil {
		if created {
			_ = os.RemoveAll(b.To)
		} else {
			clearDir(b.To)
		}
		return BackupReport{}, fmt.Errorf("%w: %w", ErrBackup, err)
	}
	return rep, nil
}

func (b Backup) withDefaults() Backup {
	if b.DBPath == "" {
		b.DBPath = filepath.Join(b.DataDir, "resonance.db")
	}
	if b.FileDir == "" {
		b.FileDir = filepath.Join(filepath.Dir(b.DBPath), "files")
	}
	return b
}

// check refuses a source that is no store and a target inside the source,
// which the copy of files would walk into.
func (b Backup) check() error {
	if b.To == "" {
		return errors.New("no target directory given")
	}
	if _, err := os.Stat(b.DBPath); err != nil {
		return fmt.Errorf("no SQLite store at %s (a server on MySQL is backed up with the "+
			"database's own tools and its --file-dir): %w", b.DBPath, err)
	}
	// Where links lead: a target reached through one is written there.
	to, err := realPath(b.To)
	if err != nil {
		return err
	}
	for _, src := range []string{b.DataDir, b.FileDir} {
		abs, err := realPath(src)
		if err != nil {
			return err
		}
		if to == abs || strings.HasPrefix(to, abs+string(filepath.Separator)) {
			return fmt.Errorf("target %s is inside %s", b.To, src)
		}
	}
	return nil
}

// realPath is path made absolute with the symlinks of its longest existing
// ancestor (itself included) resolved; the rest, not created yet, is
// joined on as given.
func realPath(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	rest := ""
	for dir := abs; ; dir = filepath.Dir(dir) {
		real, err := filepath.EvalSymlinks(dir)
		if err == nil {
			return filepath.Join(real, rest), nil
		}
		if !errors.Is(err, fs.ErrNotExist) || dir == filepath.Dir(dir) {
			return "", err
		}
		rest = filepath.Join(filepath.Base(dir), rest)
	}
}

func (b Backup) copyAll(ctx context.Context) (BackupReport, error) {
	var rep BackupReport
	var err error
	dbOut := filepath.Join(b.To, "resonance.db")
	if err = snapshotSQLite(ctx, b.DBPath, dbOut); err != nil {
		return rep, err
	}
	if rep.Users, rep.Messages, err = checkSnapshot(ctx, dbOut); err != nil {
		return rep, err
	}
	if info, err := os.Stat(dbOut); err == nil {
		rep.DBBytes = info.Size()
	}
	if err = writeRestoreMark(b.To); err != nil {
		return rep, err
	}
	key := filepath.Join(b.DataDir, "token.key")
	switch err := copyFile(key, filepath.Join(b.To, "token.key"), 0o600); {
	case err == nil:
		rep.TokenKey = true
	case !errors.Is(err, fs.ErrNotExist):
		return rep, err
	}
	rep.Files, rep.FileBytes, err = copyTree(ctx, b.FileDir, filepath.Join(b.To, "files"))
	if err != nil {
		return rep, err
	}
	return rep, syncDir(b.To)
}

// snapshotSQLite writes a consistent copy of the store at src to dst. It
// only reads src (a read transaction, which a WAL store's writer does not
// wait for), so it runs beside the server.
func snapshotSQLite(ctx context.Context, src, dst string) error {
	db, err := sql.Open("sqlite", "file:"+src+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		return fmt.Errorf("open %s: %w", src, err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", dst); err != nil {
		return fmt.Errorf("snapshot %s: %w", src, err)
	}
	return nil
}

// checkSnapshot runs SQLite's quick check on the snapshot at path and
// counts its users and messages, for the report.
func checkSnapshot(ctx context.Context, path string) (users, messages int64, err error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	var verdict string
	if err := db.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&verdict); err != nil {
		return 0, 0, fmt.Errorf("check %s: %w", path, err)
	}
	if verdict != "ok" {
		return 0, 0, fmt.Errorf("check %s: %s", path, verdict)
	}
	// Counts are for the report: a store of another schema still copies.
	_ = db.QueryRowContext(ctx, "SELECT COUNT(*) FROM users").Scan(&users)
	_ = db.QueryRowContext(ctx, "SELECT COUNT(*) FROM messages").Scan(&messages)
	return users, messages, nil
}

// copyTree copies the regular files under src to dst, keeping their
// relative paths, each synced. A missing src is an empty one (no file was
// ever uploaded); a file removed while the copy runs (the pruner) is passed
// over. src itself may be a symlink (uploads on another disk); links under
// it are not followed.
func copyTree(ctx context.Context, src, dst string) (n int, size int64, err error) {
	// WalkDir does not descend into a root that is a link: walk its target.
	if real, err := filepath.EvalSymlinks(src); err == nil {
		src = real
	}
	err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o750)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		switch err := copyFile(path, out, 0o640); {
		case errors.Is(err, fs.ErrNotExist):
			return nil
		case err != nil:
			return err
		}
		n++
		if info, err := os.Stat(out); err == nil {
			size += info.Size()
		}
		return nil
	})
	return n, size, err
}

// copyFile copies src to a new file dst with perm and syncs it.
func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return fmt.Errorf("sync %s: %w", dst, err)
	}
	return out.Close()
}

// makeEmptyDir creates dir, or takes an existing empty one; created says
// which.
func makeEmptyDir(dir string) (created bool, err error) {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return true, os.MkdirAll(dir, 0o700)
	case err != nil:
		return false, err
	case len(entries) > 0:
		return false, fmt.Errorf("target %s is not empty", dir)
	}
	return false, nil
}

// clearDir removes what dir holds, leaving dir.
func clearDir(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		_ = os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
