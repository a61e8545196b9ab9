package logic

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// forEachFileStore runs fn on every store (file bytes in SQL chunks) and
// once more on SQLite with the bytes in a directory.
func forEachFileStore(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	forEachStore(t, fn)
	t.Run("sqlite-dir", func(t *testing.T) {
		dir := t.TempDir()
		cfg := Config{DBDriver: DriverSQLite, DBDSN: filepath.Join(dir, "logic.db"),
			FileDir: filepath.Join(dir, "files")}
		fn(t, newEnv(t, cfg))
	})
}

// randomBytes returns n random bytes.
func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// upload uploads data as user in MaxFileChunk chunks, the first with the
// start, and returns the file's ref.
func (e *env) upload(t *testing.T, user int64, name, mime string, data []byte) *common.FileRef {
	t.Helper()
	sum := sha256.Sum256(data)
	first := data[:min(len(data), protocol.MaxFileChunk)]
	resp, err := e.svc.Upload(ctxBG, session(user, 1), &protocol.UploadReq{Size: int64(len(data)),
		Sha256: sum[:], Mime: mime, Name: name, Data: first})
	if err != nil {
		t.Fatalf("start upload: %v", err)
	}
	for !resp.Complete {
		end := min(int64(len(data)), resp.NextOffset+protocol.MaxFileChunk)
		resp, err = e.svc.Upload(ctxBG, session(user, 1), &protocol.UploadReq{FileId: resp.FileId,
			Offset: resp.NextOffset, Data: data[resp.NextOffset:end]})
		if err != nil {
			t.Fatalf("chunk: %v", err)
		}
	}
	if resp.NextOffset != int64(len(data)) {
		t.Fatalf("complete upload at %d, want %d", resp.NextOffset, len(data))
	}
	return &common.FileRef{FileId: resp.FileId, Name: name, Mime: mime, Size: int64(len(data)),
		Sha256: sum[:]}
}

// fileReq is a SEND of ref to conv (or, conv empty, to user to).
func fileReq(t *testing.T, clientID string, to int64, conv string,
	ref *common.FileRef) *protocol.SendReq {
	t.Helper()
	content := make([]byte, ref.BLength())
	ref.FastWriteNocopy(content, nil)
	return &protocol.SendReq{ClientMsgId: clientID, ToUserId: to, ConvId: conv,
		ContentType: common.ContentType_FILE, Content: content}
}

// download reads file id whole as user.
func (e *env) download(user int64, id string) ([]byte, *protocol.DownloadResp, error) {
	var out []byte
	for {
		resp, err := e.svc.Download(ctxBG, session(user, 1), &protocol.DownloadReq{FileId: id,
			Offset: int64(len(out))})
		if err != nil {
			return nil, nil, err
		}
		out = append(out, resp.Data...)
		if int64(len(out)) >= resp.Size || len(resp.Data) == 0 {
			return out, resp, nil
		}
	}
}

func TestFiles_UploadSendDownload(t *testing.T) {
	forEachFileStore(t, func(t *testing.T, e *env) {
		alice, bob, carol := e.register(t, "alice"), e.register(t, "bob"), e.register(t, "carol")
		data := randomBytes(t, 3*protocol.MaxFileChunk+123)
		ref := e.upload(t, alice, "report.pdf", "application/pdf", data)

		ack, err := e.svc.Send(ctxBG, session(alice, 1), fileReq(t, "f1", bob, "", ref))
		if err != nil {
			t.Fatalf("send file: %v", err)
		}
		msgs := e.syncAll(t, bob, ack.ConvId)
		got := common.NewFileRef()
		if len(msgs) != 1 || msgs[0].ContentType != common.ContentType_FILE {
			t.Fatalf("bob syncs %+v", msgs)
		}
		if _, err := got.FastRead(msgs[0].Content); err != nil || got.FileId != ref.FileId {
			t.Fatalf("ref %+v (%v)", got, err)
		}
		for _, user := range []int64{alice, bob} {
			b, resp, err := e.download(user, ref.FileId)
			if err != nil || !bytes.Equal(b, data) || resp.Name != "report.pdf" ||
				resp.Mime != "application/pdf" || !bytes.Equal(resp.Sha256, ref.Sha256) {
				t.Fatalf("user %d downloads %d bytes, %+v, %v", user, len(b), resp, err)
			}
		}
		_, _, err = e.download(carol, ref.FileId)
		wantCode(t, err, common.ErrorCode_NOT_FOUND)
		forged := randHex(t, fileIDBytes)
		_, _, err = e.download(bob, forged)
		wantCode(t, err, common.ErrorCode_NOT_FOUND)
		_, _, err = e.download(bob, "../../etc/passwd")
		wantCode(t, err, common.ErrorCode_NOT_FOUND)

		// Bob forwards it to carol, who may then read it too.
		_, err = e.svc.Send(ctxBG, session(bob, 1), fileReq(t, "fw", carol, "", ref))
		if err != nil {
			t.Fatalf("forward: %v", err)
		}
		if b, _, err := e.download(carol, ref.FileId); err != nil || !bytes.Equal(b, data) {
			t.Fatalf("carol after the forward: %d bytes, %v", len(b), err)
		}
	})
}

func TestFiles_ResumeAndRetry(t *testing.T) {
	forEachFileStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		data := randomBytes(t, 2*protocol.MaxFileChunk+7)
		sum := sha256.Sum256(data)
		start, err := e.svc.Upload(ctxBG, session(alice, 1), &protocol.UploadReq{
			Size: int64(len(data)), Sha256: sum[:], Mime: "image/png", Name: "cat.png"})
		if err != nil || start.NextOffset != 0 || len(start.FileId) != 2*fileIDBytes {
			t.Fatalf("start = %+v, %v", start, err)
		}
		chunk := func(off int64, b []byte) (*protocol.UploadResp, error) {
			return e.svc.Upload(ctxBG, session(alice, 2), &protocol.UploadReq{
				FileId: start.FileId, Offset: off, Data: b})
		}
		if r, err := chunk(0, data[:protocol.MaxFileChunk]); err != nil ||
			r.NextOffset != protocol.MaxFileChunk {
			t.Fatalf("chunk 0 = %+v, %v", r, err)
		}
		// A new connection asks where to go on; a repeated chunk is ignored.
		if r, err := chunk(0, nil); err != nil || r.NextOffset != protocol.MaxFileChunk {
			t.Fatalf("resume = %+v, %v", r, err)
		}
		if r, err := chunk(0, data[:protocol.MaxFileChunk]); err != nil ||
			r.NextOffset != protocol.MaxFileChunk {
			t.Fatalf("retried chunk = %+v, %v", r, err)
		}
		_, err = chunk(2*protocol.MaxFileChunk, data[2*protocol.MaxFileChunk:])
		wantCode(t, err, common.ErrorCode_BAD_REQUEST) // a gap
		_, err = e.svc.Upload(ctxBG, session(bob, 1), &protocol.UploadReq{FileId: start.FileId})
		wantCode(t, err, common.ErrorCode_NOT_FOUND) // not bob's

		// Not complete: it cannot be sent yet.
		ref := &common.FileRef{FileId: start.FileId, Name: "cat.png", Mime: "image/png",
			Size: int64(len(data)), Sha256: sum[:]}
		_, err = e.svc.Send(ctxBG, session(alice, 1), fileReq(t, "early", bob, "", ref))
		wantCode(t, err, common.ErrorCode_NOT_FOUND)

		second := data[protocol.MaxFileChunk : 2*protocol.MaxFileChunk]
		if _, err := chunk(protocol.MaxFileChunk, second); err != nil {
			t.Fatal(err)
		}
		r, err := chunk(2*protocol.MaxFileChunk, data[2*protocol.MaxFileChunk:])
		if err != nil || !r.Complete || r.NextOffset != int64(len(data)) {
			t.Fatalf("last chunk = %+v, %v", r, err)
		}
		if b, _, err := e.download(alice, start.FileId); err != nil || !bytes.Equal(b, data) {
			t.Fatalf("download %d bytes, %v", len(b), err)
		}
	})
}

func TestFiles_Refusals(t *testing.T) {
	forEachFileStore(t, func(t *testing.T, e *env) {
		e.svc.cfg.MaxFileSize = 100 << 10
		e.svc.cfg.MaxUploads = 2
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		sum := sha256.Sum256(nil)
		start := func(size int64, mime, name string) error {
			_, err := e.svc.Upload(ctxBG, session(alice, 1), &protocol.UploadReq{Size: size,
				Sha256: sum[:], Mime: mime, Name: name})
			return err
		}
		wantCode(t, start(100<<10+1, "text/plain", "a.txt"), common.ErrorCode_TOO_LARGE)
		wantCode(t, start(0, "text/plain", "a.txt"), common.ErrorCode_BAD_REQUEST)
		wantCode(t, start(10, "text", "a.txt"), common.ErrorCode_BAD_REQUEST)
		wantCode(t, start(10, "text/plain", "dir/a.txt"), common.ErrorCode_BAD_REQUEST)
		_, err := e.svc.Upload(ctxBG, session(alice, 1), &protocol.UploadReq{Size: 1 << 16,
			Sha256: sum[:], Mime: "a/b", Name: "x", Data: make([]byte, protocol.MaxFileChunk+1)})
		wantCode(t, err, common.ErrorCode_TOO_LARGE)

		// Bytes that do not hash to sha256 drop the upload.
		data := randomBytes(t, 1000)
		resp, err := e.svc.Upload(ctxBG, session(alice, 1), &protocol.UploadReq{Size: 1000,
			Sha256: sum[:], Mime: "a/b", Name: "x", Data: data})
		wantCode(t, err, common.ErrorCode_BAD_REQUEST)
		if resp != nil {
			t.Fatalf("mismatch answered %+v", resp)
		}
		var n int64
		if err := e.db.Model(&fileRow{}).Count(&n).Error; err != nil || n != 0 {
			t.Fatalf("%d file rows after the mismatch (%v)", n, err)
		}

		// A ref that misdescribes the upload, or a file of someone else's.
		ref := e.upload(t, alice, "x.bin", "application/octet-stream", data)
		bad := *ref
		bad.Size++
		_, err = e.svc.Send(ctxBG, session(alice, 1), fileReq(t, "bad", bob, "", &bad))
		wantCode(t, err, common.ErrorCode_BAD_REQUEST)
		_, err = e.svc.Send(ctxBG, session(bob, 1), fileReq(t, "steal", alice, "", ref))
		wantCode(t, err, common.ErrorCode_NOT_FOUND)
		_, err = e.svc.Send(ctxBG, session(alice, 1), &protocol.SendReq{ClientMsgId: "junk",
			ToUserId: bob, ContentType: common.ContentType_FILE, Content: []byte("junk")})
		wantCode(t, err, common.ErrorCode_BAD_REQUEST)

		// The cap on unfinished uploads.
		wantCode(t, start(10, "a/b", "1"), common.ErrorCode_OK)
		wantCode(t, start(10, "a/b", "2"), common.ErrorCode_OK)
		wantCode(t, start(10, "a/b", "3"), common.ErrorCode_RATE_LIMITED)
	})
}

func TestFiles_RecallAndReadRules(t *testing.T) {
	forEachFileStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		carol, dave := e.register(t, "carol"), e.register(t, "dave")
		data := randomBytes(t, 5000)

		// A recall takes the file from the peer, not from its owner.
		ref := e.upload(t, alice, "a.txt", "text/plain", data)
		ack, err := e.svc.Send(ctxBG, session(alice, 1), fileReq(t, "p", bob, "", ref))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.download(bob, ref.FileId); err != nil {
			t.Fatalf("bob before the recall: %v", err)
		}
		if _, err := e.svc.Recall(ctxBG, session(alice, 1), &protocol.RecallReq{
			ClientMsgId: "r", ConvId: ack.ConvId, Seq: ack.Seq}); err != nil {
			t.Fatal(err)
		}
		_, _, err = e.download(bob, ref.FileId)
		wantCode(t, err, common.ErrorCode_NOT_FOUND)
		if _, _, err := e.download(alice, ref.FileId); err != nil {
			t.Fatalf("alice after the recall: %v", err)
		}
		// A file message may not be edited into something else.
		ack2, err := e.svc.Send(ctxBG, session(alice, 1), fileReq(t, "p2", bob, "", ref))
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.svc.Edit(ctxBG, session(alice, 1), &protocol.EditReq{ClientMsgId: "e",
			ConvId: ack2.ConvId, Seq: ack2.Seq, ContentType: common.ContentType_TEXT,
			Content: []byte("x")})
		wantCode(t, err, common.ErrorCode_BAD_REQUEST)

		// In a group: a member who joined later, and one who cleared, read
		// it no more than the message.
		conv := e.group(t, alice, "g", carol)
		ref2 := e.upload(t, alice, "b.txt", "text/plain", data)
		_, err = e.svc.Send(ctxBG, session(alice, 1), fileReq(t, "g", 0, conv, ref2))
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.manage(alice, conv, common.GroupAction_ADD, []int64{dave}, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = e.download(dave, ref2.FileId)
		wantCode(t, err, common.ErrorCode_NOT_FOUND)
		if _, _, err := e.download(carol, ref2.FileId); err != nil {
			t.Fatalf("carol: %v", err)
		}
		if _, err := e.svc.ClearConv(ctxBG, session(carol, 1),
			&protocol.ClearConvReq{ConvId: conv}); err != nil {
			t.Fatal(err)
		}
		_, _, err = e.download(carol, ref2.FileId)
		wantCode(t, err, common.ErrorCode_NOT_FOUND)
	})
}

func TestFiles_PruneRemovesStale(t *testing.T) {
	forEachFileStore(t, func(t *testing.T, e *env) {
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		data := randomBytes(t, 2*protocol.MaxFileChunk)
		sent := e.upload(t, alice, "sent", "a/b", data)
		unsent := e.upload(t, alice, "unsent", "a/b", data)
		sum := sha256.Sum256(data)
		stale, err := e.svc.Upload(ctxBG, session(alice, 1), &protocol.UploadReq{Size: 1 << 20,
			Sha256: sum[:], Mime: "a/b", Name: "stale", Data: data[:protocol.MaxFileChunk]})
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.svc.Send(ctxBG, session(alice, 1), fileReq(t, "s", bob, "", sent))
		if err != nil {
			t.Fatal(err)
		}

		// Within the retention nothing goes.
		if n, err := e.svc.pruneFiles(ctxBG); err != nil || n != 0 {
			t.Fatalf("early prune = %d, %v", n, err)
		}
		later := e.svc.cfg.FileRetention + time.Minute
		e.svc.now = func() time.Time { return time.Now().Add(later) }
		t.Cleanup(func() { e.svc.now = time.Now })
		if n, err := e.svc.pruneFiles(ctxBG); err != nil || n != 2 {
			t.Fatalf("prune = %d, %v; want the unsent file and the stale upload", n, err)
		}
		if _, _, err := e.download(bob, sent.FileId); err != nil {
			t.Fatalf("the sent file: %v", err)
		}
		_, _, err = e.download(alice, unsent.FileId)
		wantCode(t, err, common.ErrorCode_NOT_FOUND)
		_, err = e.svc.Upload(ctxBG, session(alice, 1), &protocol.UploadReq{FileId: stale.FileId})
		wantCode(t, err, common.ErrorCode_NOT_FOUND)
		var chunks int64
		if err := e.db.Model(&fileChunkRow{}).Where("file_id IN ?",
			[]string{unsent.FileId, stale.FileId}).Count(&chunks).Error; err != nil || chunks != 0 {
			t.Fatalf("%d chunks of pruned files left (%v)", chunks, err)
		}
		if d, ok := e.svc.blobs.(*dirBlobs); ok {
			if _, err := os.Stat(d.path(unsent.FileId)); !os.IsNotExist(err) {
				t.Fatalf("bytes of the pruned file: %v", err)
			}
		}
	})
}

// In a batch, a FILE send takes the savepoint path with its neighbours and
// records its reference in order; a batch of text alone stays on the plain
// path.
func TestFiles_BatchKeepsOrderAndTextStaysPlain(t *testing.T) {
	forEachFileStore(t, func(t *testing.T, e *env) {
		if !e.svc.consecutiveIDs {
			t.Skip("this server allots a statement's ids interleaved: no plain path")
		}
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		e.sendN(t, alice, bob, 1, "first") // creates the conversation
		ref := e.upload(t, alice, "a.txt", "text/plain", randomBytes(t, 100))
		storeRun := func(reqs ...*protocol.SendReq) {
			t.Helper()
			// Straight to the group commit, as one group, so that the
			// batch holds them all whatever the timing.
			items := make([]*batchItem, len(reqs))
			for i, req := range reqs {
				if err := e.svc.validateSend(req); err != nil {
					t.Fatal(err)
				}
				m := e.svc.newMessage(session(alice, 1), req, p2pConvID(alice, bob))
				items[i] = &batchItem{w: e.svc.sendWrite(session(alice, 1), m),
					done: make(chan batchResult, 1)}
			}
			e.svc.commitBatch(items)
			for _, it := range items {
				if r := <-it.done; r.err != nil {
					t.Fatalf("%s: %v", it.w.m.ClientMsgID, r.err)
				}
			}
		}
		storeRun(textReq("t1", bob), fileReq(t, "f1", bob, "", ref), textReq("t2", bob))
		if n := e.svc.stats.plainBatches.Load(); n != 0 {
			t.Fatalf("plain batches = %d with a FILE send in the batch", n)
		}
		var refs []fileRefRow
		if err := e.db.Find(&refs).Error; err != nil || len(refs) != 1 || refs[0].Seq != 3 {
			t.Fatalf("references %+v (%v), want the one at seq 3", refs, err)
		}
		storeRun(textReq("t3", bob), textReq("t4", bob))
		if n := e.svc.stats.plainBatches.Load(); n != 1 {
			t.Fatalf("plain batches = %d after a text-only batch, want 1", n)
		}
		msgs := e.syncAll(t, bob, p2pConvID(alice, bob))
		if got := seqsOf(msgs); len(got) != 6 || msgs[2].ContentType != common.ContentType_FILE {
			t.Fatalf("bob reads %v", got)
		}
	})
}

// A chunk that a racing request stored first is answered with where the
// upload stands, and stored once; a directory upload commits its row only
// at its ends and, for the pruner, at most once a minute.
func TestFiles_RacingChunkAndRowCommits(t *testing.T) {
	forEachFileStore(t, func(t *testing.T, e *env) {
		alice := e.register(t, "alice")
		data := randomBytes(t, 3*protocol.MaxFileChunk)
		sum := sha256.Sum256(data)
		start, err := e.svc.Upload(ctxBG, session(alice, 1), &protocol.UploadReq{
			Size: int64(len(data)), Sha256: sum[:], Mime: "a/b", Name: "x",
			Data: data[:protocol.MaxFileChunk]})
		if err != nil {
			t.Fatal(err)
		}
		row := func() fileRow {
			t.Helper()
			var f fileRow
			if err := e.db.Where("id = ?", start.FileId).Take(&f).Error; err != nil {
				t.Fatal(err)
			}
			return f
		}
		// The row as a request read it before a racing one stored chunk 1.
		before := row()
		before.Received = protocol.MaxFileChunk
		stale := before
		mid := data[protocol.MaxFileChunk : 2*protocol.MaxFileChunk]
		if _, err := e.svc.storeChunk(ctxBG, &before, mid); err != nil {
			t.Fatal(err)
		}
		resp, err := e.svc.storeChunk(ctxBG, &stale, mid)
		if err != nil || resp.NextOffset != 2*protocol.MaxFileChunk || resp.Complete {
			t.Fatalf("the stale chunk = %+v, %v; want where the upload stands", resp, err)
		}
		resp, err = e.svc.Upload(ctxBG, session(alice, 1), &protocol.UploadReq{
			FileId: start.FileId, Offset: 2 * protocol.MaxFileChunk,
			Data: data[2*protocol.MaxFileChunk:]})
		if err != nil || !resp.Complete {
			t.Fatalf("last chunk = %+v, %v", resp, err)
		}
		if b, _, err := e.download(alice, start.FileId); err != nil || !bytes.Equal(b, data) {
			t.Fatalf("download %d bytes, %v", len(b), err)
		}

		if _, ok := e.svc.blobs.(*dirBlobs); !ok {
			return
		}
		data = randomBytes(t, 4*protocol.MaxFileChunk)
		sum = sha256.Sum256(data)
		second, err := e.svc.Upload(ctxBG, session(alice, 1), &protocol.UploadReq{
			Size: int64(len(data)), Sha256: sum[:], Mime: "a/b", Name: "y",
			Data: data[:protocol.MaxFileChunk]})
		if err != nil {
			t.Fatal(err)
		}
		first := second.FileId
		var f fileRow
		read := func() fileRow {
			t.Helper()
			if err := e.db.Where("id = ?", first).Take(&f).Error; err != nil {
				t.Fatal(err)
			}
			return f
		}
		created := read()
		chunk := func(off int) {
			t.Helper()
			if _, err := e.svc.Upload(ctxBG, session(alice, 1), &protocol.UploadReq{FileId: first,
				Offset: int64(off), Data: data[off : off+protocol.MaxFileChunk]}); err != nil {
				t.Fatal(err)
			}
		}
		chunk(protocol.MaxFileChunk)
		if got := read(); got.Received != 0 || got.UpdatedMs != created.UpdatedMs {
			t.Fatalf("a chunk changed the row: %+v, was %+v", got, created)
		}
		later := 2 * touchEvery
		e.svc.now = func() time.Time { return time.Now().Add(later) }
		t.Cleanup(func() { e.svc.now = time.Now })
		resp, err = e.svc.Upload(ctxBG, session(alice, 1), &protocol.UploadReq{FileId: first})
		if err != nil || resp.NextOffset != 2*protocol.MaxFileChunk {
			t.Fatalf("resume = %+v, %v", resp, err)
		}
		chunk(2 * protocol.MaxFileChunk)
		touched := read()
		if touched.Received != 0 ||
			touched.UpdatedMs < created.UpdatedMs+touchEvery.Milliseconds() {
			t.Fatalf("a chunk a minute later left the row %+v, was %+v", touched, created)
		}
		chunk(3 * protocol.MaxFileChunk)
		if got := read(); got.State != fileComplete || got.Received != got.Size {
			t.Fatalf("complete row %+v", got)
		}
	})
}

// A file sent into more conversations than one access check reads
// references of must still be readable in every one of them.
func TestFiles_ReadableInEveryConversationOfAWideForward(t *testing.T) {
	e := newEnv(t, sqliteConfig(t))
	alice := e.register(t, "alice")
	ref := e.upload(t, alice, "notice.txt", "text/plain", []byte("office closed friday"))
	var readers []int64
	for i := range maxFileRefs + 6 {
		u := e.register(t, fmt.Sprintf("reader%02d", i))
		if _, err := e.svc.Send(ctxBG, session(alice, 1),
			fileReq(t, fmt.Sprintf("f%d", i), u, "", ref)); err != nil {
			t.Fatalf("send to reader %d: %v", i, err)
		}
		readers = append(readers, u)
	}
	for _, u := range readers {
		if _, _, err := e.download(u, ref.FileId); err != nil {
			t.Fatalf("user %d, one of %d recipients, downloads: %v", u, len(readers), err)
		}
	}
}

// The pruner deleting an idle file between a FILE send's check of it and
// its commit must not leave a message naming a file that is gone: the send
// fails (NOT_FOUND), or the file stays. SQLite's one writer cannot
// interleave them; MySQL's connections can.
func TestFiles_SendRacingPruneNamesNoDeletedFile(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		if e.cfg.DBDriver != DriverMySQL {
			t.Skip("one writer: a send and a prune cannot interleave")
		}
		alice, bob := e.register(t, "alice"), e.register(t, "bob")
		ref := e.upload(t, alice, "old.txt", "text/plain", []byte("idle for a day"))
		old := e.svc.now().Add(-2 * e.svc.cfg.FileRetention).UnixMilli()
		if err := e.db.Model(&fileRow{}).Where("id = ?", ref.FileId).
			Update("updated_ms", old).Error; err != nil {
			t.Fatal(err)
		}
		var armed, pruned atomic.Bool
		armed.Store(true)
		name := "test:prune_after_file_check"
		err := e.svc.db.Callback().Query().After("gorm:query").Register(name, func(db *gorm.DB) {
			if _, ok := db.Statement.Model.(*fileRow); ok && armed.Swap(false) {
				n, err := e.svc.pruneFiles(ctxBG)
				if err != nil {
					t.Errorf("prune: %v", err)
				}
				pruned.Store(n == 1)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.svc.db.Callback().Query().Remove(name) })
		_, err = e.svc.Send(ctxBG, session(alice, 1), fileReq(t, "late", bob, "", ref))
		if !pruned.Load() {
			t.Fatal("the prune did not delete the file between the send's check and its commit")
		}
		wantCode(t, err, common.ErrorCode_NOT_FOUND)
		if n := e.countRows(t, &fileRefRow{}, "file_id = ?", ref.FileId); n != 0 {
			t.Fatalf("%d references stored to the pruned file", n)
		}
	})
}

// TestCheckFileName_SaysWhatIsWrong checks that each refusal of a file name
// names its own fault, so that the user knows what to rename.
func TestCheckFileName_SaysWhatIsWrong(t *testing.T) {
	for _, tc := range []struct {
		name string
		want string // in the error; empty when the name is accepted
	}{
		{name: "report.pdf"},
		{name: "naïve 名前 .txt"},
		{name: "...txt"},
		{name: "", want: "name is empty"},
		{name: strings.Repeat("a", maxFileName+1), want: "name is over 255 bytes"},
		{name: "bad\xffutf8.txt", want: "name is not valid UTF-8"},
		{name: ".", want: `name cannot be "." or ".."`},
		{name: "..", want: `name cannot be "." or ".."`},
		{name: "dir/a.txt", want: "name must be a file name without directories (no / or \\)"},
		{name: `dir\a.txt`, want: "name must be a file name without directories (no / or \\)"},
		{name: "esc\x1b[31mred.txt", want: "name has control characters"},
		{name: "tab\there.txt", want: "name has control characters"},
		{name: "c1\u0085.txt", want: "name has control characters"},
	} {
		err := checkFileName(tc.name)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("checkFileName(%q) = %v, want accepted", tc.name, err)
		case tc.want != "" && (!errors.Is(err, ErrBadRequest) ||
			!strings.Contains(err.Error(), tc.want)):
			t.Errorf("checkFileName(%q) = %v, want BAD_REQUEST saying %q", tc.name, err, tc.want)
		}
	}
}
