package gateway

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// wsClient is a raw WebSocket test client: it masks what it sends, as
// browsers do, and reads server frames one by one.
type wsClient struct {
	t    testing.TB
	conn net.Conn
	r    io.Reader
}

// dialWS opens a WebSocket to the gateway with an optional Origin; status
// is the HTTP status of a refused handshake (0 when it succeeded).
func (h *harness) tryDialWS(t testing.TB, origin string) (*wsClient, int, error) {
	t.Helper()
	status := 0
	d := ws.Dialer{Timeout: 5 * time.Second,
		OnStatusError: func(s int, _ []byte, _ io.Reader) { status = s }}
	if origin != "" {
		d.Header = ws.HandshakeHeaderHTTP(http.Header{"Origin": {origin}})
	}
	conn, br, _, err := d.Dial(context.Background(), "ws://"+h.gw.Addr().String()+"/")
	if err != nil {
		return nil, status, err
	}
	t.Cleanup(func() { _ = conn.Close() })
	c := &wsClient{t: t, conn: conn, r: conn}
	if br != nil {
		c.r = io.MultiReader(br, conn)
	}
	return c, 0, nil
}

func (h *harness) dialWS(t testing.TB) *wsClient {
	t.Helper()
	c, status, err := h.tryDialWS(t, "")
	if err != nil {
		t.Fatalf("websocket dial: %v (status %d)", err, status)
	}
	return c
}

// writeFrame writes one masked client frame.
func (c *wsClient) writeFrame(op ws.OpCode, fin bool, payload []byte) {
	c.t.Helper()
	f := ws.NewFrame(op, fin, append([]byte(nil), payload...))
	f = ws.MaskFrameInPlace(f)
	if err := ws.WriteFrame(c.conn, f); err != nil {
		c.t.Fatalf("write websocket frame: %v", err)
	}
}

func (c *wsClient) writeRaw(b []byte) {
	c.t.Helper()
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// send writes one protocol frame as one binary message.
func (c *wsClient) send(op protocol.Op, id uint32, body codec.Body) {
	c.t.Helper()
	c.writeFrame(ws.OpBinary, true, codec.EncodeFrame(op, 0, id, body))
}

// readWSFrame returns the next server frame, checking it is unmasked.
func (c *wsClient) readWSFrame() ws.Frame {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	f, err := ws.ReadFrame(c.r)
	if err != nil {
		c.t.Fatalf("read websocket frame: %v", err)
	}
	if f.Header.Masked || !f.Header.Fin {
		c.t.Fatalf("server frame masked %v fin %v, want unmasked and final",
			f.Header.Masked, f.Header.Fin)
	}
	return f
}

// read returns the protocol frame of the next binary message, which must
// hold exactly one.
func (c *wsClient) read() frame {
	c.t.Helper()
	f := c.readWSFrame()
	if f.Header.OpCode != ws.OpBinary {
		c.t.Fatalf("got websocket op %v, want binary", f.Header.OpCode)
	}
	h, body, n, err := codec.Decoder{MaxBody: 1 << 24}.Decode(f.Payload)
	if err != nil || n != len(f.Payload) {
		c.t.Fatalf("message of %d bytes: frame of %d, err %v", len(f.Payload), n, err)
	}
	return frame{Header: h, body: body}
}

// expectReply is testClient.expectReply over WebSocket.
func (c *wsClient) expectReply(op protocol.Op, id uint32, v codec.Readable) frame {
	c.t.Helper()
	f := c.read()
	if f.Op != op || f.RequestID != id {
		c.t.Fatalf("got op %v id %d flags %d, want op %v id %d", f.Op, f.RequestID, f.Flags, op, id)
	}
	if _, wantErr := v.(*protocol.ErrorResp); f.Flags&codec.FlagError != 0 && !wantErr {
		var e protocol.ErrorResp
		_ = codec.ReadBody(f.body, &e)
		c.t.Fatalf("%v %d answered error %v (%q)", op, id, e.Code, e.Message)
	}
	if err := codec.ReadBody(f.body, v); err != nil {
		c.t.Fatalf("decode %v: %v", op, err)
	}
	return f
}

func (c *wsClient) login(user string, id uint32) *protocol.LoginResp {
	c.t.Helper()
	c.send(protocol.Op_LOGIN, id, &protocol.LoginReq{Username: user, Password: "pw",
		DeviceId: "browser"})
	var resp protocol.LoginResp
	c.expectReply(protocol.Op_LOGIN_ACK, id, &resp)
	return &resp
}

// expectWSClose reads a close frame with code, then the end of the stream.
func (c *wsClient) expectWSClose(code ws.StatusCode) {
	c.t.Helper()
	f := c.readWSFrame()
	if f.Header.OpCode != ws.OpClose || len(f.Payload) < 2 {
		c.t.Fatalf("got op %v payload %x, want a close frame", f.Header.OpCode, f.Payload)
	}
	if got := ws.StatusCode(binary.BigEndian.Uint16(f.Payload)); got != code {
		c.t.Fatalf("close code %d, want %d", got, code)
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	// A reset is as good as EOF: the server closes without reading what the
	// client sent after the offending frame.
	n, err := c.r.Read(make([]byte, 1))
	if n != 0 || !isEOF(err) && !errors.Is(err, syscall.ECONNRESET) {
		c.t.Fatalf("want EOF after close, got %d bytes, err %v", n, err)
	}
}

// expectClose reads the CLOSE frame with reason in a binary message, then a
// close frame with code and the end of the stream.
func (c *wsClient) expectClose(reason protocol.CloseReason, code ws.StatusCode) *protocol.CloseMsg {
	c.t.Helper()
	var msg protocol.CloseMsg
	c.expectReply(protocol.Op_CLOSE, 0, &msg)
	if msg.Reason != reason {
		c.t.Fatalf("close reason %v (%q), want %v", msg.Reason, msg.Message, reason)
	}
	c.expectWSClose(code)
	return &msg
}

// rawUpgrade sends a hand-written upgrade request and returns the status
// line of the answer.
func rawUpgrade(t *testing.T, addr, request string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(request)); err != nil {
		t.Fatalf("write: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("read status line: %v", err)
	}
	return line
}
