package logic

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"gorm.io/gorm"
	"gorm.io/gorm/schema"

	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// blobStore keeps the bytes of uploaded files; their descriptions are
// fileRows in SQL either way. Chunks of one file arrive in order, each at
// the offset its fileRow says the store holds up to.
type blobStore interface {
	// put writes data at off of file id, then runs advance, which moves the
	// file row past it (or fails with errStaleChunk when a racing request
	// moved it first). A store that can, runs both in one transaction.
	put(ctx context.Context, id string, off int64, data []byte,
		advance func(tx *gorm.DB) error) error
	// read returns up to n bytes of file id from off; fewer at its end.
	read(ctx context.Context, id string, off int64, n int) ([]byte, error)
	// seal makes the file's size bytes durable once the upload completed,
	// dropping anything a lost race left past them.
	seal(ctx context.Context, id string, size int64) error
	// remove deletes the file's bytes; a file without any is no error.
	remove(ctx context.Context, id string) error
}

// dirBlobs keeps each file in a file of its own under dir, in a
// subdirectory named by the id's first two hex digits. It is the default of
// a logic on SQLite: file bytes then never queue behind the one writer
// that stores messages.
type dirBlobs struct {
	dir string
	db  func(ctx context.Context) *gorm.DB
}

func (d dirBlobs) path(id string) string {
	return filepath.Join(d.dir, id[:2], id)
}

// put writes the chunk, unsynced, before the row moves: a crash between
// the two leaves bytes the row does not count, which the next chunk
// overwrites. A crash that loses written bytes the row counts fails the
// upload's hash check, and the client uploads again; seal syncs a complete
// file.
func (d dirBlobs) put(ctx context.Context, id string, off int64, data []byte,
	advance func(tx *gorm.DB) error) error {
	p := d.path(id)
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(data, off)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return advance(d.db(ctx))
}

func (d dirBlobs) read(_ context.Context, id string, off int64, n int) ([]byte, error) {
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

func (d dirBlobs) seal(_ context.Context, id string, size int64) error {
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

func (d dirBlobs) remove(_ context.Context, id string) error {
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
// logic instances on MySQL that share no disk. A chunk and the move of its
// file row commit together, so the two never disagree.
type sqlBlobs struct {
	db func(ctx context.Context) *gorm.DB
}

func (b sqlBlobs) put(ctx context.Context, id string, off int64, data []byte,
	advance func(tx *gorm.DB) error) error {
	return b.db(ctx).Transaction(func(tx *gorm.DB) error {
		err := tx.Create(&fileChunkRow{FileID: id, Pos: off, Data: data}).Error
		if errors.Is(err, gorm.ErrDuplicatedKey) {
			return errStaleChunk // a racing request stored this chunk
		}
		if err != nil {
			return err
		}
		return advance(tx)
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
