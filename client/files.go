package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"path/filepath"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// UploadParams describes a file to upload. Size is required: the server
// takes the size and SHA-256 before the bytes. SHA256, when nil, is computed
// from the reader: an io.ReadSeeker is read twice, any other reader is read
// into memory first. Mime defaults to the type of Name's extension, else
// application/octet-stream. Width and Height, for an image, and Caption go
// into the FileRef that Upload returns, for SendFile.
type UploadParams struct {
	Name    string
	Mime    string
	Size    int64
	SHA256  []byte
	Width   int32
	Height  int32
	Caption string
	// Progress, when set, is called on Upload's goroutine after each answer
	// of the server with the bytes it holds (Size once complete). A first
	// call means the server took the upload: a file over its limit is
	// refused at the first request.
	Progress func(held int64)
}

// uploader is one upload on its way: the file's description, the server's
// id once started, and the last chunk sent, which is all it must send
// again when a new connection learns that its answer was lost.
type uploader struct {
	r       io.Reader
	p       UploadParams
	id      string
	chunk   []byte // the bytes at chunkAt
	chunkAt int64
}

// newUploader checks p, fills its defaults and computes the SHA-256 if it
// is missing.
func newUploader(r io.Reader, p UploadParams) (*uploader, error) {
	if p.Name == "" || p.Size <= 0 {
		return nil, fmt.Errorf("upload: %w: name and a positive size required", ErrBadParams)
	}
	if p.Mime == "" {
		p.Mime = MimeOf(p.Name)
	}
	u := &uploader{r: r, p: p}
	if p.SHA256 != nil {
		return u, nil
	}
	sum := sha256.New()
	if rs, ok := r.(io.ReadSeeker); ok {
		start, err := rs.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, fmt.Errorf("upload %q: %w", p.Name, err)
		}
		if _, err := io.CopyN(sum, rs, p.Size); err != nil {
			return nil, fmt.Errorf("upload %q: hash: %w", p.Name, err)
		}
		if _, err := rs.Seek(start, io.SeekStart); err != nil {
			return nil, fmt.Errorf("upload %q: %w", p.Name, err)
		}
	} else {
		var buf bytes.Buffer
		if _, err := io.CopyN(io.MultiWriter(&buf, sum), r, p.Size); err != nil {
			return nil, fmt.Errorf("upload %q: read: %w", p.Name, err)
		}
		u.r = &buf
	}
	u.p.SHA256 = sum.Sum(nil)
	return u, nil
}

// MimeOf returns the media type of a file name's extension without its
// parameters (the server takes no spaces: "text/plain", not "text/plain;
// charset=utf-8"), or application/octet-stream.
func MimeOf(name string) string {
	if t, _, err := mime.ParseMediaType(mime.TypeByExtension(filepath.Ext(name))); err == nil {
		return t
	}
	return "application/octet-stream"
}

// run uploads on c until the file is complete or a request fails. A
// started upload resumes where the server says it stands.
func (u *uploader) run(ctx context.Context, c *Client) (*common.FileRef, error) {
	var resp *protocol.UploadResp
	var err error
	if u.id == "" {
		if err := u.advance(0); err != nil {
			return nil, err
		}
		resp = protocol.NewUploadResp()
		req := &protocol.UploadReq{Size: u.p.Size, Sha256: u.p.SHA256, Mime: u.p.Mime,
			Name: u.p.Name, Data: u.chunk}
		// Not safe to repeat: a lost answer leaves an upload whose id this
		// client never learns (the server prunes it).
		if err := c.roundTripOnce(ctx, protocol.Op_UPLOAD, req, resp); err != nil {
			return nil, err
		}
		u.id = resp.FileId
	} else if resp, err = u.send(ctx, c, &protocol.UploadReq{FileId: u.id}); err != nil {
		return nil, err
	}
	u.progress(resp)
	for !resp.Complete {
		if err := u.advance(resp.NextOffset); err != nil {
			return nil, err
		}
		if err := c.filePace.Wait(ctx); err != nil {
			return nil, err
		}
		resp, err = u.send(ctx, c, &protocol.UploadReq{FileId: u.id, Offset: u.chunkAt,
			Data: u.chunk})
		if err != nil {
			return nil, err
		}
		u.progress(resp)
	}
	return u.ref(), nil
}

// progress tells p.Progress, if any, how much the server holds.
func (u *uploader) progress(resp *protocol.UploadResp) {
	if u.p.Progress == nil {
		return
	}
	if resp.Complete {
		u.p.Progress(u.p.Size)
		return
	}
	u.p.Progress(resp.NextOffset)
}

// send sends one chunk request; a chunk is safe to repeat (the server
// ignores one it holds).
func (u *uploader) send(ctx context.Context, c *Client,
	req *protocol.UploadReq) (*protocol.UploadResp, error) {
	resp := protocol.NewUploadResp()
	if err := c.roundTrip(ctx, protocol.Op_UPLOAD, req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// advance makes u.chunk the bytes at off: the chunk sent last again, or
// the next one read. The server's next offset is never elsewhere, since a
// chunk is sent only once the one before is answered.
func (u *uploader) advance(off int64) error {
	switch {
	case off == u.chunkAt && u.chunk != nil:
		return nil
	case off != u.chunkAt+int64(len(u.chunk)):
		return fmt.Errorf("upload %q: %w: the server wants offset %d, the client is at %d",
			u.p.Name, ErrProtocol, off, u.chunkAt)
	}
	n := min(int64(protocol.MaxFileChunk), u.p.Size-off)
	buf := make([]byte, n)
	if _, err := io.ReadFull(u.r, buf); err != nil {
		return fmt.Errorf("upload %q: read at %d: %w", u.p.Name, off, err)
	}
	u.chunk, u.chunkAt = buf, off
	return nil
}

// ref is the FileRef of the complete upload.
func (u *uploader) ref() *common.FileRef {
	ref := &common.FileRef{FileId: u.id, Name: u.p.Name, Mime: u.p.Mime, Size: u.p.Size,
		Sha256: u.p.SHA256}
	if u.p.Width > 0 || u.p.Height > 0 {
		ref.Width, ref.Height = &u.p.Width, &u.p.Height
	}
	if u.p.Caption != "" {
		ref.Caption = &u.p.Caption
	}
	return ref
}

// Upload uploads p.Size bytes from r in chunks on this connection and
// returns the FileRef to send (SendFile). The server checks the bytes
// against p.SHA256 once all are in (a mismatch fails with BAD_REQUEST).
// Session.Upload also resumes across reconnects.
func (c *Client) Upload(ctx context.Context, r io.Reader, p UploadParams) (*common.FileRef, error) {
	u, err := newUploader(r, p)
	if err != nil {
		return nil, err
	}
	ref, err := u.run(ctx, c)
	if err != nil {
		return nil, errorf("upload %q: %w", p.Name, err)
	}
	return ref, nil
}

// Upload is Client.Upload across reconnects: after a connection ends, the
// next one asks the server how far the upload got and goes on from there.
func (s *Session) Upload(ctx context.Context, r io.Reader,
	p UploadParams) (*common.FileRef, error) {
	u, err := newUploader(r, p)
	if err != nil {
		return nil, err
	}
	var ref *common.FileRef
	err = s.retry(ctx, nil, func(c *Client) (err error) {
		ref, err = u.run(ctx, c)
		return err
	})
	if err != nil {
		return nil, errorf("session upload %q: %w", p.Name, err)
	}
	return ref, nil
}

// EncodeFileRef returns the content of a FILE message naming ref.
func EncodeFileRef(ref *common.FileRef) []byte {
	b := make([]byte, ref.BLength())
	ref.FastWriteNocopy(b, nil)
	return b
}

// FileRefOf decodes the FileRef of a FILE message. The content is
// validated before it is read (codec.ReadBody): the generated reader
// panics on some malformed bytes.
func FileRefOf(m *common.Message) (*common.FileRef, error) {
	if m.ContentType != common.ContentType_FILE {
		return nil, errorf("%w: message %d is %s, not FILE", ErrBadParams, m.MsgId, m.ContentType)
	}
	ref := common.NewFileRef()
	if err := codec.ReadBody(m.Content, ref); err != nil {
		return nil, errorf("%w: FILE of message %d: %v", ErrProtocol, m.MsgId, err)
	}
	return ref, nil
}

// SendFile is Send with p.File set to ref: ref, from Upload or a FILE
// message the user can read (a forward), goes as a FILE message to the
// recipient p names.
func (c *Client) SendFile(ctx context.Context, p SendParams,
	ref *common.FileRef) (*protocol.SendResp, error) {
	p.File = ref
	return c.Send(ctx, p)
}

// SendFile is Client.SendFile with Session.Send's retries.
func (s *Session) SendFile(ctx context.Context, p SendParams,
	ref *common.FileRef) (*protocol.SendResp, error) {
	p.File = ref
	return s.Send(ctx, p)
}

// ErrFileMismatch means a downloaded file's bytes do not hash to the
// SHA-256 the server stored for it.
var ErrFileMismatch = errors.New("client: downloaded file does not match its sha256")

// downloader is one download on its way; written counts the bytes w took.
type downloader struct {
	id      string
	w       io.Writer
	sum     hash.Hash
	written int64
	last    *protocol.DownloadResp
}

// run downloads the rest of the file on c.
func (d *downloader) run(ctx context.Context, c *Client) error {
	for {
		if err := c.filePace.Wait(ctx); err != nil {
			return err
		}
		resp := protocol.NewDownloadResp()
		req := &protocol.DownloadReq{FileId: d.id, Offset: d.written,
			MaxBytes: protocol.MaxFileChunk}
		if err := c.roundTrip(ctx, protocol.Op_DOWNLOAD, req, resp); err != nil {
			return err
		}
		if resp.Offset != d.written {
			return fmt.Errorf("%w: chunk at %d, asked %d", ErrProtocol, resp.Offset, d.written)
		}
		if _, err := d.w.Write(resp.Data); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		d.sum.Write(resp.Data)
		d.written += int64(len(resp.Data))
		d.last = resp
		if d.written >= resp.Size || len(resp.Data) == 0 {
			break
		}
	}
	if d.written != d.last.Size || !bytes.Equal(d.sum.Sum(nil), d.last.Sha256) {
		return ErrFileMismatch
	}
	return nil
}

// Download writes file id to w and returns its description (Data empty).
// It fails with ErrFileMismatch when the bytes do not hash to the stored
// SHA-256 (w has them then), and with NOT_FOUND for a file the user may not
// read.
func (c *Client) Download(ctx context.Context, id string,
	w io.Writer) (*protocol.DownloadResp, error) {
	d := &downloader{id: id, w: w, sum: sha256.New()}
	if err := d.run(ctx, c); err != nil {
		return nil, errorf("download %s: %w", id, err)
	}
	d.last.Data = nil
	return d.last, nil
}

// Download is Client.Download across reconnects, going on from the bytes w
// already took.
func (s *Session) Download(ctx context.Context, id string,
	w io.Writer) (*protocol.DownloadResp, error) {
	return s.DownloadFrom(ctx, id, nil, w)
}

// DownloadFrom is Session.Download going on from a partial copy: have, when
// not nil, yields the file's first bytes (a download cut short, kept in a
// file), which are read to the end and hashed but not written to w; w takes
// the rest only. Bytes of have that are not the file's start fail the
// download with ErrFileMismatch at its end: the caller then starts over.
func (s *Session) DownloadFrom(ctx context.Context, id string, have io.Reader,
	w io.Writer) (*protocol.DownloadResp, error) {
	d := &downloader{id: id, w: w, sum: sha256.New()}
	if have != nil {
		n, err := io.Copy(d.sum, have)
		if err != nil {
			return nil, errorf("session download %s: read the bytes held: %w", id, err)
		}
		d.written = n
	}
	// A mismatch is in the bytes w took: fetching them again cannot mend it.
	mismatch := func(err error) bool { return errors.Is(err, ErrFileMismatch) }
	err := s.retry(ctx, mismatch, func(c *Client) error { return d.run(ctx, c) })
	if err != nil {
		return nil, errorf("session download %s: %w", id, err)
	}
	d.last.Data = nil
	return d.last, nil
}
