package clienttest

import (
	"fmt"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// defaultMaxFileSize is the server's default largest upload, 25 MiB.
const defaultMaxFileSize = 25 << 20

// upload is a file on its way in: its description and the bytes held,
// which DOWNLOAD serves once all are in.
type upload struct {
	owner          int64
	size, received int64
	name, mime     string
	sha256         []byte
	data           []byte
}

// upload serves UPLOAD as the server does in outline: a file over
// MaxFileSize is refused at its first request with the server's TOO_LARGE
// message, and the chunks must come in order. The SHA-256 is not checked.
func (s *Server) upload(c *conn, req *protocol.UploadReq) (codec.Body, error) {
	if req.FileId == "" {
		limit := int64(defaultMaxFileSize)
		if s.opts.MaxFileSize > 0 {
			limit = s.opts.MaxFileSize
		}
		switch {
		case req.Size <= 0:
			return nil, fail(common.ErrorCode_BAD_REQUEST, "bad request: size must be positive")
		case req.Size > limit:
			return nil, fail(common.ErrorCode_TOO_LARGE,
				fmt.Sprintf("too large: file over %d bytes", limit))
		}
		if s.uploads == nil {
			s.uploads = make(map[string]*upload)
		}
		req.FileId = newToken()
		s.uploads[req.FileId] = &upload{owner: c.userID, size: req.Size, name: req.Name,
			mime: req.Mime, sha256: req.Sha256}
	}
	u := s.uploads[req.FileId]
	switch {
	case u == nil || u.owner != c.userID:
		return nil, fail(common.ErrorCode_NOT_FOUND, "not found: file")
	case len(req.Data) > protocol.MaxFileChunk:
		return nil, fail(common.ErrorCode_TOO_LARGE,
			fmt.Sprintf("too large: chunk over %d bytes", protocol.MaxFileChunk))
	case req.Offset < 0 || req.Offset > u.size || int64(len(req.Data)) > u.size-req.Offset:
		// As the server: a chunk outside the file, retry or not.
		return nil, fail(common.ErrorCode_BAD_REQUEST, fmt.Sprintf(
			"bad request: offset %d with %d bytes outside the file's %d bytes",
			req.Offset, len(req.Data), u.size))
	case len(req.Data) > 0 && req.Offset == u.received:
		u.data = append(u.data, req.Data...)
		u.received = int64(len(u.data))
	}
	return &protocol.UploadResp{FileId: req.FileId, NextOffset: u.received,
		Complete: u.received == u.size}, nil
}

// download serves DOWNLOAD of a complete upload to any signed-in user: the
// fake does not check who may read a FILE message naming it.
func (s *Server) download(req *protocol.DownloadReq) (codec.Body, error) {
	u := s.uploads[req.FileId]
	switch {
	case u == nil || u.received != u.size:
		return nil, fail(common.ErrorCode_NOT_FOUND, "not found: file")
	case req.Offset < 0 || req.Offset > u.size:
		return nil, fail(common.ErrorCode_BAD_REQUEST, fmt.Sprintf(
			"bad request: offset %d outside the file's %d bytes", req.Offset, u.size))
	}
	n := int64(req.MaxBytes)
	if n <= 0 || n > protocol.MaxFileChunk {
		n = protocol.MaxFileChunk
	}
	end := min(u.size, req.Offset+n)
	return &protocol.DownloadResp{Data: u.data[req.Offset:end], Offset: req.Offset,
		Size: u.size, Mime: u.mime, Name: u.name, Sha256: u.sha256}, nil
}

// HoldTransfers makes every DOWNLOAD past a file's first chunk, and every
// UPLOAD after the one that starts a file, wait, unanswered, until release
// is called, as on a slow link; HeldTransfers counts them. A test sees a
// transfer half done meanwhile.
func (s *Server) HoldTransfers() (release func()) { return s.holdGate(&s.transferGate) }

// HeldTransfers is how many requests waited for a HoldTransfers release.
func (s *Server) HeldTransfers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.heldTransfers
}

// holdTransfer returns the gate a DOWNLOAD or UPLOAD request of body waits
// for, nil when none or when it is a file's first, and counts the request
// held.
func (s *Server) holdTransfer(op protocol.Op, body []byte) <-chan struct{} {
	first := true
	if op == protocol.Op_DOWNLOAD {
		req := protocol.NewDownloadReq()
		first = codec.ReadBody(body, req) != nil || req.Offset == 0
	} else {
		req := protocol.NewUploadReq()
		first = codec.ReadBody(body, req) != nil || req.FileId == ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if first || s.transferGate == nil {
		return nil
	}
	s.heldTransfers++
	return s.transferGate
}
