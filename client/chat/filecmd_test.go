package chat_test

import (
	"context"
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
