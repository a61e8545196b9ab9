package chat

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/kitex_gen/common"
)

// fileDeadline bounds one /send-file upload or /save download. They run on
// Run's goroutine, so input waits meanwhile; at the SDK's pace (3 MiB a
// second after a burst) the largest default file takes about 8 seconds.
const fileDeadline = 5 * time.Minute

// handleFileCommand runs /send-file and /save; false means cmd is neither.
func (s *session) handleFileCommand(ctx context.Context, cmd, arg string) bool {
	switch cmd {
	case "/send-file":
		s.report(s.sendFile(ctx, arg))
	case "/save":
		s.report(s.saveFile(ctx, arg))
	default:
		return false
	}
	return true
}

// sendFile runs "/send-file <path>": it uploads the file, then queues its
// FILE message behind the lines typed before it.
func (s *session) sendFile(ctx context.Context, arg string) error {
	path, err := pathArg(arg)
	switch {
	case err != nil || path == "":
		return errors.New(`usage: /send-file <path> (a path may go in quotes: "my notes.txt")`)
	case s.group == "" && s.peer.id == 0:
		return errors.New("no conversation yet: /to <user> or /group")
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	switch {
	case err != nil:
		return err
	case !info.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", path)
	case info.Size() == 0:
		return fmt.Errorf("%s is empty", path)
	}
	name := filepath.Base(path)
	s.printf("* uploading %s (%s)", name, formatSize(info.Size()))
	ctx, cancel := context.WithTimeout(ctx, fileDeadline)
	defer cancel()
	ref, err := s.sess.Upload(ctx, f, client.UploadParams{Name: name, Size: info.Size()})
	if err != nil {
		return err
	}
	if s.group != "" {
		s.enqueue(client.SendParams{ConvID: s.group, File: ref,
			ClientMsgID: client.NewClientMsgID()})
		return nil
	}
	s.sendP2P(client.SendParams{File: ref})
	return nil
}

// saveFile runs "/save #<seq> [<path>]": it downloads the file of the FILE
// message at seq to path, by default the file's name in the working
// directory. It never overwrites a file.
func (s *session) saveFile(ctx context.Context, arg string) error {
	const usage = "usage: /save #<seq> [<path>]"
	conv := s.conv()
	seqText, rest, _ := strings.Cut(strings.TrimSpace(arg), " ")
	seq, ok := parseSeq(seqText)
	dest, err := pathArg(rest)
	switch {
	case conv == "":
		return errors.New("no conversation yet")
	case !ok || err != nil:
		return errors.New(usage)
	}
	ref, err := s.fileAt(ctx, conv, seq)
	if err != nil {
		return err
	}
	path := saveTarget(dest, ref.Name)
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, fileDeadline)
	defer cancel()
	_, err = s.sess.Download(ctx, ref.FileId, out)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return err
	}
	s.printf("* saved %s (%s) to %s", ref.Name, formatSize(ref.Size), path)
	return nil
}

// pathArg returns the path an argument names: the text in double quotes
// when it starts with one (nothing may follow the closing quote), else the
// whole text, spaces and all; ~ or ~/ at its start is the home directory,
// as in a shell. "" when text is blank.
func pathArg(text string) (string, error) {
	text = strings.TrimSpace(text)
	if quoted, ok := strings.CutPrefix(text, `"`); ok {
		path, rest, closed := strings.Cut(quoted, `"`)
		if !closed || strings.TrimSpace(rest) != "" {
			return "", errors.New("unbalanced quotes")
		}
		text = path
	}
	if text != "~" && !strings.HasPrefix(text, "~/") {
		return text, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, text[1:]), nil
}

// saveTarget returns where /save writes a file named name (the sender's
// name, of which only the last element is used): dest, or the name in dest
// when dest is a directory or ends with a separator, or the name in the
// working directory when dest is "".
func saveTarget(dest, name string) string {
	base := filepath.Base(filepath.Clean("/" + name))
	if base == "/" || base == "." {
		base = "download"
	}
	if dest == "" {
		return base
	}
	if strings.HasSuffix(dest, string(filepath.Separator)) {
		return filepath.Join(dest, base)
	}
	if info, err := os.Stat(dest); err == nil && info.IsDir() {
		return filepath.Join(dest, base)
	}
	return dest
}

// fileAt returns the FileRef of the FILE message at seq of conv.
func (s *session) fileAt(ctx context.Context, conv string, seq int64) (*common.FileRef, error) {
	target, err := s.readMessage(ctx, conv, seq)
	if err != nil {
		return nil, err
	}
	switch {
	case target == nil:
		return nil, fmt.Errorf("no #%d in this conversation", seq)
	case target.Recalled:
		return nil, fmt.Errorf("#%d was recalled", seq)
	case target.ContentType != common.ContentType_FILE:
		return nil, fmt.Errorf("#%d is not a file", seq)
	}
	return client.FileRefOf(target)
}

// fileText renders the content of a FILE message: "[file] name (size)".
func fileText(content []byte) string {
	ref, err := client.FileRefOf(&common.Message{ContentType: common.ContentType_FILE,
		Content: content})
	if err != nil {
		return "[file] (unreadable)"
	}
	text := fmt.Sprintf("[file] %s (%s)", ref.Name, formatSize(ref.Size))
	if ref.Caption != nil && *ref.Caption != "" {
		text += " " + *ref.Caption
	}
	return text
}

// formatSize renders a byte count for people: 512 B, 1.5 KiB, 25.0 MiB.
func formatSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
