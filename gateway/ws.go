package gateway

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// connMode is what a connection speaks, decided by its first bytes.
type connMode uint8

const (
	modeSniff     connMode = iota // no byte yet
	modeFrames                    // protocol frames on raw TCP
	modeHandshake                 // an HTTP request is arriving
	modeWS                        // WebSocket, one protocol frame per binary message
	modeProxy                     // a trusted proxy's PROXY header may come first
)

// maxHandshake bounds the HTTP upgrade request; a longer one is refused
// rather than buffered.
const maxHandshake = 8 << 10

// httpGet starts every WebSocket upgrade request.
const httpGet = "GET "

// tooLongResponse is the answer to an upgrade request past maxHandshake.
const tooLongResponse = "HTTP/1.1 431 Request Header Fields Too Large\r\n" +
	"Connection: close\r\nContent-Length: 0\r\n\r\n"

// badRequestResponse answers an upgrade request whose request line is
// malformed.
const badRequestResponse = "HTTP/1.1 400 Bad Request\r\n" +
	"Connection: close\r\nContent-Length: 0\r\n\r\n"

// notWebSocketResponse answers a plain HTTP GET, one without Upgrade: a
// browser pointed at the client port, most likely, whose user needs to
// hear what the port is rather than that a WebSocket handshake failed.
var notWebSocketResponse = func() string {
	const body = "This is a Resonance client port: apps connect here over TCP, and the web " +
		"app's browser code over WebSocket.\nThe web app itself is served on the server's " +
		"--web-listen address (by default http://127.0.0.1:8080/).\n"
	return "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}()

// wantsUpgrade reports whether the request head names an Upgrade header.
func wantsUpgrade(head []byte) bool {
	for _, line := range bytes.Split(head, []byte("\r\n"))[1:] {
		name, _, ok := bytes.Cut(line, []byte(":"))
		if ok && bytes.EqualFold(bytes.TrimSpace(name), []byte("upgrade")) {
			return true
		}
	}
	return false
}

// sniff tells from the first bytes what a connection speaks: "GET " starts an
// HTTP upgrade, anything else is taken for frames (the decoder refuses a bad
// magic). modeSniff means too few bytes to tell.
func sniff(buf []byte) connMode {
	if len(buf) == 0 {
		return modeSniff
	}
	if buf[0] == byte(codec.Magic>>8) {
		return modeFrames
	}
	n := min(len(buf), len(httpGet))
	if string(buf[:n]) != httpGet[:n] {
		return modeFrames
	}
	if n < len(httpGet) {
		return modeSniff
	}
	return modeHandshake
}

// newUpgrader builds the handshake of the gateway. gobwas/ws parses the
// request without copying headers it does not need; the Origin check runs on
// each header as it is parsed.
func newUpgrader(allowed []string) ws.Upgrader {
	up := ws.Upgrader{}
	if len(allowed) == 0 {
		return up
	}
	refused := ws.RejectConnectionError(ws.RejectionStatus(http.StatusForbidden),
		ws.RejectionReason("origin not allowed"))
	up.OnHeader = func(key, value []byte) error {
		if !bytes.EqualFold(key, []byte("Origin")) {
			return nil
		}
		for _, o := range allowed {
			if string(value) == o {
				return nil
			}
		}
		return refused
	}
	return up
}

// handshake answers the upgrade request at the front of buf once it is
// whole. It returns the bytes consumed; c.mode stays modeHandshake while the
// request is incomplete. A refused request gets an HTTP error and a close.
func (g *Gateway) handshake(c *conn, buf []byte) (gnet.Action, int) {
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 && len(buf) <= maxHandshake {
		return gnet.None, 0
	}
	if end < 0 || end+4 > maxHandshake {
		c.loop.out = append(c.loop.out, tooLongResponse...)
		return g.refuseHandshake(c, fmt.Errorf("%w: request over %d bytes",
			ErrHandshake, maxHandshake)), len(buf)
	}
	end += 4
	rw := struct {
		io.Reader
		io.Writer
	}{bytes.NewReader(buf[:end]), loopWriter{c.loop}}
	if !wantsUpgrade(buf[:end]) {
		c.loop.out = append(c.loop.out, notWebSocketResponse...)
		return g.refuseHandshake(c, fmt.Errorf("%w: no Upgrade header", ErrHandshake)), end
	}
	written := len(c.loop.out)
	if _, err := g.upgrader.Upgrade(rw); err != nil {
		// Upgrade has written the HTTP error response to the loop's output,
		// except for a request line it cannot parse: that one returns at
		// once, and the client would see the connection end unanswered.
		if len(c.loop.out) == written {
			c.loop.out = append(c.loop.out, badRequestResponse...)
		}
		return g.refuseHandshake(c, fmt.Errorf("%w: %v", ErrHandshake, err)), end
	}
	if _, named := c.loop.proxied[c]; !named && g.trusted(c.gc.RemoteAddr()) {
		if addr := g.forwardedFor(buf[:end]); addr != "" {
			c.loop.nameClient(c, addr)
		}
	}
	c.mu.Lock()
	c.ws = true
	c.mu.Unlock()
	c.mode = modeWS
	g.stats.upgrades.Add(1)
	return gnet.None, end
}

// refuseHandshake closes c after its HTTP error response. No CLOSE frame:
// the client never became a WebSocket.
func (g *Gateway) refuseHandshake(c *conn, err error) gnet.Action {
	c.closing = true
	g.stats.handshakesRefused.Add(1) // before the client can see the answer
	g.flushOut(c)
	g.log.Debug().Int64("conn", c.id).Err(err).Msg("websocket handshake refused")
	return gnet.Close
}

// loopWriter appends to the loop's output, so the handshake response leaves
// with whatever else the callback writes.
type loopWriter struct{ ls *loopState }

func (w loopWriter) Write(p []byte) (int, error) {
	w.ls.out = append(w.ls.out, p...)
	return len(p), nil
}

// readWS handles every complete WebSocket frame at the front of buf and
// returns the bytes consumed. Payloads are unmasked in place in gnet's
// buffer; only a fragmented message is copied, into c.wsr.
func (g *Gateway) readWS(c *conn, buf []byte) (gnet.Action, int) {
	action, consumed := gnet.None, 0
	for action == gnet.None {
		maxMessage := g.maxBody(c) + codec.HeaderSize
		m, n, ok, err := c.wsr.next(buf[consumed:], maxMessage)
		if err != nil {
			g.beginCloseCause(c, closeCause{reason: frameErrorReason(err),
				wsCode: wsStatusFor(err), detail: err.Error()})
			return gnet.Close, consumed
		}
		if n == 0 {
			break
		}
		consumed += n
		if !c.spendFrame(g.cfg.FrameRate) {
			g.beginClose(c, protocol.CloseReason_RATE_LIMITED, "frame rate")
			return gnet.Close, consumed
		}
		if !ok {
			continue
		}
		action = g.wsMessage(c, m)
		if m.op == ws.OpBinary {
			c.wsr.release()
		}
	}
	return action, consumed
}

// wsMessage handles one complete message or control frame.
func (g *Gateway) wsMessage(c *conn, m wsMessage) gnet.Action {
	switch m.op {
	case ws.OpBinary:
		return g.wsFrame(c, m.payload)
	case ws.OpPing:
		c.loop.out = appendWSHeader(c.loop.out, ws.OpPong, len(m.payload))
		c.loop.out = append(c.loop.out, m.payload...)
	case ws.OpClose:
		return g.wsClientClose(c, m.payload)
	}
	return gnet.None // a pong needs nothing
}

// wsFrame dispatches the one protocol frame a binary message must carry.
func (g *Gateway) wsFrame(c *conn, payload []byte) gnet.Action {
	h, body, n, err := codec.Decoder{MaxBody: g.maxBody(c)}.Decode(payload)
	if err == nil && n != len(payload) {
		err = fmt.Errorf("%w: a message of %d bytes holds a frame of %d",
			ErrWSProtocol, len(payload), n)
	}
	if err != nil {
		g.beginClose(c, frameErrorReason(err), err.Error())
		return gnet.Close
	}
	return g.dispatch(c, h, body)
}

// wsClientClose answers a client's close frame with one echoing its code,
// then closes. The client asked for it, so it gets no CLOSE frame and the
// close counts in ClientCloses, not against a reason.
func (g *Gateway) wsClientClose(c *conn, payload []byte) gnet.Action {
	c.closing = true
	g.stats.clientCloses.Add(1)
	code := closeEcho(payload)
	c.loop.out = appendWSClose(c.loop.out, code)
	g.log.Debug().Int64("conn", c.id).Uint16("code", uint16(code)).Msg("client closed websocket")
	return gnet.Close
}

// closeEcho is the code that answers a client's close frame of payload: its
// own code when the frame is valid (none means 1000), else the error it
// commits (RFC 6455 5.5.1 and 7.4): a one-byte payload or a code no endpoint
// may send, such as 1005 or one past 4999, is a protocol error, and a reason
// that is not UTF-8 is invalid payload data.
func closeEcho(payload []byte) ws.StatusCode {
	switch len(payload) {
	case 0:
		return ws.StatusNormalClosure
	case 1:
		return ws.StatusProtocolError
	}
	code := ws.StatusCode(binary.BigEndian.Uint16(payload))
	// gobwas/ws checks neither end of the range.
	if code < 1000 || code > 4999 {
		return ws.StatusProtocolError
	}
	err := ws.CheckCloseFrameData(code, string(payload[2:]))
	switch {
	case errors.Is(err, ws.ErrProtocolInvalidUTF8):
		return ws.StatusInvalidFramePayloadData
	case err != nil:
		return ws.StatusProtocolError
	}
	return code
}
