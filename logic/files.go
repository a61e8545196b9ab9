package logic

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rs/zerolog"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// Files: a user uploads a file in chunks (Upload), sends FILE messages whose
// content is a common.FileRef naming it, and every reader of such a message
// downloads it (Download). The description of each file is a fileRow; its
// bytes are in a blobStore (blobs.go); each FILE message that names it adds
// a fileRefRow in the seq transaction storing it, which is what lets its
// readers download it. A recall drops the message's reference, and the
// pruner deletes uploads never completed and files no message names
// (pruneFiles).

// File limits; docs/protocol.md states them.
const (
	fileIDBytes  = 16  // random bytes of a file id: 128 bits, hex-encoded
	maxFileName  = 255 // bytes of UTF-8
	maxFileMime  = 127 // bytes of ASCII
	maxFileRefs  = 64  // references read per download's access check
	hashReadSize = 1 << 20
)

// Upload states of a fileRow.
const (
	fileUploading int16 = 1
	fileComplete  int16 = 2
)

// fileRow describes one uploaded file. Received is how many bytes of it
// the store holds when the store keeps it (sqlBlobs), else only at
// completion: blobStore.held is the upload's progress.
type fileRow struct {
	ID        string `gorm:"primaryKey;size:32"`
	OwnerID   int64  `gorm:"not null"`
	Size      int64  `gorm:"not null"`
	Received  int64  `gorm:"not null;default:0"`
	SHA256    []byte `gorm:"column:sha256;size:32;not null"`
	Mime      string `gorm:"size:127;not null"`
	Name      string `gorm:"size:255;not null"`
	State     int16  `gorm:"not null"`
	CreatedMs int64  `gorm:"not null"`
	// UpdatedMs is, while uploading, the time of a chunk at most
	// touchEvery before the last one; the completion's after: the pruner's
	// clock for both.
	UpdatedMs int64 `gorm:"not null"`
}

// TableName names the table through the namer so that TablePrefix applies.
func (fileRow) TableName(n schema.Namer) string { return n.TableName("file") }

// fileRefRow says that the FILE message at seq of conv names the file.
type fileRefRow struct {
	FileID string `gorm:"primaryKey;size:32"`
	ConvID string `gorm:"primaryKey;size:64"`
	Seq    int64  `gorm:"primaryKey;autoIncrement:false"`
}

// TableName names the table through the namer so that TablePrefix applies.
func (fileRefRow) TableName(n schema.Namer) string { return n.TableName("file_ref") }

// fileIndexes serve the incomplete-upload cap, the pruner and recalls.
var fileIndexes = []tableIndex{
	{model: &fileRow{}, suffix: "_owner_state", columns: []string{"owner_id", "state"}},
	{model: &fileRow{}, suffix: "_state_updated", columns: []string{"state", "updated_ms"}},
	{model: &fileRefRow{}, suffix: "_msg", columns: []string{"conv_id", "seq"}},
}

// Upload starts an upload, stores one chunk of it, or answers how far it is
// (see protocol.UploadReq). Only the uploader sees an upload: any other
// user's file id, like an unknown one, is NOT_FOUND.
func (s *Service) Upload(ctx context.Context, session *logicrpc.Session,
	req *protocol.UploadReq) (*protocol.UploadResp, error) {
	if err := s.authorizeWrite(ctx, "upload", session); err != nil {
		return nil, err
	}
	if req == nil {
		req = &protocol.UploadReq{} // a missing body reads as empty
	}
	logIDs := func(e *zerolog.Event) *zerolog.Event {
		return e.Int64("user", session.UserId).Str("file", req.FileId).
			Int64("offset", req.Offset).Int("bytes", len(req.Data))
	}
	var resp *protocol.UploadResp
	var err error
	if req.FileId == "" {
		resp, err = s.startUpload(ctx, session.UserId, req)
	} else {
		resp, err = s.continueUpload(ctx, session.UserId, req)
	}
	if err != nil {
		return nil, s.fail("upload", err, logIDs)
	}
	return resp, nil
}

// startUpload creates the file row of a new upload and stores its first
// chunk if req carries one.
func (s *Service) startUpload(ctx context.Context, user int64,
	req *protocol.UploadReq) (*protocol.UploadResp, error) {
	if err := s.checkNewUpload(req); err != nil {
		return nil, err
	}
	if !s.limits.upload.Allow(strconv.FormatInt(user, 10)) {
		return nil, fmt.Errorf("%w: uploads", ErrRateLimited)
	}
	f, err := s.createUpload(ctx, user, req)
	if err != nil {
		return nil, err
	}
	if len(req.Data) == 0 {
		return &protocol.UploadResp{FileId: f.ID}, nil
	}
	return s.storeChunk(ctx, f, req.Data)
}

// createUpload stores the file row of a new upload within the caps of
// checkUnsent. The check and the insert run under the user's stripe of
// uploadStarts, so that a burst of starts from many connections cannot all
// read the count from before any of them: only starts on other logic
// instances may race past the caps, one each.
func (s *Service) createUpload(ctx context.Context, user int64,
	req *protocol.UploadReq) (*fileRow, error) {
	mu := &s.uploadStarts[uint64(user)%uint64(len(s.uploadStarts))]
	mu.Lock()
	defer mu.Unlock()
	if err := s.checkUnsent(ctx, user, req.Size); err != nil {
		return nil, err
	}
	id, err := newFileID()
	if err != nil {
		return nil, err
	}
	now := s.now().UnixMilli()
	f := &fileRow{ID: id, OwnerID: user, Size: req.Size, SHA256: req.Sha256, Mime: req.Mime,
		Name: req.Name, State: fileUploading, CreatedMs: now, UpdatedMs: now}
	if err := s.dbc(ctx).Create(f).Error; err != nil {
		return nil, fmt.Errorf("create file user=%d: %w", user, err)
	}
	return f, nil
}

// unsentFiles is what a user holds in files no message names: uploads
// unfinished, and complete files not sent (or whose messages were all
// recalled), which the pruner deletes only after FileRetention.
type unsentFiles struct {
	Open  int64 // unfinished uploads
	Bytes int64 // declared size of them all
}

// checkUnsent refuses a new upload of size bytes (RATE_LIMITED) when the
// user has MaxUploads unfinished, or when it would take the user's unsent
// files past MaxUploads x MaxFileSize bytes: without the second bound,
// completing uploads and sending none of them would let one user fill the
// disk at the start rate, a file per 3 s, for FileRetention. It reads the
// read pool, which holds every start that returned (createUpload).
//
// TODO: the query reads every file row of the user's, sent ones included
// (about 15 ms for 20000 on SQLite); an index on (owner_id, updated_ms)
// would let it read only those written within FileRetention.
func (s *Service) checkUnsent(ctx context.Context, user, size int64) error {
	var u unsentFiles
	err := s.rdc(ctx).Table(s.tables.file+" AS f").
		Select("COUNT(CASE WHEN f.state = ? THEN 1 END) AS open, "+
			"COALESCE(SUM(f.size), 0) AS bytes", fileUploading).
		Where("f.owner_id = ? AND (f.state = ? OR NOT EXISTS (SELECT 1 FROM "+
			s.tables.fileRef+" AS r WHERE r.file_id = f.id))", user, fileUploading).
		Scan(&u).Error
	if err != nil {
		return fmt.Errorf("count unsent files of user=%d: %w", user, err)
	}
	if u.Open >= int64(s.cfg.MaxUploads) {
		return fmt.Errorf("%w: %d unfinished uploads", ErrRateLimited, u.Open)
	}
	if limit := int64(s.cfg.MaxUploads) * s.cfg.MaxFileSize; u.Bytes > limit-size {
		return fmt.Errorf("%w: %d bytes in files not sent, %d with this one, over %d",
			ErrRateLimited, u.Bytes, u.Bytes+size, limit)
	}
	return nil
}

// checkNewUpload checks what needs no database in the request that starts
// an upload.
func (s *Service) checkNewUpload(req *protocol.UploadReq) error {
	switch {
	case req.Size <= 0:
		return fmt.Errorf("%w: size must be positive", ErrBadRequest)
	case req.Size > s.cfg.MaxFileSize:
		return fmt.Errorf("%w: file over %d bytes", ErrTooLarge, s.cfg.MaxFileSize)
	case len(req.Sha256) != sha256.Size:
		return fmt.Errorf("%w: sha256 must be %d bytes", ErrBadRequest, sha256.Size)
	case len(req.Data) > protocol.MaxFileChunk:
		return fmt.Errorf("%w: chunk over %d bytes", ErrTooLarge, protocol.MaxFileChunk)
	case req.Offset != 0 || int64(len(req.Data)) > req.Size:
		return fmt.Errorf("%w: the first chunk is at offset 0, within size", ErrBadRequest)
	}
	if err := checkMime(req.Mime); err != nil {
		return err
	}
	return checkFileName(req.Name)
}

// checkMime accepts a media type "type/subtype" of printable ASCII without
// spaces, parameters included: it is shown and sent back as given.
func checkMime(mime string) error {
	if mime == "" || len(mime) > maxFileMime {
		return fmt.Errorf("%w: mime must be 1-%d bytes", ErrBadRequest, maxFileMime)
	}
	slash := strings.IndexByte(mime, '/')
	if slash <= 0 || slash == len(mime)-1 {
		return fmt.Errorf("%w: mime must be type/subtype", ErrBadRequest)
	}
	for i := 0; i < len(mime); i++ {
		if mime[i] <= ' ' || mime[i] > '~' {
			return fmt.Errorf("%w: mime must be printable ASCII without spaces", ErrBadRequest)
		}
	}
	return nil
}

// checkFileName accepts 1-255 bytes of UTF-8 without control characters or
// path separators: a client saving under it writes one file where it means.
// Each refusal says its own fault (never echoing the name, which may hold
// terminal escapes), so that the user knows what to rename.
func checkFileName(name string) error {
	var fault string
	switch {
	case name == "":
		fault = "is empty"
	case len(name) > maxFileName:
		fault = fmt.Sprintf("is over %d bytes", maxFileName)
	case !utf8.ValidString(name):
		fault = "is not valid UTF-8"
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		fault = "has control characters"
	case name == "." || name == "..":
		fault = `cannot be "." or ".."`
	case strings.ContainsAny(name, `/\`):
		fault = `must be a file name without directories (no / or \)`
	default:
		return nil
	}
	return fmt.Errorf("%w: name %s", ErrBadRequest, fault)
}

// newFileID returns a fresh file id: 128 random bits, so that knowing a
// file id is as good as having been shown it.
func newFileID() (string, error) {
	var b [fileIDBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("file id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// validFileID reports whether id has the shape newFileID gives: anything
// else is answered NOT_FOUND without a query.
func validFileID(id string) bool {
	if len(id) != 2*fileIDBytes {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// continueUpload stores req's chunk of the user's upload, or answers its
// next offset when req carries none or one already held.
func (s *Service) continueUpload(ctx context.Context, user int64,
	req *protocol.UploadReq) (*protocol.UploadResp, error) {
	if len(req.Data) > protocol.MaxFileChunk {
		return nil, fmt.Errorf("%w: chunk over %d bytes", ErrTooLarge, protocol.MaxFileChunk)
	}
	f, err := s.ownUploadHeld(ctx, user, req.FileId)
	if err != nil {
		return nil, err
	}
	if err := checkChunkRange(f, req); err != nil {
		return nil, err
	}
	switch {
	case f.State == fileComplete:
		return uploadResp(f), nil
	case len(req.Data) == 0 || req.Offset < f.Received:
		// A resume asking where to go on, or the retry of a chunk whose
		// answer was lost: the client goes on from Received.
		if f.Received == f.Size {
			return s.completeUpload(ctx, f)
		}
		return uploadResp(f), nil
	case req.Offset > f.Received:
		return nil, fmt.Errorf("%w: offset %d past the next offset %d", ErrBadRequest,
			req.Offset, f.Received)
	}
	return s.storeChunk(ctx, f, req.Data)
}

// checkChunkRange refuses a chunk, or a resume, that does not lie within
// f: one no client sends, so that neither a completed upload nor a chunk
// taken for a retry lets it pass. The end is compared by subtraction, which
// cannot overflow once the offset is known to be within the size.
func checkChunkRange(f *fileRow, req *protocol.UploadReq) error {
	if req.Offset < 0 || req.Offset > f.Size || int64(len(req.Data)) > f.Size-req.Offset {
		return fmt.Errorf("%w: offset %d with %d bytes outside the file's %d bytes",
			ErrBadRequest, req.Offset, len(req.Data), f.Size)
	}
	return nil
}

// ownUpload reads the user's file row of id, or NOT_FOUND. It reads from
// the read pool: the chunk before committed before it was answered.
func (s *Service) ownUpload(ctx context.Context, user int64, id string) (*fileRow, error) {
	if !validFileID(id) {
		return nil, fmt.Errorf("%w: file", ErrNotFound)
	}
	var f fileRow
	res := s.rdc(ctx).Where("id = ? AND owner_id = ?", id, user).Limit(1).Find(&f)
	if res.Error != nil {
		return nil, fmt.Errorf("read file %s: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		return nil, fmt.Errorf("%w: file", ErrNotFound)
	}
	return &f, nil
}

// ownUploadHeld is ownUpload with Received set to the bytes the store
// holds of an unfinished upload.
func (s *Service) ownUploadHeld(ctx context.Context, user int64, id string) (*fileRow, error) {
	f, err := s.ownUpload(ctx, user, id)
	if err != nil || f.State != fileUploading {
		return f, err
	}
	if f.Received, err = s.blobs.held(ctx, f); err != nil {
		return nil, fmt.Errorf("progress of file %s: %w", f.ID, err)
	}
	return f, nil
}

// uploadResp is the answer that tells where f's upload stands.
func uploadResp(f *fileRow) *protocol.UploadResp {
	return &protocol.UploadResp{FileId: f.ID, NextOffset: f.Received,
		Complete: f.State == fileComplete}
}

// touchEvery is how often, at most, an upload's chunks move its row's
// UpdatedMs: often enough for the pruner (FileRetention is hours), rarely
// enough that a directory upload on SQLite commits nothing per chunk.
const touchEvery = time.Minute

// storeChunk appends data to f at f.Received and completes the upload when
// that was its last chunk. A racing request that stored a chunk there first
// wins; this one answers where the upload now stands.
func (s *Service) storeChunk(ctx context.Context, f *fileRow,
	data []byte) (*protocol.UploadResp, error) {
	off := f.Received
	err := s.blobs.put(ctx, f, off, data)
	if errors.Is(err, errStaleChunk) {
		if f, err = s.ownUploadHeld(ctx, f.OwnerID, f.ID); err != nil {
			return nil, err
		}
		return uploadResp(f), nil
	}
	if err != nil {
		return nil, fmt.Errorf("store chunk file=%s offset=%d: %w", f.ID, off, err)
	}
	f.Received = off + int64(len(data))
	if now := s.now().UnixMilli(); now-f.UpdatedMs >= touchEvery.Milliseconds() &&
		f.Received < f.Size {
		err := s.dbc(ctx).Model(&fileRow{}).Where("id = ?", f.ID).Update("updated_ms", now).Error
		if err != nil {
			return nil, fmt.Errorf("touch file %s: %w", f.ID, err)
		}
	}
	if f.Received < f.Size {
		return uploadResp(f), nil
	}
	return s.completeUpload(ctx, f)
}

// completeUpload checks the SHA-256 of f, whose bytes are all in, and marks
// it complete; on a mismatch it drops the upload and answers BAD_REQUEST.
// The bytes are read back rather than hashed as they came, so that an
// upload resumed on another logic instance, or after a restart, needs no
// hash state kept anywhere.
func (s *Service) completeUpload(ctx context.Context, f *fileRow) (*protocol.UploadResp, error) {
	sum, err := s.hashBlob(ctx, f)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(sum, f.SHA256) {
		if err := s.dropFile(ctx, f.ID); err != nil {
			s.failLog.Warn().Err(err).Str("file", f.ID).Msg("drop of a mismatched upload failed")
		}
		return nil, fmt.Errorf("%w: the bytes do not match sha256; upload again", ErrBadRequest)
	}
	if err := s.blobs.seal(ctx, f.ID, f.Size); err != nil {
		return nil, fmt.Errorf("seal file %s: %w", f.ID, err)
	}
	err = s.dbc(ctx).Model(&fileRow{}).Where("id = ? AND state = ?", f.ID, fileUploading).
		Updates(map[string]any{"state": fileComplete, "received": f.Size,
			"updated_ms": s.now().UnixMilli()}).Error
	if err != nil {
		return nil, fmt.Errorf("complete file %s: %w", f.ID, err)
	}
	f.State = fileComplete
	return uploadResp(f), nil
}

// hashBlob returns the SHA-256 of f's first f.Size stored bytes.
func (s *Service) hashBlob(ctx context.Context, f *fileRow) ([]byte, error) {
	h := sha256.New()
	for off := int64(0); off < f.Size; {
		n := int(min(hashReadSize, f.Size-off))
		b, err := s.blobs.read(ctx, f.ID, off, n)
		if err != nil {
			return nil, fmt.Errorf("hash file %s at %d: %w", f.ID, off, err)
		}
		if len(b) < n {
			return nil, fmt.Errorf("hash file %s: %d bytes missing at %d", f.ID, n-len(b),
				off+int64(len(b)))
		}
		h.Write(b)
		off += int64(n)
	}
	return h.Sum(nil), nil
}

// dropFile deletes a file's bytes, then its row and references.
func (s *Service) dropFile(ctx context.Context, id string) error {
	if err := s.blobs.remove(ctx, id); err != nil {
		return fmt.Errorf("remove bytes of file %s: %w", id, err)
	}
	return s.dbc(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("file_id = ?", id).Delete(&fileRefRow{}).Error; err != nil {
			return err
		}
		return tx.Where("id = ?", id).Delete(&fileRow{}).Error
	})
}

// Download returns a chunk of a complete file the session user may read:
// their own, or one a FILE message names that they can read (as SYNC would
// return it: a group's from their join to their leaving, not cleared).
// Anything else is NOT_FOUND, so that a file's existence does not leak.
func (s *Service) Download(ctx context.Context, session *logicrpc.Session,
	req *protocol.DownloadReq) (*protocol.DownloadResp, error) {
	if err := s.authorizeWrite(ctx, "download", session); err != nil {
		return nil, err
	}
	if req == nil {
		req = &protocol.DownloadReq{} // a missing body reads as empty
	}
	resp, err := s.download(ctx, session.UserId, req)
	if err != nil {
		return nil, s.fail("download", err, func(e *zerolog.Event) *zerolog.Event {
			return e.Int64("user", session.UserId).Str("file", req.FileId).
				Int64("offset", req.Offset)
		})
	}
	return resp, nil
}

func (s *Service) download(ctx context.Context, user int64,
	req *protocol.DownloadReq) (*protocol.DownloadResp, error) {
	f, err := s.readableFile(ctx, s.rdc(ctx), user, req.FileId)
	if err != nil {
		return nil, err
	}
	if req.Offset < 0 || req.Offset > f.Size {
		return nil, fmt.Errorf("%w: offset %d outside the file's %d bytes", ErrBadRequest,
			req.Offset, f.Size)
	}
	n := int64(req.MaxBytes)
	if n <= 0 || n > protocol.MaxFileChunk {
		n = protocol.MaxFileChunk
	}
	n = min(n, f.Size-req.Offset)
	var data []byte
	if n > 0 {
		if data, err = s.blobs.read(ctx, f.ID, req.Offset, int(n)); err != nil {
			return nil, fmt.Errorf("read file %s at %d: %w", f.ID, req.Offset, err)
		}
	}
	return &protocol.DownloadResp{Data: data, Offset: req.Offset, Size: f.Size, Mime: f.Mime,
		Name: f.Name, Sha256: f.SHA256}, nil
}

// readableFile returns the complete file id if user owns it or can read a
// message naming it, else NOT_FOUND. db is where the file rows are read.
func (s *Service) readableFile(ctx context.Context, db *gorm.DB, user int64,
	id string) (*fileRow, error) {
	notFound := fmt.Errorf("%w: file", ErrNotFound)
	if !validFileID(id) {
		return nil, notFound
	}
	var f fileRow
	res := db.Where("id = ? AND state = ?", id, fileComplete).Limit(1).Find(&f)
	if res.Error != nil {
		return nil, fmt.Errorf("read file %s: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		return nil, notFound
	}
	if f.OwnerID == user {
		return &f, nil
	}
	// Only the references in conversations user is or was a member of, at
	// seqs their member row lets them read (as rangeOf says; a p2p
	// conversation whole but what they cleared): a file forwarded widely
	// has many others, and unreadable ones, which anyone who can put the
	// file in a group and the user out of it can make, must not fill the
	// page and hide the one the user can read. canReadSeq still decides.
	var refs []fileRefRow
	err := db.Table(s.tables.fileRef+" AS r").Select("r.conv_id, r.seq").
		Joins("JOIN "+s.tables.member+" AS m ON m.conv_id = r.conv_id AND m.user_id = ?", user).
		Where("r.file_id = ? AND r.seq > m.cleared_seq", id).
		Where("r.conv_id LIKE ? OR (r.seq >= m.join_seq AND "+
			"(m.left_seq = 0 OR r.seq <= m.left_seq))", p2pPrefix+"%").
		Order("r.conv_id, r.seq").Limit(maxFileRefs).
		Scan(&refs).Error
	if err != nil {
		return nil, fmt.Errorf("references of file %s for user %d: %w", id, user, err)
	}
	for _, ref := range refs {
		ok, err := s.canReadSeq(ctx, ref.ConvID, ref.Seq, user)
		if err != nil {
			return nil, err
		}
		if ok {
			return &f, nil
		}
	}
	return nil, notFound
}

// canReadSeq reports whether user may read the message at seq of convID
// by the rules SYNC applies.
func (s *Service) canReadSeq(ctx context.Context, convID string, seq, user int64) (bool, error) {
	r, err := s.readable(ctx, convID, user)
	if isRequestError(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return seq >= r.syncFrom() && r.clamp(seq) == seq, nil
}

// decodeFileRef decodes and checks the content of a FILE message, what
// needs no database.
func decodeFileRef(content []byte) (*common.FileRef, error) {
	// Through codec.ReadBody, which validates the bytes first: the
	// generated reader panics on some malformed input.
	ref := common.NewFileRef()
	if err := codec.ReadBody(content, ref); err != nil || len(content) == 0 {
		return nil, fmt.Errorf("%w: FILE content is not a FileRef", ErrBadRequest)
	}
	switch {
	case !validFileID(ref.FileId):
		return nil, fmt.Errorf("%w: file", ErrNotFound)
	case ref.Size <= 0 || len(ref.Sha256) != sha256.Size:
		return nil, fmt.Errorf("%w: FileRef needs size and sha256", ErrBadRequest)
	case ref.GetWidth() < 0 || ref.GetHeight() < 0:
		return nil, fmt.Errorf("%w: negative width or height", ErrBadRequest)
	case ref.Caption != nil && !utf8.ValidString(*ref.Caption):
		return nil, fmt.Errorf("%w: caption is not valid UTF-8", ErrBadRequest)
	}
	if err := checkMime(ref.Mime); err != nil {
		return nil, err
	}
	return ref, checkFileName(ref.Name)
}

// sendFileApply is sendApply for a FILE message: the file must be complete,
// described as stored, and the sender's own or one they can read (a
// forward); the message's reference to it is recorded with it.
func (s *Service) sendFileApply(tx *gorm.DB, c *convRow, m *messageRow) ([]int64, error) {
	recipients, err := s.sendApply(tx, c, m)
	if err != nil {
		return nil, err
	}
	ref, err := decodeFileRef(m.Content)
	if err != nil {
		return nil, err
	}
	f, err := s.readableFile(tx.Statement.Context, tx, m.SenderID, ref.FileId)
	if err != nil {
		return nil, err
	}
	if f.Size != ref.Size || !bytes.Equal(f.SHA256, ref.Sha256) || f.Mime != ref.Mime {
		return nil, fmt.Errorf("%w: FileRef's size, sha256 or mime differ from the upload's",
			ErrBadRequest)
	}
	// Touch the row, which the pruner deletes only while it is idle: a
	// prune that deleted it since the read above leaves nothing to touch,
	// and one that comes later waits for this commit and finds it in use.
	// The value always changes, so that MySQL counts the row as affected.
	now := s.now().UnixMilli()
	res := tx.Model(&fileRow{}).Where("id = ? AND state = ?", f.ID, fileComplete).
		UpdateColumn("updated_ms", gorm.Expr("CASE WHEN updated_ms < ? THEN ? ELSE updated_ms + 1 END",
			now, now))
	if res.Error != nil {
		return nil, fmt.Errorf("touch file %s: %w", f.ID, res.Error)
	}
	if res.RowsAffected != 1 {
		return nil, fmt.Errorf("%w: file", ErrNotFound)
	}
	err = tx.Clauses(clause.OnConflict{DoNothing: true}).
		Create(&fileRefRow{FileID: f.ID, ConvID: m.ConvID, Seq: m.Seq}).Error
	if err != nil {
		return nil, err
	}
	return recipients, nil
}

// dropFileRefs deletes the reference of the message at seq of convID, if it
// names a file: it was recalled.
func dropFileRefs(tx *gorm.DB, convID string, seq int64) error {
	return tx.Where("conv_id = ? AND seq = ?", convID, seq).Delete(&fileRefRow{}).Error
}
