package clienttest

import (
	"fmt"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// defaultMaxFileSize is the server's default largest upload, 25 MiB.
const defaultMaxFileSize = 25 << 20

// upload is a file on its way in: its size and how much is held. The
// bytes are not kept (there is no DOWNLOAD).
type upload struct {
	owner          int64
	size, received int64
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
		s.uploads[req.FileId] = &upload{owner: c.userID, size: req.Size}
	}
	u := s.uploads[req.FileId]
	switch {
	case u == nil || u.owner != c.userID:
		return nil, fail(common.ErrorCode_NOT_FOUND, "not found: file")
	case len(req.Data) > protocol.MaxFileChunk:
		return nil, fail(common.ErrorCode_TOO_LARGE,
			fmt.Sprintf("too large: chunk over %d bytes", protocol.MaxFileChunk))
	case len(req.Data) > 0 && req.Offset == u.received:
		u.received = min(u.size, u.received+int64(len(req.Data)))
	}
	return &protocol.UploadResp{FileId: req.FileId, NextOffset: u.received,
		Complete: u.received == u.size}, nil
}
