package gateway

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/gobwas/ws"

	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// wsMessage is one complete WebSocket message or control frame read from a
// client. payload aliases gnet's inbound buffer or the reassembly buffer; it
// is valid until the next call of wsReader.next or wsReader.release.
type wsMessage struct {
	op      ws.OpCode
	payload []byte
}

// wsReader parses client WebSocket frames in place. It keeps no buffer of its
// own except frag, which exists only while a fragmented message is in flight:
// an idle connection holds one nil pointer.
type wsReader struct {
	frag *[]byte // the reassembled payload so far; nil when no message is in flight
}

// next parses the frame at the front of buf. n is the number of bytes it
// consumed: 0 means buf holds less than a whole frame (nothing changed).
// When the frame completes a message or is a control frame, ok is set and
// m holds it; a non-final fragment is consumed with ok unset. The payload is
// unmasked in place, so the bytes consumed must be discarded by the caller.
// maxMessage bounds a whole message, fragments together; a header declaring
// more fails at once with ErrWSTooLarge, before its payload arrives.
//
// It stays one function because it is a small state machine over one frame:
// header, checks, payload, reassembly.
func (r *wsReader) next(buf []byte, maxMessage int) (m wsMessage, n int, ok bool, err error) {
	h, hlen, err := parseWSHeader(buf)
	if err != nil || hlen == 0 {
		return m, 0, false, err
	}
	state := ws.StateServerSide
	fragLen := int64(0)
	if r.frag != nil {
		state = state.Set(ws.StateFragmented)
		fragLen = int64(len(*r.frag))
	}
	if err := ws.CheckHeader(h, state); err != nil {
		return m, 0, false, fmt.Errorf("%w: %v", ErrWSProtocol, err)
	}
	if h.OpCode == ws.OpText {
		return m, 0, false, ErrWSText
	}
	// Subtract rather than add: a length near 2^63 would wrap the sum
	// negative and pass, and gnet would buffer whatever followed.
	if !h.OpCode.IsControl() && h.Length > int64(maxMessage)-fragLen {
		return m, 0, false, fmt.Errorf("%w: %d bytes declared, limit %d",
			ErrWSTooLarge, fragLen+h.Length, maxMessage)
	}
	if int64(len(buf)-hlen) < h.Length {
		return m, 0, false, nil // wait for the payload
	}
	n = hlen + int(h.Length)
	payload := buf[hlen:n]
	ws.Cipher(payload, h.Mask, 0)

	switch {
	case h.OpCode.IsControl() || h.OpCode == ws.OpBinary && h.Fin:
		return wsMessage{op: h.OpCode, payload: payload}, n, true, nil
	case h.OpCode == ws.OpBinary:
		// Copy the first fragment out: gnet's buffer is reused once the
		// frame is discarded.
		frag := append(make([]byte, 0, min(2*len(payload)+64, maxMessage)), payload...)
		r.frag = &frag
		return m, n, false, nil
	}
	*r.frag = append(*r.frag, payload...) // a continuation
	if !h.Fin {
		return m, n, false, nil
	}
	return wsMessage{op: ws.OpBinary, payload: *r.frag}, n, true, nil
}

// release drops the reassembly buffer once a reassembled message has been
// handled, so that an idle connection holds none.
func (r *wsReader) release() {
	r.frag = nil
}

// parseWSHeader reads the frame header at the front of b. It returns hlen 0
// when b holds less than a whole header. gobwas/ws reads headers only from an
// io.Reader; parsing the bytes in place avoids copying them out of gnet.
func parseWSHeader(b []byte) (h ws.Header, hlen int, err error) {
	if len(b) < 2 {
		return h, 0, nil
	}
	h.Fin = b[0]&0x80 != 0
	h.Rsv = (b[0] >> 4) & 0x07
	h.OpCode = ws.OpCode(b[0] & 0x0f)
	h.Masked = b[1]&0x80 != 0
	hlen = 2
	switch length := b[1] & 0x7f; length {
	case 126:
		if len(b) < 4 {
			return h, 0, nil
		}
		h.Length, hlen = int64(binary.BigEndian.Uint16(b[2:4])), 4
	case 127:
		if len(b) < 10 {
			return h, 0, nil
		}
		u := binary.BigEndian.Uint64(b[2:10])
		if u>>63 != 0 {
			return h, 0, fmt.Errorf("%w: %v", ErrWSProtocol, ws.ErrHeaderLengthMSB)
		}
		h.Length, hlen = int64(u), 10
	default:
		h.Length = int64(length)
	}
	if h.Masked {
		if len(b) < hlen+4 {
			return h, 0, nil
		}
		copy(h.Mask[:], b[hlen:hlen+4])
		hlen += 4
	}
	return h, hlen, nil
}

// appendWSHeader appends the header of a final, unmasked server frame of op
// carrying n bytes. Server frames are never masked, so one header serves
// every WebSocket recipient of the same bytes.
func appendWSHeader(dst []byte, op ws.OpCode, n int) []byte {
	first := byte(0x80) | byte(op)
	switch {
	case n < 126:
		return append(dst, first, byte(n))
	case n <= 0xffff:
		return append(dst, first, 126, byte(n>>8), byte(n))
	}
	dst = append(dst, first, 127)
	return binary.BigEndian.AppendUint64(dst, uint64(n))
}

// appendWSClose appends a close frame with code and no reason.
func appendWSClose(dst []byte, code ws.StatusCode) []byte {
	dst = appendWSHeader(dst, ws.OpClose, 2)
	return binary.BigEndian.AppendUint16(dst, uint16(code))
}

// wsStatusFor maps an error of the WebSocket layer to its close code.
func wsStatusFor(err error) ws.StatusCode {
	switch {
	case errors.Is(err, ErrWSTooLarge):
		return ws.StatusMessageTooBig
	case errors.Is(err, ErrWSText):
		return ws.StatusUnsupportedData
	default:
		return ws.StatusProtocolError
	}
}

// wsStatusForReason is the close code that follows the CLOSE frame of reason.
func wsStatusForReason(reason protocol.CloseReason) ws.StatusCode {
	switch reason {
	case protocol.CloseReason_PROTOCOL_ERROR:
		return ws.StatusProtocolError
	case protocol.CloseReason_FRAME_TOO_LARGE:
		return ws.StatusMessageTooBig
	case protocol.CloseReason_SERVER_SHUTDOWN:
		return ws.StatusGoingAway
	case protocol.CloseReason_OVERLOADED:
		return wsStatusTryAgainLater
	case protocol.CloseReason_RATE_LIMITED, protocol.CloseReason_SLOW_CONSUMER,
		protocol.CloseReason_LOGIN_FAILED:
		return ws.StatusPolicyViolation
	}
	return ws.StatusNormalClosure
}

// wsStatusTryAgainLater is 1013 (IANA registry), which gobwas/ws does not name.
const wsStatusTryAgainLater ws.StatusCode = 1013
