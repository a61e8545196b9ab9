package logic

import (
	"context"
	"crypto/sha256"
	"testing"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// FuzzUpload feeds arbitrary UploadReq fields to Upload on SQLite with the
// bytes in a directory: it never fails on the server's side, never takes a
// file id it did not hand out, and an upload it completes holds exactly the
// bytes whose hash it was given.
func FuzzUpload(f *testing.F) {
	cfg := sqliteConfig(f)
	cfg.FileDir = f.TempDir()
	cfg.MaxUploads = 1 << 30
	e := newEnv(f, cfg)
	e.svc.cfg.UploadLimit.Burst = 1 << 30
	e.svc.limits = newLimiters(e.svc.cfg)
	alice := e.register(f, "alice")
	sum := sha256.Sum256([]byte("hello"))
	f.Add("", int64(5), sum[:], "text/plain", "a.txt", int64(0), []byte("hello"))
	f.Add("", int64(5), sum[:], "text/plain", "../a", int64(0), []byte("hel"))
	f.Add("0123456789abcdef0123456789abcdef", int64(0), []byte(nil), "", "", int64(3),
		[]byte("lo"))
	f.Add("../../etc/passwd", int64(-1), []byte{1}, "a/b", "\x00", int64(-5), []byte{})
	f.Fuzz(func(t *testing.T, id string, size int64, hash []byte, mime, name string,
		off int64, data []byte) {
		req := &protocol.UploadReq{FileId: id, Size: size, Sha256: hash, Mime: mime, Name: name,
			Offset: off, Data: data}
		resp, err := e.svc.Upload(context.Background(), session(alice, 1), req)
		wantClientError(t, err)
		if err != nil {
			return
		}
		if id != "" && resp.FileId != id || !validFileID(resp.FileId) {
			t.Fatalf("upload %q answered file %q", id, resp.FileId)
		}
		if id != "" {
			return
		}
		if checkMime(mime) != nil || checkFileName(name) != nil || size <= 0 {
			t.Fatalf("accepted %+v", req)
		}
		if resp.Complete {
			got, _, err := e.download(alice, resp.FileId)
			if s := sha256.Sum256(got); err != nil || string(s[:]) != string(hash) {
				t.Fatalf("complete file reads %x (%v), sha256 given %x", got, err, hash)
			}
		}
	})
}

// FuzzDecodeFileRef: a FILE message's content either decodes to a ref that
// passes every check, or is a client error.
func FuzzDecodeFileRef(f *testing.F) {
	ok := &common.FileRef{FileId: "0123456789abcdef0123456789abcdef", Name: "a.png",
		Mime: "image/png", Size: 3, Sha256: make([]byte, 32)}
	b := make([]byte, ok.BLength())
	ok.FastWriteNocopy(b, nil)
	f.Add(b)
	f.Add([]byte{0xff, 0x00})
	f.Fuzz(func(t *testing.T, content []byte) {
		ref, err := decodeFileRef(content)
		if err != nil {
			if !isRequestError(err) {
				t.Fatalf("err = %v, want a request error", err)
			}
			return
		}
		if !validFileID(ref.FileId) || ref.Size <= 0 || len(ref.Sha256) != sha256.Size ||
			checkMime(ref.Mime) != nil || checkFileName(ref.Name) != nil {
			t.Fatalf("accepted %+v", ref)
		}
	})
}
