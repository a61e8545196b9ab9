package app

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
)

// /send-file uploads a file and sends it; both screens show it as
// "[file] name (size)", and /save #seq downloads the same bytes, refusing
// to overwrite a file and a #seq that is not a file.
func TestChat_SendFileAndSave(t *testing.T) {
	addr := startSystem(t, baseConfig(t, RoleAll)).GatewayAddr().String()
	dir := t.TempDir()
	data := make([]byte, 70_000)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "notes.bin")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}

	bob := runChat(t, addr, "fbob")
	ann := runChat(t, addr, "fann")
	ann.to(t, "fbob")
	ann.say(t, "/send-file "+filepath.Join(dir, "missing"))
	ann.wait(t, "no such file")
	ann.say(t, "hello")
	ann.say(t, "/send-file "+src)
	bob.wait(t, "fann #2: [file] notes.bin (68.4 KiB)")
	ann.wait(t, "fann #2: [file] notes.bin (68.4 KiB)")

	bob.to(t, "fann")
	out := filepath.Join(dir, "saved.bin")
	bob.say(t, "/save #2 "+out)
	bob.wait(t, "* saved notes.bin (68.4 KiB) to "+out)
	if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("saved %d bytes, %v; want the %d sent", len(got), err, len(data))
	}
	bob.say(t, "/save #2 "+out)
	bob.wait(t, "file exists")
	bob.say(t, "/save #1 "+filepath.Join(dir, "other"))
	bob.wait(t, "#1 is not a file")
}
