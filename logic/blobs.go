package logic

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"gorm.io/gorm"
	"gorm.io/gorm/schema"

	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// blobStore keeps the bytes of uploaded files, and the progress of an
// upload; their descriptions are fileRows in SQL either way. Chunks of one
// file arrive in order, each at the offset held says.
type blobStore interface {
	// held returns how many bytes of f's upload the store holds: the
	// offset its next chunk goes to.
	held(ctx context.Context, f *fileRow) (int64, error)
	// put stores data at off of f, which held returned, or fails with
	// errStaleChunk when a racing request stored a chunk there first.
	put(ctx context.Context, f *fileRow, off int64, data []byte) error
	// read returns up to n bytes of file id from off; fewer at its end.
	read(ctx context.Context, id string, off int64, n int) ([]byte, error)
	// seal makes the file's size bytes durable once the upload completed,
	// dropping anything a lost race left past them.
	seal(ctx context.Context, id string, size int64) error
	// remove deletes the file's bytes; a file without any is no error.
	remove(ctx context.Context, id string) error
}

// dirBlobs keeps each file in a file of its own under dir, in a
// subdirectory named by the id's first two hex digits; an upload's progress
// is its file's length. It is the default of a logic on SQLite: an upload
// then commits to the database at its start and end (and once a minute, for
// the pruner), never per chunk, beside the one writer that stores messages.
//
// Chunks are written unsynced; seal syncs a complete file. A crash may
// leave an upload shorter than it was answered (the client sends the rest
// again) or with bytes it never held, which its hash check refuses.
// Instances that share the directory need no lock between them: racing
// writers at one offset are retries of one chunk and write the same bytes,
// and anything else fails the hash check.
type dirBlobs struct {
	dir string
	// locks serialize the check and write of chunks of one file in this
	// process, striped by id.
	locks [64]sync.Mutex
}

func (d *dirBlobs) path(id string) string {
	return filepath.Join(d.dir, id[:2], id)
}

func (d *dirBlobs) held(_ context.Context, f *fileRow) (int64, error) {
	info, err := os.Stat(d.path(f.ID))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return min(info.Size(), f.Size), nil
}

func (d *dirBlobs) put(ctx context.Context, f *fileRow, off int64, data []byte) error {
	mu := &d.locks[f.ID[0]%byte(len(d.locks))]
	mu.Lock()
	defer mu.Unlock()
	if held, err := d.held(ctx, f); err != nil || held != off {
		return cmp.Or(err, errStaleChunk)
	}
	p := d.path(f.ID)
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return err
	}
	file, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	_, err = file.WriteAt(data, off)
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	return err
}

func (d *dirBlobs) read(_ context.Context, id string, off int64, n int) ([]byte, error) {
	f, err := os.Open(d.path(id))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	got, err := f.ReadAt(b, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b[:got], nil
}

func (d *dirBlobs) seal(_ context.Context, id string, size int64) error {
	f, err := os.OpenFile(d.path(id), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (d *dirBlobs) remove(_ context.Context, id string) error {
	err := os.Remove(d.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// fileChunkRow is a chunk of a file's bytes at Pos, for sqlBlobs.
type fileChunkRow struct {
	FileID string `gorm:"primaryKey;size:32"`
	Pos    int64  `gorm:"primaryKey;autoIncrement:false"`
	Data   []byte `gorm:"not null"`
}

// TableName names the table through the namer so that TablePrefix applies.
func (fileChunkRow) TableName(n schema.Namer) string { return n.TableName("file_chunk") }

// sqlBlobs keeps file bytes as rows of chunks in the SQL database: for
// logic instances on MySQL that share no disk. An upload's progress is its
// row's Received, moved by a compare-and-set in the transaction that
// inserts the chunk, so the two never disagree and racing chunks of one
// upload are stored once.
type sqlBlobs struct {
	db func(ctx context.Context) *gorm.DB
}

func (b sqlBlobs) held(_ context.Context, f *fileRow) (int64, error) {
	return f.Received, nil
}

func (b sqlBlobs) put(ctx context.Context, f *fileRow, off int64, data []byte) error {
	return b.db(ctx).Transaction(func(tx *gorm.DB) error {
		err := tx.Create(&fileChunkRow{FileID: f.ID, Pos: off, Data: data}).Error
		if errors.Is(err, gorm.ErrDuplicatedKey) {
			return errStaleChunk // a racing request stored this chunk
		}
		if err != nil {
			return err
		}
		res := tx.Model(&fileRow{}).Where("id = ? AND received = ? AND state = ?", f.ID, off,
			fileUploading).Update("received", off+int64(len(data)))
		if res.Error == nil && res.RowsAffected == 0 {
			return errStaleChunk
		}
		return res.Error
	})
}

// read reads the chunks that overlap [off, off+n): a chunk is at most
// MaxFileChunk bytes, so the first starts less than that before off.
func (b sqlBlobs) read(ctx context.Context, id string, off int64, n int) ([]byte, error) {
	var rows []fileChunkRow
	err := b.db(ctx).Where("file_id = ? AND pos > ? AND pos < ?", id,
		off-protocol.MaxFileChunk, off+int64(n)).Order("pos").Find(&rows).Error
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, n)
	for _, r := range rows {
		end := r.Pos + int64(len(r.Data))
		next := off + int64(len(out))
		if r.Pos > next {
			return nil, fmt.Errorf("file %s: no chunk at %d", id, next)
		}
		if end <= next {
			continue
		}
		take := r.Data[next-r.Pos:]
		out = append(out, take[:min(len(take), n-len(out))]...)
		if len(out) == n {
			break
		}
	}
	return out, nil
}

func (sqlBlobs) seal(context.Context, string, int64) error { return nil }

func (b sqlBlobs) remove(ctx context.Context, id string) error {
	return b.db(ctx).Where("file_id = ?", id).Delete(&fileChunkRow{}).Error
}
