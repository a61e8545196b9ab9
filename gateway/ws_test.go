package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
	"github.com/resonance-im/resonance/kitex_gen/pushrpc"
)

func TestWS_LoginSendAndPushBesideTCP(t *testing.T) {
	h := startGateway(t, Config{})
	browser, native := h.dialWS(t), h.dial(t)
	if resp := browser.login("alice", 1); resp.UserId != 1 {
		t.Fatalf("websocket login as user %d, want 1", resp.UserId)
	}
	native.login("bob", 1)

	browser.send(protocol.Op_SEND, 2, &protocol.SendReq{ClientMsgId: "m1", ToUserId: 2,
		Content: []byte("hi bob")})
	var ack protocol.SendResp
	browser.expectReply(protocol.Op_SEND_ACK, 2, &ack)
	if ack.Seq != 1 || ack.ConvId != "p2p:1:2" {
		t.Fatalf("ack %+v, want seq 1 in p2p:1:2", &ack)
	}

	// One push to both: the same frame reaches the WebSocket client inside a
	// binary message and the TCP client as is.
	msg := &protocol.PushMsg{Message: &common.Message{ConvId: "p2p:1:2", Seq: 1,
		Content: []byte("hi bob")}}
	pushFrame := codec.EncodeFrame(protocol.Op_PUSH, 0, 0, msg)
	resp, err := h.pushClient(t).Push(context.Background(), &pushrpc.PushReq{
		Targets: []*pushrpc.Target{
			{ConnId: h.logic.connOf("alice").ConnId, UserId: 1},
			{ConnId: h.logic.connOf("bob").ConnId, UserId: 2},
		},
		Frame: pushFrame,
	})
	if err != nil || resp.Delivered != 2 {
		t.Fatalf("push: resp %+v err %v, want 2 delivered", resp, err)
	}
	for name, got := range map[string]frame{"websocket": browser.read(), "tcp": native.read()} {
		if got.Op != protocol.Op_PUSH || !bytes.Equal(got.body, pushFrame[codec.HeaderSize:]) {
			t.Fatalf("%s client got op %v body %x, want the push", name, got.Op, got.body)
		}
	}
	if st := h.gw.Stats(); st.Upgrades != 1 {
		t.Fatalf("upgrades %d, want 1", st.Upgrades)
	}
}

func TestWS_FragmentedMessageWithPingInside(t *testing.T) {
	h := startGateway(t, Config{})
	c := h.dialWS(t)
	login := codec.EncodeFrame(protocol.Op_LOGIN, 0, 7,
		&protocol.LoginReq{Username: "alice", Password: "pw"})
	third := len(login) / 3
	c.writeFrame(ws.OpBinary, false, login[:third])
	c.writeFrame(ws.OpPing, true, []byte("mid"))
	c.writeFrame(ws.OpContinuation, false, login[third:2*third])
	c.writeFrame(ws.OpContinuation, true, login[2*third:])

	// The ping is answered at once, before the message it interrupted.
	pong := c.readWSFrame()
	if pong.Header.OpCode != ws.OpPong || string(pong.Payload) != "mid" {
		t.Fatalf("got op %v payload %q, want pong \"mid\"", pong.Header.OpCode, pong.Payload)
	}
	var resp protocol.LoginResp
	c.expectReply(protocol.Op_LOGIN_ACK, 7, &resp)
	if resp.UserId != 1 {
		t.Fatalf("login as user %d, want 1", resp.UserId)
	}
}

func TestWS_PingAndClientClose(t *testing.T) {
	h := startGateway(t, Config{})
	c := h.dialWS(t)
	c.writeFrame(ws.OpPing, true, []byte("are you there"))
	pong := c.readWSFrame()
	if pong.Header.OpCode != ws.OpPong || string(pong.Payload) != "are you there" {
		t.Fatalf("got op %v payload %q, want the pong", pong.Header.OpCode, pong.Payload)
	}
	c.writeFrame(ws.OpClose, true, ws.NewCloseFrameBody(ws.StatusGoingAway, "bye"))
	c.expectWSClose(ws.StatusGoingAway)
}

// A client's close frame is answered with its own code when the frame is
// valid, and otherwise with the error the frame commits (RFC 6455 7.4).
func TestWS_ClientCloseCodes(t *testing.T) {
	cases := []struct {
		name    string
		payload []byte
		want    ws.StatusCode
	}{
		{name: "no code", payload: nil, want: ws.StatusNormalClosure},
		{name: "private code", payload: ws.NewCloseFrameBody(4000, "bye"), want: 4000},
		{name: "one byte", payload: []byte{0x03}, want: ws.StatusProtocolError},
		{name: "code under 1000", payload: ws.NewCloseFrameBody(999, ""),
			want: ws.StatusProtocolError},
		{name: "reserved 1005", payload: ws.NewCloseFrameBody(ws.StatusNoStatusRcvd, ""),
			want: ws.StatusProtocolError},
		{name: "code 5000", payload: ws.NewCloseFrameBody(5000, ""),
			want: ws.StatusProtocolError},
		{name: "code 65535", payload: ws.NewCloseFrameBody(65535, ""),
			want: ws.StatusProtocolError},
		{name: "reason not UTF-8", payload: []byte{0x03, 0xe8, 0xff, 0xfe},
			want: ws.StatusInvalidFramePayloadData},
	}
	h := startGateway(t, Config{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := h.dialWS(t)
			c.writeFrame(ws.OpClose, true, tc.payload)
			c.expectWSClose(tc.want)
		})
	}
}

func TestWS_RefusesBadMessages(t *testing.T) {
	heartbeat := codec.EncodeFrame(protocol.Op_HEARTBEAT, 0, 1, nil)
	unmasked := append([]byte{0x82, byte(len(heartbeat))}, heartbeat...)
	// A header declaring 100 MiB; the payload never needs to follow.
	huge := []byte{0x82, 0x80 | 127}
	huge = binary.BigEndian.AppendUint64(huge, 100<<20)
	huge = append(huge, 1, 2, 3, 4)

	// A continuation declaring 2^63-1 bytes after a first fragment: the sum
	// of the two lengths passes int64.
	endless := []byte{0x80, 0x80 | 127}
	endless = binary.BigEndian.AppendUint64(endless, 1<<63-1)
	endless = append(endless, 1, 2, 3, 4)

	cases := []struct {
		name   string
		write  func(c *wsClient)
		code   ws.StatusCode
		reason protocol.CloseReason // PROTOCOL_ERROR when unset
	}{
		{name: "text message", code: ws.StatusUnsupportedData,
			write: func(c *wsClient) { c.writeFrame(ws.OpText, true, []byte("hello")) }},
		{name: "unmasked frame", code: ws.StatusProtocolError,
			write: func(c *wsClient) { c.writeRaw(unmasked) }},
		{name: "100 MiB declared", code: ws.StatusMessageTooBig,
			reason: protocol.CloseReason_FRAME_TOO_LARGE,
			write:  func(c *wsClient) { c.writeRaw(huge) }},
		{name: "fragments over the limit", code: ws.StatusMessageTooBig,
			reason: protocol.CloseReason_FRAME_TOO_LARGE,
			write: func(c *wsClient) {
				c.writeFrame(ws.OpBinary, false, make([]byte, 1000))
				c.writeFrame(ws.OpContinuation, false, make([]byte, 1000))
			}},
		{name: "continuation of 2^63-1 bytes", code: ws.StatusMessageTooBig,
			reason: protocol.CloseReason_FRAME_TOO_LARGE,
			write: func(c *wsClient) {
				c.writeFrame(ws.OpBinary, false, []byte{0x52})
				c.writeRaw(endless)
			}},
		{name: "two frames in one message", code: ws.StatusProtocolError,
			write: func(c *wsClient) {
				c.writeFrame(ws.OpBinary, true, append(bytes.Clone(heartbeat), heartbeat...))
			}},
		{name: "continuation without start", code: ws.StatusProtocolError,
			write: func(c *wsClient) { c.writeFrame(ws.OpContinuation, true, heartbeat) }},
		{name: "bad protocol frame", code: ws.StatusProtocolError,
			write: func(c *wsClient) { c.writeFrame(ws.OpBinary, true, []byte("nope")) }},
	}
	h := startGateway(t, Config{MaxBody: 1024})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := h.dialWS(t)
			tc.write(c)
			reason := tc.reason
			if reason == protocol.CloseReason_UNKNOWN {
				reason = protocol.CloseReason_PROTOCOL_ERROR
			}
			c.expectClose(reason, tc.code)
		})
	}
	want := map[protocol.CloseReason]uint64{}
	for _, tc := range cases {
		if tc.reason == protocol.CloseReason_UNKNOWN {
			tc.reason = protocol.CloseReason_PROTOCOL_ERROR
		}
		want[tc.reason]++
	}
	closes := h.gw.Stats().Closes
	for reason, n := range want {
		if closes[reason] != n {
			t.Fatalf("%s closes counted %d, want %d", reason, closes[reason], n)
		}
	}
}

func TestWS_OriginAllowList(t *testing.T) {
	h := startGateway(t, Config{AllowedOrigins: []string{"https://chat.example"}})
	cases := []struct {
		name   string
		origin string
		status int // 0: accepted
	}{
		{name: "allowed origin", origin: "https://chat.example"},
		{name: "no origin (not a browser)", origin: ""},
		{name: "other site", origin: "https://evil.example", status: 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, status, err := h.tryDialWS(t, tc.origin)
			if tc.status == 0 {
				if err != nil {
					t.Fatalf("dial: %v (status %d)", err, status)
				}
				c.login("alice", 1)
				return
			}
			if err == nil || status != tc.status {
				t.Fatalf("dial err %v status %d, want refused with %d", err, status, tc.status)
			}
		})
	}
	if n := h.gw.Stats().HandshakesRefused; n != 1 {
		t.Fatalf("refused handshakes counted %d, want 1", n)
	}
}

func TestWS_BadUpgradeRequests(t *testing.T) {
	h := startGateway(t, Config{})
	addr := h.gw.Addr().String()
	cases := []struct {
		name    string
		request string
		status  string
	}{
		{name: "plain GET", request: "GET / HTTP/1.1\r\nHost: x\r\n\r\n", status: " 400 "},
		{name: "no HTTP version", request: "GET /\r\nHost: x\r\n\r\n", status: " 400 "},
		{name: "no request line", request: "GET \r\n\r\n", status: " 400 "},
		{name: "headers too long", request: "GET / HTTP/1.1\r\nX: " +
			strings.Repeat("a", maxHandshake) + "\r\n\r\n", status: " 431 "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if line := rawUpgrade(t, addr, tc.request); !strings.Contains(line, tc.status) {
				t.Fatalf("status line %q, want %q", line, tc.status)
			}
		})
	}
}

func TestWS_KickAndShutdown(t *testing.T) {
	h := startGateway(t, Config{})
	kicked, other := h.dialWS(t), h.dialWS(t)
	kicked.login("alice", 1)
	other.login("bob", 1)
	_, err := h.pushClient(t).Kick(context.Background(), &pushrpc.KickReq{
		Targets: []*pushrpc.Target{{ConnId: h.logic.connOf("alice").ConnId, UserId: 1}},
		Reason:  protocol.CloseReason_KICKED,
	})
	if err != nil {
		t.Fatalf("kick: %v", err)
	}
	msg := kicked.expectClose(protocol.CloseReason_KICKED, ws.StatusNormalClosure)
	if msg.ReconnectAfterMs != -1 {
		t.Fatalf("kick reconnect after %d, want -1", msg.ReconnectAfterMs)
	}

	if err := h.stop(t); err != nil {
		t.Fatalf("Run returned %v", err)
	}
	msg = other.expectClose(protocol.CloseReason_SERVER_SHUTDOWN, ws.StatusGoingAway)
	if msg.ReconnectAfterMs <= 0 {
		t.Fatalf("shutdown reconnect after %d, want a positive delay", msg.ReconnectAfterMs)
	}
}

// A browser pointed at the client port (a plain GET, no Upgrade) is told
// what the port is and where the web app lives, not only that its
// WebSocket handshake failed (found by a new-user trial).
func TestWS_PlainGETSaysWhatThePortIs(t *testing.T) {
	h := startGateway(t, Config{})
	conn, err := net.DialTimeout("tcp", h.gw.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "--web-listen") {
		t.Fatalf("answer %d %q, want 400 pointing at the web app's --web-listen", resp.StatusCode,
			body)
	}
}
