package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/internal/testwait"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// cutReader reads from r and, once past cutAt bytes, calls cut once: the
// test's way to drop a connection in the middle of an upload.
type cutReader struct {
	r     io.Reader
	read  int
	cutAt int
	once  sync.Once
	cut   func()
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.read >= c.cutAt {
		c.once.Do(c.cut)
	}
	n, err := c.r.Read(p)
	c.read += n
	return n, err
}

// Files over real sockets with the Go SDK: an upload resumes on the
// Session's next connection after its first one drops mid-file, the FILE
// message reaches the peer, who downloads the same bytes into the all-in-one
// process's file directory and back; a stranger and a forged id get
// NOT_FOUND, and so does the peer once the message is recalled.
func TestSession_FileRoundTrip(t *testing.T) {
	cfg := baseConfig(t, RoleAll)
	cfg.InternalSecret = hostileSecret
	addr := startSystem(t, cfg).GatewayAddr().String()
	alice := register(t, addr, "alice", "phone")
	bob := register(t, addr, "bob", "phone")
	carol := register(t, addr, "carol", "phone")
	aliceS := openSession(t, addr, alice.name, "tablet")
	bobS := openSession(t, addr, bob.name, "tablet")
	_, bobSt := collect(t, aliceS), collect(t, bobS)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	data := make([]byte, 5*protocol.MaxFileChunk+999)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	cuts := 0
	r := &cutReader{r: bytes.NewReader(data), cutAt: 2*protocol.MaxFileChunk + 1, cut: func() {
		c, err := aliceS.Client(ctx)
		if err != nil {
			t.Error(err)
			return
		}
		cuts++
		_ = c.Close()
	}}
	ref, err := aliceS.Upload(ctx, struct{ io.Reader }{r}, client.UploadParams{Name: "photo.png",
		Size: int64(len(data)), SHA256: sum[:], Width: 640, Height: 480})
	if err != nil || cuts != 1 || ref.Mime != "image/png" || ref.GetWidth() != 640 {
		t.Fatalf("Upload = %+v, %v after %d cuts", ref, err, cuts)
	}
	stored, _ := filepath.Glob(filepath.Join(cfg.DataDir, "files", ref.FileId[:2], ref.FileId))
	if len(stored) != 1 {
		t.Fatalf("no file %s under %s/files", ref.FileId, cfg.DataDir)
	}
	if b, err := os.ReadFile(stored[0]); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("the stored bytes differ (%d, %v)", len(b), err)
	}

	ack, err := aliceS.SendFile(ctx, client.SendParams{ToUserID: bob.id}, ref)
	if err != nil {
		t.Fatalf("SendFile: %v", err)
	}
	bobSt.waitSeqs(t, "bob", ack.ConvId, []int64{ack.Seq})
	bobSt.mu.Lock()
	m := bobSt.msgs[len(bobSt.msgs)-1]
	bobSt.mu.Unlock()
	got, err := client.FileRefOf(m)
	if err != nil || got.FileId != ref.FileId || got.Name != "photo.png" || got.Size != ref.Size {
		t.Fatalf("FileRefOf(%+v) = %+v, %v", m, got, err)
	}
	var out bytes.Buffer
	desc, err := bobS.Download(ctx, got.FileId, &out)
	if err != nil || !bytes.Equal(out.Bytes(), data) || desc.Mime != "image/png" {
		t.Fatalf("Download = %+v, %v (%d bytes)", desc, err, out.Len())
	}

	c, err := client.Dial(ctx, addr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Login(ctx, client.LoginParams{Username: carol.name, Password: hostilePassword,
		DeviceID: "laptop"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{ref.FileId, "0123456789abcdef0123456789abcdef"} {
		_, err := c.Download(ctx, id, io.Discard)
		if client.CodeOf(err) != common.ErrorCode_NOT_FOUND {
			t.Errorf("carol downloads %s: %v, want NOT_FOUND", id, err)
		}
	}
	big := client.UploadParams{Name: "big.bin", Size: 26 << 20, SHA256: sum[:]}
	if _, err := c.Upload(ctx, bytes.NewReader(data), big); client.CodeOf(err) !=
		common.ErrorCode_TOO_LARGE {
		t.Errorf("26 MiB upload: %v, want TOO_LARGE", err)
	}
	bad := client.UploadParams{Name: "bad.bin", Size: int64(len(data)), SHA256: make([]byte, 32)}
	if _, err := c.Upload(ctx, bytes.NewReader(data), bad); client.CodeOf(err) !=
		common.ErrorCode_BAD_REQUEST {
		t.Errorf("upload with a wrong sha256: %v, want BAD_REQUEST", err)
	}

	if _, err := aliceS.Recall(ctx, ack.ConvId, ack.Seq); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 10*time.Second, "bob refused after the recall", func() bool {
		_, err := bobS.Download(ctx, ref.FileId, io.Discard)
		return client.CodeOf(err) == common.ErrorCode_NOT_FOUND
	})
	if _, err := aliceS.Download(ctx, ref.FileId, io.Discard); err != nil {
		t.Errorf("alice after her recall: %v", err)
	}
}
