package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// A backup taken while messages are being sent starts a server of its own:
// a device logs in there with the token it had, and finds every message
// acked before the backup began, in seq order with no gap, and the file it
// was sent, byte for byte.
func TestBackup_RestoresWhileServerRuns(t *testing.T) {
	cfg := baseConfig(t, RoleAll)
	addr := startSystem(t, cfg).GatewayAddr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alice := register(t, addr, "alice", "phone")
	bob := register(t, addr, "bob", "phone")
	_, ac := dialFor(t, addr)
	if _, err := ac.Login(ctx, client.LoginParams{Username: alice.name,
		Password: hostilePassword, DeviceID: "laptop"}); err != nil {
		t.Fatalf("login %s: %v", alice.name, err)
	}
	bobLogin := bob.login

	data := make([]byte, 3*protocol.MaxFileChunk+17)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	ref, err := ac.Upload(ctx, bytes.NewReader(data), client.UploadParams{Name: "notes.bin",
		Size: int64(len(data)), SHA256: sum[:]})
	if err != nil {
		t.Fatalf("Upload: %v", err)
	}
	fileAck, err := ac.SendFile(ctx, client.SendParams{ToUserID: bob.id}, ref)
	if err != nil {
		t.Fatalf("SendFile: %v", err)
	}
	conv := fileAck.ConvId

	// Alice keeps sending through the backup; acked counts her acks.
	var acked atomic.Int64
	acked.Store(fileAck.Seq)
	stop := make(chan struct{})
	sent := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				sent <- nil
				return
			default:
			}
			ack, err := ac.Send(ctx, client.SendParams{ToUserID: bob.id,
				Content: []byte(fmt.Sprintf("m%d", i))})
			if err != nil {
				sent <- err
				return
			}
			acked.Store(ack.Seq)
		}
	}()
	time.Sleep(200 * time.Millisecond)
	before := acked.Load()
	to := filepath.Join(t.TempDir(), "backup")
	rep, err := Backup{DataDir: cfg.DataDir, To: to}.Run(ctx)
	close(stop)
	if err := <-sent; err != nil {
		t.Fatalf("Send during the backup: %v", err)
	}
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if rep.Users != 2 || rep.Messages < before || rep.Files != 1 || !rep.TokenKey {
		t.Fatalf("report %+v, want 2 users, at least %d messages, 1 file, the key", rep, before)
	}
	if _, err := os.Stat(filepath.Join(to, "nats")); !os.IsNotExist(err) {
		t.Fatalf("the backup holds the NATS store (%v)", err)
	}

	restored := baseConfig(t, RoleAll)
	restored.DataDir = to
	raddr := startSystem(t, restored).GatewayAddr().String()
	_, bc := dialFor(t, raddr)
	if _, err := bc.Login(ctx, client.LoginParams{Username: bob.name, Token: bobLogin.Token,
		DeviceID: "phone"}); err != nil {
		t.Fatalf("login %s with its token on the restored server: %v", bob.name, err)
	}
	var seqs []int64
	for after := int64(0); ; {
		page, err := bc.Sync(ctx, conv, after, 100)
		if err != nil {
			t.Fatalf("Sync after %d: %v", after, err)
		}
		for _, m := range page.Messages {
			seqs = append(seqs, m.Seq)
		}
		if !page.HasMore || len(page.Messages) == 0 {
			break
		}
		after = page.Messages[len(page.Messages)-1].Seq
	}
	if int64(len(seqs)) < before {
		t.Fatalf("restored %d messages, want at least the %d acked before the backup", len(seqs),
			before)
	}
	for i, s := range seqs {
		if s != int64(i+1) {
			t.Fatalf("restored seqs %v..., want 1, 2, 3, ... (seq %d at %d)", seqs[:i+1], s, i)
		}
	}
	var out bytes.Buffer
	if _, err := bc.Download(ctx, ref.FileId, &out); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("Download from the restored server: %v (%d bytes of %d)", err, out.Len(),
			len(data))
	}
	if _, err := bc.Send(ctx, client.SendParams{ToUserID: alice.id,
		Content: []byte("back")}); err != nil {
		t.Fatalf("Send on the restored server: %v", err)
	}
}

// Backup refuses what it cannot copy well, leaving nothing behind.
func TestBackup_Refuses(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "resonance.db"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	full := filepath.Join(dir, "full")
	if err := os.MkdirAll(full, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(full, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	notDB := filepath.Join(dir, "notdb")
	if err := os.MkdirAll(notDB, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(notDB, "resonance.db"), []byte("hello, world"),
		0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		b    Backup
		want string
	}{
		{"no store", Backup{DataDir: filepath.Join(dir, "none"), To: filepath.Join(dir, "a")},
			"no SQLite store"},
		{"target inside the data dir", Backup{DataDir: data, To: filepath.Join(data, "b")},
			"is inside"},
		{"target not empty", Backup{DataDir: data, To: full}, "not empty"},
		{"not a SQLite file", Backup{DataDir: notDB, To: filepath.Join(dir, "c")}, "snapshot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.b.Run(context.Background())
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tt.want)) {
				t.Fatalf("Run = %v, want an error with %q", err, tt.want)
			}
			if tt.b.To != full {
				if _, err := os.Stat(tt.b.To); !os.IsNotExist(err) {
					t.Fatalf("the failed backup left %s (%v)", tt.b.To, err)
				}
			} else if entries, _ := os.ReadDir(full); len(entries) != 1 {
				t.Fatalf("the refused backup changed %s: %d entries", full, len(entries))
			}
		})
	}
}

// A target reached through a symlink is where the link points: inside the
// data dir it is refused as a plain path there is, before anything is
// written (the copy of files would walk into its own output, and the token
// key would land among the uploads).
func TestBackup_RefusesTargetLinkedIntoSource(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	inner := filepath.Join(data, "files", "inner")
	if err := os.MkdirAll(inner, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "resonance.db"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	toInner, toData := filepath.Join(dir, "inner"), filepath.Join(dir, "data-link")
	for link, target := range map[string]string{toInner: inner, toData: data} {
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	for _, to := range []string{toInner, filepath.Join(toData, "new", "b")} {
		_, err := Backup{DataDir: data, To: to}.Run(context.Background())
		if err == nil || !strings.Contains(err.Error(), "is inside") {
			t.Fatalf("Run to %s = %v, want an error with %q", to, err, "is inside")
		}
	}
	if entries, _ := os.ReadDir(inner); len(entries) != 0 {
		t.Fatalf("the refused backup wrote %d entries into %s", len(entries), inner)
	}
	if _, err := os.Stat(filepath.Join(data, "new")); !os.IsNotExist(err) {
		t.Fatalf("the refused backup left %s (%v)", filepath.Join(data, "new"), err)
	}
}

// A files dir that is a symlink (uploads kept on another disk) is copied
// as the directory it leads to.
func TestBackup_CopiesFilesDirThatIsALink(t *testing.T) {
	dir := t.TempDir()
	data, disk := filepath.Join(dir, "data"), filepath.Join(dir, "disk")
	if err := os.MkdirAll(filepath.Join(disk, "ab"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(disk, "ab", "blob"), []byte("bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(data, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(disk, filepath.Join(data, "files")); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "resonance.db"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec("CREATE TABLE t (x INTEGER)")
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	to := filepath.Join(dir, "backup")
	rep, err := Backup{DataDir: data, To: to}.Run(context.Background())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(to, "files", "ab", "blob"))
	if rep.Files != 1 || err != nil || string(got) != "bytes" {
		t.Fatalf("copied %d files, blob %q (%v); want 1, %q", rep.Files, got, err, "bytes")
	}
}
