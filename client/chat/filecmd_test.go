package chat_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/client/clienttest"
	"github.com/resonance-im/resonance/internal/testwait"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// /recall takes the user's own FILE message, which the server recalls; /edit
// says a file cannot be edited instead of calling it an event.
func TestRun_RecallTakesAFileMessage(t *testing.T) {
	s := startServer(t)
	_, bobID := newUser(t, s, "bob")
	alice, _ := newUser(t, s, "alice")
	ref := &common.FileRef{FileId: "f1", Name: "notes.txt", Mime: "text/plain", Size: 3,
		Sha256: make([]byte, 32)}
	if _, err := alice.SendFile(context.Background(), client.SendParams{ToUserID: bobID},
		ref); err != nil {
		t.Fatal(err)
	}
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret",
		"--to", "bob")
	waitOutput(t, r.out, "alice #1: [file] notes.txt (3 B)", 1)

	r.say(t, "/edit 1 other")
	waitOutput(t, r.out, "! #1 is a file, which cannot be edited; /recall #1 takes it back", 1)
	r.say(t, "/recall #1")
	testwait.For(t, 5*time.Second, "the recall of #1 at the server", func() bool {
		return s.Requests(protocol.Op_RECALL) == 1
	})
	if n := s.Requests(protocol.Op_EDIT); n != 0 {
		t.Fatalf("%d edits asked of the server, want none", n)
	}
}

// /send-file and /save take a path in double quotes, as /group new takes a
// name, expand ~/ to the home directory, and /save into a directory saves
// under the file's own name there, never overwriting a file.
func TestRun_FilePathsTakeQuotesHomeAndDirectories(t *testing.T) {
	s := startServer(t)
	_, bobID := newUser(t, s, "bob")
	alice, _ := newUser(t, s, "alice")
	ref := &common.FileRef{FileId: "f1", Name: "notes.txt", Mime: "text/plain", Size: 3,
		Sha256: make([]byte, 32)}
	if _, err := alice.SendFile(context.Background(), client.SendParams{ToUserID: bobID},
		ref); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	dir := filepath.Join(home, "with space")
	for _, name := range []string{"empty.txt", "notes.txt"} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret",
		"--to", "bob")
	waitOutput(t, r.out, "alice #1: [file] notes.txt (3 B)", 1)

	// An empty file is refused before any upload: the path was found.
	empty := filepath.Join(dir, "empty.txt")
	// What to do instead is said: it is never overwritten.
	exists := filepath.Join(dir, "notes.txt") + ": file exists; /save #<seq> <path> " +
		"saves to another name"
	for _, tc := range []struct {
		line, want string
		n          int // the times want is printed by now
	}{
		{line: `/send-file "` + empty + `"`, want: "! " + empty + " is empty", n: 1},
		{line: `/send-file ` + empty, want: "! " + empty + " is empty", n: 2},
		{line: `/send-file ~/with space/empty.txt`, want: "! " + empty + " is empty", n: 3},
		{line: `/save #1 "~/with space/"`, want: exists, n: 1},
		{line: `/save #1 ~/with space`, want: exists, n: 2},
		{line: `/save #1 "` + dir + `/notes.txt"`, want: exists, n: 3},
		{line: `/send-file "` + empty, want: "! usage: /send-file <path>", n: 1},
	} {
		r.say(t, tc.line)
		waitOutput(t, r.out, tc.want, tc.n)
	}
}

// A file over the limit the server reported at login is refused before
// any upload, in MiB; from a server that reports none, the first is
// refused by the server, without announcing an upload, and the next
// before any. A larger upload tells its progress by quarters.
func TestRun_SendFileSaysTheLimitAndProgress(t *testing.T) {
	for _, tc := range []struct {
		name    string
		omit    bool
		uploads int
	}{
		{name: "reported", uploads: 0},
		{name: "learnt from the refusal", omit: true, uploads: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testSendFileLimit(t, clienttest.Options{MaxFileSize: 2 << 20, OmitLimits: tc.omit},
				tc.uploads)
		})
	}
}

func testSendFileLimit(t *testing.T, opts clienttest.Options, uploads int) {
	s := startServerWith(t, opts)
	newUser(t, s, "bob")
	newUser(t, s, "alice")
	dir := t.TempDir()
	for name, size := range map[string]int{"big.bin": 3 << 20, "mid.bin": 3 << 19} {
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret",
		"--to", "bob")
	waitOutput(t, r.out, "* chatting with bob", 1)

	const refused = "! big.bin (3.0 MiB) is over the server's limit of 2.0 MiB; not sent"
	r.say(t, "/send-file "+filepath.Join(dir, "big.bin"))
	waitOutput(t, r.out, refused, 1)
	r.say(t, "/send-file "+filepath.Join(dir, "big.bin"))
	waitOutput(t, r.out, refused, 2)
	if n := s.Requests(protocol.Op_UPLOAD); n != uploads {
		t.Fatalf("%d UPLOADs, want %d", n, uploads)
	}
	r.say(t, "/send-file "+filepath.Join(dir, "mid.bin"))
	waitOutput(t, r.out, "alice #1: [file] mid.bin (1.5 MiB)", 1)
	out := r.out.String()
	if strings.Contains(out, "uploading big.bin") {
		t.Fatalf("the refused upload was announced:\n%s", out)
	}
	want := "* uploading mid.bin (1.5 MiB)\n* uploading mid.bin: 25%\n" +
		"* uploading mid.bin: 50%\n* uploading mid.bin: 75%\n"
	if !strings.Contains(out, want) || strings.Count(out, "uploading") != 4 {
		t.Fatalf("want the progress\n%s in:\n%s", want, out)
	}
}

// uploadFile uploads data as name through c and sends it to the user to.
func uploadFile(t *testing.T, c *client.Client, to int64, name string, data []byte) {
	t.Helper()
	ctx := context.Background()
	ref, err := c.Upload(ctx, bytes.NewReader(data), client.UploadParams{Name: name,
		Size: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SendFile(ctx, client.SendParams{ToUserID: to}, ref); err != nil {
		t.Fatal(err)
	}
}

// /save downloads into a temporary file beside the target and renames it
// into place only once the bytes are checked, so a run killed mid-download
// leaves no truncated file under the final name; a temporary file left by
// such a run does not block the next try (here, bytes not the file's start
// are downloaded over). A larger download tells its
// progress as an upload does.
func TestRun_SaveWritesTheTargetOnlyWhenComplete(t *testing.T) {
	s := startServer(t)
	_, bobID := newUser(t, s, "bob")
	alice, _ := newUser(t, s, "alice")
	data := make([]byte, 3<<19) // 1.5 MiB, many chunks
	for i := range data {
		data[i] = byte(i * 7)
	}
	uploadFile(t, alice, bobID, "partial.bin", data)
	dir := t.TempDir()
	target := filepath.Join(dir, "partial.bin")
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret",
		"--to", "bob")
	waitOutput(t, r.out, "alice #1: [file] partial.bin (1.5 MiB)", 1)

	release := s.HoldTransfers()
	r.say(t, "/save #1 "+target)
	testwait.For(t, 5*time.Second, "a download held after its first chunk", func() bool {
		return s.HeldTransfers() == 1
	})
	if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("half-way through the download, %s: %v; want it absent", target, err)
	}
	release()
	waitOutput(t, r.out, "* saved partial.bin (1.5 MiB) to "+target, 1)
	checkFile(t, target, data)

	// A link where the temporary file goes is not written through.
	linked := filepath.Join(dir, "linked.bin")
	if err := os.Symlink(filepath.Join(dir, "elsewhere"), linked+".part"); err != nil {
		t.Fatal(err)
	}
	r.say(t, "/save #1 "+linked)
	waitOutput(t, r.out, "! "+linked+".part is not a regular file; not saved", 1)
	if _, err := os.Lstat(filepath.Join(dir, "elsewhere")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("written through the link: %v", err)
	}

	// A run killed mid-download leaves its temporary file behind.
	again := filepath.Join(dir, "again.bin")
	if err := os.WriteFile(again+".part", []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.say(t, "/save #1 "+again)
	waitOutput(t, r.out, "* saved partial.bin (1.5 MiB) to "+again, 1)
	checkFile(t, again, data)
	if _, err := os.Lstat(again + ".part"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the temporary file stays: %v", err)
	}
	want := "* downloading partial.bin (1.5 MiB)\n* downloading partial.bin: 25%\n" +
		"* downloading partial.bin: 50%\n* downloading partial.bin: 75%\n"
	if out := r.out.String(); !strings.Contains(out, want) {
		t.Fatalf("want the progress\n%s in:\n%s", want, out)
	}
}

// A /save cut short resumes from the bytes its temporary file holds: only
// the rest is downloaded. A temporary file whose bytes are not the file's
// start (another file of that name) is downloaded over from the start.
func TestRun_SaveResumesFromTheTemporaryFile(t *testing.T) {
	s := startServer(t)
	_, bobID := newUser(t, s, "bob")
	alice, _ := newUser(t, s, "alice")
	const chunk = protocol.MaxFileChunk
	data := make([]byte, 10*chunk)
	for i := range data {
		data[i] = byte(i * 13)
	}
	uploadFile(t, alice, bobID, "resumed.bin", data)
	dir := t.TempDir()
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret",
		"--to", "bob")
	waitOutput(t, r.out, "alice #1: [file] resumed.bin", 1)

	target := filepath.Join(dir, "resumed.bin")
	if err := os.WriteFile(target+".part", data[:8*chunk], 0o644); err != nil {
		t.Fatal(err)
	}
	r.say(t, "/save #1 "+target)
	waitOutput(t, r.out, "* saved resumed.bin (320.0 KiB) to "+target, 1)
	checkFile(t, target, data)
	if n := s.Requests(protocol.Op_DOWNLOAD); n != 2 {
		t.Fatalf("%d DOWNLOADs, want the 2 chunks the temporary file lacked", n)
	}
	waitOutput(t, r.out, "* resuming resumed.bin from 256.0 KiB", 1)

	other := filepath.Join(dir, "other.bin")
	wrong := append([]byte{^data[0]}, data[1:4*chunk]...)
	if err := os.WriteFile(other+".part", wrong, 0o644); err != nil {
		t.Fatal(err)
	}
	r.say(t, "/save #1 "+other)
	waitOutput(t, r.out, "* saved resumed.bin (320.0 KiB) to "+other, 1)
	checkFile(t, other, data)
	if n := s.Requests(protocol.Op_DOWNLOAD); n != 2+6+10 {
		t.Fatalf("%d DOWNLOADs, want 2, then 6 resumed and 10 over", n)
	}
}

// checkFile fails t unless the file at path holds want.
func checkFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s holds %d bytes, not the %d sent", path, len(got), len(want))
	}
}

// A name /save takes from the sender is made safe: no leading dot (a
// sender could plant .profile), no bidi, zero-width or other invisible or
// control character; the user is told. A path the user types is used as
// given.
func TestRun_SaveMakesTheSendersNameSafe(t *testing.T) {
	s := startServer(t)
	_, bobID := newUser(t, s, "bob")
	alice, _ := newUser(t, s, "alice")
	for _, name := range []string{".bashrc", "invoice\u202egpj.exe", "a\u200bb\x01.txt"} {
		uploadFile(t, alice, bobID, name, []byte("data"))
	}
	dir := t.TempDir()
	t.Chdir(dir)
	r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret",
		"--to", "bob")
	waitOutput(t, r.out, "alice #3: [file]", 1)

	for _, tc := range []struct{ line, saved string }{
		{line: "/save #1", saved: "_.bashrc"},
		{line: "/save #2 " + dir + "/", saved: filepath.Join(dir, "invoice_gpj.exe")},
		{line: "/save #3 .", saved: filepath.Join(".", "a_b_.txt")},
		{line: "/save #1 " + filepath.Join(dir, ".bashrc"), saved: filepath.Join(dir, ".bashrc")},
	} {
		r.say(t, tc.line)
		waitOutput(t, r.out, " to "+tc.saved+"\n", 1)
	}
	out := r.out.String()
	for _, want := range []string{
		"* saving as _.bashrc: the sender's name starts with a dot\n",
		"* saving as invoice_gpj.exe: the sender's name has invisible or control characters\n",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("want %q in:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "* saving as"); n != 3 {
		t.Fatalf("%d renames told, want 3:\n%s", n, out)
	}
	checkPrintable(t, out)
}

// Ctrl-C during an upload or a download says the transfer was cancelled,
// in those words, not the SDK's "context canceled"; a download keeps what
// it has, to resume from.
func TestRun_CtrlCDuringATransferSaysCancelled(t *testing.T) {
	s := startServer(t)
	_, bobID := newUser(t, s, "bob")
	alice, _ := newUser(t, s, "alice")
	data := make([]byte, 3<<16) // several chunks
	uploadFile(t, alice, bobID, "big.bin", data)
	dir := t.TempDir()
	path := filepath.Join(dir, "twenty.bin")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct{ line, want string }{
		{line: "/send-file " + path, want: "! upload of twenty.bin cancelled; not sent"},
		{line: "/save #1 " + filepath.Join(dir, "saved.bin"),
			want: "! download of big.bin cancelled; /save it to " +
				filepath.Join(dir, "saved.bin") + " again to resume"},
	} {
		r := startChat(t, "--addr", s.Addr(), "--user", "alice", "--password", "pw-secret",
			"--to", "bob")
		waitOutput(t, r.out, "alice #1: [file] big.bin", 1)
		release := s.HoldTransfers()
		r.say(t, tc.line)
		testwait.For(t, 5*time.Second, "a transfer held", func() bool {
			return s.HeldTransfers() == i+1
		})
		r.cancel() // Ctrl-C
		_ = r.wait(t)
		release()
		out := r.out.String()
		if !strings.Contains(out, tc.want) || strings.Contains(out, "context canceled") {
			t.Fatalf("want %q, and no \"context canceled\", in:\n%s", tc.want, out)
		}
	}
	// The download's first chunk is kept, to resume from.
	if info, err := os.Lstat(filepath.Join(dir, "saved.bin.part")); err != nil ||
		info.Size() != protocol.MaxFileChunk {
		t.Fatalf("the cancelled download's temporary file: %v, %v", info, err)
	}
}
