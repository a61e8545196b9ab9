package logic

import (
	"crypto/sha256"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// TestFiles_ChunkOutsideTheFileIsRefused sends chunks that no honest client
// sends, to an unfinished and to a complete upload: before the start, past
// the declared size, or ending past it. Each is BAD_REQUEST, whatever
// the upload's progress, and stores nothing; a resume without data at any
// offset within the file still answers where the upload stands.
func TestFiles_ChunkOutsideTheFileIsRefused(t *testing.T) {
	forEachFileStore(t, func(t *testing.T, e *env) {
		alice := e.register(t, "alice")
		data := randomBytes(t, 2*protocol.MaxFileChunk+5)
		sum := sha256.Sum256(data)
		open, err := e.svc.Upload(ctxBG, session(alice, 1), &protocol.UploadReq{
			Size: 1000, Sha256: sum[:], Mime: "a/b", Name: "x", Data: data[:500]})
		if err != nil {
			t.Fatal(err)
		}
		done := e.upload(t, alice, "y", "a/b", data)
		for id, size := range map[string]int64{open.FileId: 1000, done.FileId: done.Size} {
			bad := []struct {
				offset int64
				n      int
			}{
				{-1, 10}, {math.MinInt64, 10}, {-1, 0}, {math.MinInt64, 0},
				{size + 1, 0}, {math.MaxInt64, 0}, {math.MaxInt64, 10},
				{size - 600, 601}, // a "retry" ending past the size
				{size - 1, 10},
			}
			for _, b := range bad {
				name := fmt.Sprintf("size %d offset %d bytes %d", size, b.offset, b.n)
				_, err := e.svc.Upload(ctxBG, session(alice, 1), &protocol.UploadReq{
					FileId: id, Offset: b.offset, Data: make([]byte, b.n)})
				if codeOf(err) != common.ErrorCode_BAD_REQUEST {
					t.Errorf("%s: code %v, want BAD_REQUEST", name, codeOf(err))
				}
			}
		}
		// Still where it was, and a resume at any offset in the file is fine.
		for _, off := range []int64{0, 7, 1000} {
			r, err := e.svc.Upload(ctxBG, session(alice, 1), &protocol.UploadReq{
				FileId: open.FileId, Offset: off})
			if err != nil || r.NextOffset != 500 {
				t.Fatalf("resume at %d = %+v, %v; want next offset 500", off, r, err)
			}
		}
	})
}

// TestFiles_UnsentFilesAreCapped uploads complete files and sends none of
// them: the bytes a user holds in files no message names, unfinished or
// complete, stay within MaxUploads x MaxFileSize (docs/operations.md), so
// that completing uploads cannot pass the cap on unfinished ones. Sending
// one frees its share.
func TestFiles_UnsentFilesAreCapped(t *testing.T) {
	forEachFileStore(t, func(t *testing.T, e *env) {
		e.svc.cfg.MaxFileSize = 1000
		e.svc.cfg.MaxUploads = 2
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		refs := []*common.FileRef{
			e.upload(t, alice, "a", "a/b", randomBytes(t, 1000)),
			e.upload(t, alice, "b", "a/b", randomBytes(t, 600)),
		}
		data := randomBytes(t, 700)
		sum := sha256.Sum256(data)
		start := func() error {
			_, err := e.svc.Upload(ctxBG, session(alice, 1), &protocol.UploadReq{Size: 700,
				Sha256: sum[:], Mime: "a/b", Name: "c", Data: data})
			return err
		}
		wantCode(t, start(), common.ErrorCode_RATE_LIMITED) // 1600 unsent, 2300 with it
		_, err := e.svc.Send(ctxBG, session(alice, 1), fileReq(t, "s", bob, "", refs[1]))
		if err != nil {
			t.Fatal(err)
		}
		wantCode(t, start(), common.ErrorCode_OK) // 1000 unsent, 1700 with it
		wantCode(t, start(), common.ErrorCode_RATE_LIMITED)
	})
}

// TestFiles_UnreadableReferencesDoNotHideAReadableOne: alice puts a file in
// more groups than a download checks references of, each after removing
// bob, so that bob is a former member of them all and may read none of
// those messages; then she sends it to bob. Bob downloads it: references
// he cannot read must not crowd out the one he can.
func TestFiles_UnreadableReferencesDoNotHideAReadableOne(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	alice, bob := e.register(t, "alice"), e.register(t, "bob")
	ref := e.upload(t, alice, "a.txt", "text/plain", []byte("for bob"))
	for i := range maxFileRefs + 1 {
		g := e.group(t, alice, fmt.Sprintf("g%d", i), bob)
		_, err := e.manage(alice, g, common.GroupAction_REMOVE, []int64{bob}, "", 0)
		if err != nil {
			t.Fatalf("remove bob from group %d: %v", i, err)
		}
		if _, err := e.svc.Send(ctxBG, session(alice, 1),
			fileReq(t, fmt.Sprintf("g%d", i), 0, g, ref)); err != nil {
			t.Fatalf("send to group %d: %v", i, err)
		}
	}
	if _, err := e.svc.Send(ctxBG, session(alice, 1), fileReq(t, "p", bob, "", ref)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.download(bob, ref.FileId); err != nil {
		t.Fatalf("bob downloads the file sent to him: %v", err)
	}
}

// TestFiles_ConcurrentStartsKeepTheCaps starts a burst of uploads at once,
// as many connections of one user can: no more than MaxUploads get in,
// where a count read before each insert let the whole burst pass.
func TestFiles_ConcurrentStartsKeepTheCaps(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	alice := e.register(t, "alice")
	sum := sha256.Sum256(nil)
	var admitted atomic.Int32
	var wg sync.WaitGroup
	for range 20 { // the start rate's burst
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.svc.Upload(ctxBG, session(alice, 1), &protocol.UploadReq{
				Size: e.svc.cfg.MaxFileSize, Sha256: sum[:], Mime: "a/b", Name: "x"})
			if err == nil {
				admitted.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := admitted.Load(); n > int32(e.svc.cfg.MaxUploads) {
		t.Fatalf("%d of 20 concurrent starts admitted, want at most %d", n, e.svc.cfg.MaxUploads)
	}
}
