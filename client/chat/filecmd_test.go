package chat_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
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
	exists := filepath.Join(dir, "notes.txt") + ": file exists"
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
