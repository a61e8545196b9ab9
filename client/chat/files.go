package chat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

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
	case s.readOnly() != nil:
		return fmt.Errorf("not sent: %w", s.readOnly())
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
	name, size := filepath.Base(path), info.Size()
	if limit := s.fileLimit(); limit > 0 && size > limit {
		return overLimit(name, size, limit)
	}
	tctx, cancel := context.WithTimeout(ctx, fileDeadline)
	defer cancel()
	ref, err := s.sess.Upload(tctx, f, client.UploadParams{Name: name, Size: size,
		Progress: s.progressNotice("uploading", name, size)})
	if err != nil && ctx.Err() != nil { // Ctrl-C: the SDK's "context canceled" says less
		return fmt.Errorf("upload of %s cancelled; not sent", name)
	}
	if limit, ok := fileLimitOf(err); ok {
		s.maxFile = limit
		return overLimit(name, size, limit)
	}
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

// fileLimit is the server's largest file in bytes as its login reported
// it, else as its last refusal said (0 before one): a server that reports
// no limits may keep another than the default.
func (s *session) fileLimit() int64 {
	if lim := s.sess.Limits(); lim.Reported {
		return lim.MaxFileBytes
	}
	return s.maxFile
}

// progressFrom is the size from which a transfer tells its progress, by
// quarters: below it, a transfer takes well under a second.
const progressFrom = 1 << 20

// progressNotice returns the progress callback of a transfer of name, size
// bytes long, told as verb ("uploading"). It announces the transfer once
// its first chunk is through, so that an upload over the server's limit is
// not announced before the refusal, and, from progressFrom, says each
// quarter done: a few lines, even in a pipe. A file of one chunk goes
// without a word; its message or "saved" line tells.
func (s *session) progressNotice(verb, name string, size int64) func(held int64) {
	told := -1 // the quarters told; -1 before the announcement
	return func(held int64) {
		if held >= size {
			return
		}
		if told < 0 {
			s.printf("* %s %s (%s)", verb, name, formatSize(size))
			told = 0
		}
		if q := int(held * 4 / size); size >= progressFrom && q > told {
			told = q
			s.printf("* %s %s: %d%%", verb, name, q*25)
		}
	}
}

// fileLimitRE finds the limit in the server's refusal of a file too large,
// "too large: file over 26214400 bytes".
var fileLimitRE = regexp.MustCompile(`file over (\d+) bytes`)

// fileLimitOf returns the server's largest file, in bytes, when err is its
// refusal of a file over it.
func fileLimitOf(err error) (int64, bool) {
	var se *client.Error
	if !errors.As(err, &se) || se.Code != common.ErrorCode_TOO_LARGE {
		return 0, false
	}
	m := fileLimitRE.FindStringSubmatch(se.Message)
	if m == nil {
		return 0, false
	}
	limit, err := strconv.ParseInt(m[1], 10, 64)
	return limit, err == nil && limit > 0
}

// overLimit is the refusal of a file of size bytes over the server's limit.
func overLimit(name string, size, limit int64) error {
	have, most := formatSize(size), formatSize(limit)
	if have == most { // "2.0 KiB is over 2.0 KiB" says nothing: the bytes do
		have, most = fmt.Sprintf("%d bytes", size), fmt.Sprintf("%d bytes", limit)
	}
	return fmt.Errorf("%s (%s) is over the server's limit of %s; not sent", name, have, most)
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
	path, renamed := saveTarget(dest, ref.Name)
	if renamed != "" {
		s.printf("* saving as %s: %s", filepath.Base(path), renamed)
	}
	if err := s.download(ctx, ref, path); err != nil {
		return err
	}
	s.printf("* saved %s (%s) to %s", ref.Name, formatSize(ref.Size), path)
	return nil
}

// partSuffix marks the temporary file a download goes to beside its target.
const partSuffix = ".part"

// download writes the file ref names to path, which must not exist. The
// bytes go to path+partSuffix first, renamed into place only once their
// SHA-256 is checked: a run killed mid-download leaves no truncated file
// under the final name, and the next try resumes from the temporary file
// it leaves. A cancelled or failed download keeps it for that; one whose
// bytes do not check out removes it.
func (s *session) download(ctx context.Context, ref *common.FileRef, path string) error {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%s: %w", path, errFileExists)
	}
	part := path + partSuffix
	// Written through, a symbolic link there would put the bytes elsewhere.
	if info, err := os.Lstat(part); err == nil && !info.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file; not saved", part)
	}
	out, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	err = s.fetchInto(ctx, ref, out)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	switch {
	case err == nil:
		if err = placeFile(part, path); err != nil {
			_ = os.Remove(part) // named for path, which the user must change
		}
		return err
	case ctx.Err() != nil: // Ctrl-C: the SDK's "context canceled" says less
		return fmt.Errorf("download of %s cancelled; /save it to %s again to resume", ref.Name,
			path)
	case errors.Is(err, client.ErrFileMismatch):
		_ = os.Remove(part)
	}
	return err
}

// fetchInto downloads ref's file into out, going on from the bytes out
// holds when they are no more than the file's. Held bytes that turn out
// not to be the file's start (a file of the same name, or a corrupted
// copy) are dropped and the file downloaded over, once.
func (s *session) fetchInto(ctx context.Context, ref *common.FileRef, out *os.File) error {
	ctx, cancel := context.WithTimeout(ctx, fileDeadline)
	defer cancel()
	held, err := out.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	if held > 0 && held <= ref.Size {
		s.printf("* resuming %s from %s", ref.Name, formatSize(held))
		if _, err := out.Seek(0, io.SeekStart); err != nil {
			return err
		}
		err = s.fetch(ctx, ref, out, held)
		if !errors.Is(err, client.ErrFileMismatch) {
			return err
		}
		s.printf("* the bytes held for %s are not its start; downloading it over", ref.Name)
	}
	if err := out.Truncate(0); err != nil {
		return err
	}
	if _, err := out.Seek(0, io.SeekStart); err != nil {
		return err
	}
	return s.fetch(ctx, ref, out, 0)
}

// fetch downloads ref's file into out from held bytes on, out's first held
// bytes being read to hash them, which leaves its offset where the rest
// goes.
func (s *session) fetch(ctx context.Context, ref *common.FileRef, out *os.File,
	held int64) error {
	var have io.Reader
	if held > 0 {
		have = io.LimitReader(out, held)
	}
	w := &progressWriter{w: out, held: held,
		progress: s.progressNotice("downloading", ref.Name, ref.Size)}
	_, err := s.sess.DownloadFrom(ctx, ref.FileId, have, w)
	return err
}

// placeFile moves the file at part to path unless path exists: a hard link
// fails rather than replace a file made meanwhile, where a rename would
// replace it; on a file system without links, a checked rename.
func placeFile(part, path string) error {
	err := os.Link(part, path)
	if err == nil {
		return os.Remove(part)
	}
	if _, serr := os.Lstat(path); serr == nil || errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s: %w", path, errFileExists)
	}
	return os.Rename(part, path)
}

// progressWriter counts the bytes written through it for progress.
type progressWriter struct {
	w        io.Writer
	held     int64
	progress func(held int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.held += int64(n)
	p.progress(p.held)
	return n, err
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
// working directory when dest is "". A name taken from the sender is made
// safe (safeFileName); renamed says why when it was changed.
func saveTarget(dest, name string) (path, renamed string) {
	if dest != "" && !strings.HasSuffix(dest, string(filepath.Separator)) {
		if info, err := os.Stat(dest); err != nil || !info.IsDir() {
			return dest, "" // the user's own choice, used as given
		}
	}
	base := filepath.Base(filepath.Clean("/" + name))
	if base == "/" || base == "." {
		base = "download"
	}
	base, renamed = safeFileName(base)
	if dest == "" {
		return base, renamed
	}
	return filepath.Join(dest, base), renamed
}

// safeFileName returns name fit to save under, and why it was changed, ""
// when it was not. A leading dot gets a "_" before it, so that a sender
// cannot plant a hidden file such as .profile; control and format
// characters (bidi controls that show "invoice\u202egpj.exe" as
// "invoiceexe.jpg", zero-width ones), line separators and invalid UTF-8
// become "_", so that the name on disk reads as it lists.
func safeFileName(name string) (safe, why string) {
	var b strings.Builder
	hidden := false
	for _, r := range strings.ToValidUTF8(name, "\uFFFD") {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError ||
			unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) {
			r, hidden = '_', true
		}
		b.WriteRune(r)
	}
	safe = b.String()
	switch {
	case strings.HasPrefix(safe, "."):
		return "_" + safe, "the sender's name starts with a dot"
	case hidden:
		return safe, "the sender's name has invisible or control characters"
	}
	return safe, ""
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
