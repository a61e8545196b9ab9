package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/client/clienttest"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// MimeOf gives what the server takes: a bare media type, without the
// charset Go's table adds to text types.
func TestMimeOf(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{name: "notes.txt", want: "text/plain"},
		{name: "cat.PNG", want: "image/png"},
		{name: "report.pdf", want: "application/pdf"},
		{name: "blob", want: "application/octet-stream"},
		{name: "x.unknownext", want: "application/octet-stream"},
	} {
		if got := client.MimeOf(tc.name); got != tc.want {
			t.Errorf("MimeOf(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// DownloadFrom goes on from the bytes held: it asks only for the rest,
// writes only the rest, and checks the whole against the file's SHA-256;
// held bytes that are not the file's start fail with ErrFileMismatch.
func TestSession_DownloadFromGoesOnFromTheBytesHeld(t *testing.T) {
	s := startServer(t, clienttest.Options{})
	alice, _ := loginNew(t, s, "alice", client.Options{})
	loginNew(t, s, "bob", client.Options{})
	ctx := context.Background()
	data := make([]byte, 3*protocol.MaxFileChunk+100)
	for i := range data {
		data[i] = byte(i * 5)
	}
	ref, err := alice.Upload(ctx, bytes.NewReader(data), client.UploadParams{Name: "f.bin",
		Size: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	sess := openSession(t, s, "alice", "phone", nil)
	held := 2 * protocol.MaxFileChunk
	before := s.Requests(protocol.Op_DOWNLOAD)
	var rest bytes.Buffer
	if _, err := sess.DownloadFrom(ctx, ref.FileId, bytes.NewReader(data[:held]),
		&rest); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rest.Bytes(), data[held:]) {
		t.Fatalf("wrote %d bytes, want the %d after those held", rest.Len(), len(data)-held)
	}
	if n := s.Requests(protocol.Op_DOWNLOAD) - before; n != 2 {
		t.Fatalf("%d DOWNLOADs, want 2 for the rest", n)
	}

	wrong := append([]byte{^data[0]}, data[1:held]...)
	_, err = sess.DownloadFrom(ctx, ref.FileId, bytes.NewReader(wrong), io.Discard)
	if !errors.Is(err, client.ErrFileMismatch) {
		t.Fatalf("DownloadFrom with wrong bytes held = %v, want %v", err, client.ErrFileMismatch)
	}
}
