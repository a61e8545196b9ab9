package gateway

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	proxyproto "github.com/pires/go-proxyproto"

	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// loopbackProxies trusts every test client, all of which dial from
// 127.0.0.0/8.
var loopbackProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

const proxyV1Alice = "PROXY TCP4 203.0.113.7 10.0.0.1 51234 7000\r\n"

// proxyV2 is a version 2 header naming src for a connection to 10.0.0.1:7000.
func proxyV2(t *testing.T, cmd proxyproto.ProtocolVersionAndCommand, src string) []byte {
	t.Helper()
	h := &proxyproto.Header{Version: 2, Command: cmd, TransportProtocol: proxyproto.TCPv4,
		SourceAddr:      net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src)),
		DestinationAddr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 7000}}
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// loggedInFrom logs c in as user and returns the client address logic was
// given.
func loggedInFrom(t *testing.T, h *harness, c *testClient, user string) string {
	t.Helper()
	c.login(user, 1)
	info := h.logic.connOf(user)
	if info == nil {
		t.Fatalf("logic saw no login of %s", user)
	}
	return info.RemoteAddr
}

func TestProxy_HeaderNamesTheClient(t *testing.T) {
	h := startGateway(t, Config{TrustedProxies: loopbackProxies})
	cases := []struct {
		name   string
		header []byte
		want   string
	}{
		{"v1", []byte(proxyV1Alice), "203.0.113.7:51234"},
		{"v2", proxyV2(t, proxyproto.PROXY, "198.51.100.20:40000"), "198.51.100.20:40000"},
		{"v1 unknown", []byte("PROXY UNKNOWN\r\n"), ""},
		{"v2 local", proxyV2(t, proxyproto.LOCAL, "198.51.100.20:40000"), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := h.dial(t)
			c.writeRaw(tc.header)
			want := tc.want
			if want == "" { // the balancer's own: the peer is the client
				want = c.conn.LocalAddr().String()
			}
			if got := loggedInFrom(t, h, c, "alice"); got != want {
				t.Fatalf("logic saw the client at %q, want %q", got, want)
			}
		})
	}
}

// TestProxy_HeaderInPieces sends a header a byte at a time, with the LOGIN
// behind it in the last write: the gateway waits for the whole header.
func TestProxy_HeaderInPieces(t *testing.T) {
	h := startGateway(t, Config{TrustedProxies: loopbackProxies})
	for _, header := range [][]byte{[]byte(proxyV1Alice), proxyV2(t, proxyproto.PROXY, "203.0.113.7:51234")} {
		c := h.dial(t)
		for _, b := range header {
			c.writeRaw([]byte{b})
			time.Sleep(time.Millisecond) // separate reads on the gateway's side
		}
		if got := loggedInFrom(t, h, c, "alice"); got != "203.0.113.7:51234" {
			t.Fatalf("logic saw the client at %q", got)
		}
	}
}

// TestProxy_TrustedPeerWithoutHeader checks that a trusted peer may send
// frames straight away: it is then the client.
func TestProxy_TrustedPeerWithoutHeader(t *testing.T) {
	h := startGateway(t, Config{TrustedProxies: loopbackProxies})
	c := h.dial(t)
	if got, want := loggedInFrom(t, h, c, "alice"), c.conn.LocalAddr().String(); got != want {
		t.Fatalf("logic saw the client at %q, want the peer %q", got, want)
	}
}

// TestProxy_UntrustedPeerCannotNameItself checks that a header from a peer
// not listed is refused, so that no client chooses the address its logins
// are limited by.
func TestProxy_UntrustedPeerCannotNameItself(t *testing.T) {
	for name, trusted := range map[string][]netip.Prefix{"none listed": nil,
		"another listed": {netip.MustParsePrefix("10.0.0.0/8")}} {
		t.Run(name, func(t *testing.T) {
			h := startGateway(t, Config{TrustedProxies: trusted})
			c := h.dial(t)
			c.writeRaw([]byte(proxyV1Alice))
			c.expectClose(protocol.CloseReason_PROTOCOL_ERROR)
		})
	}
}

func TestProxy_BadHeaderCloses(t *testing.T) {
	h := startGateway(t, Config{TrustedProxies: loopbackProxies})
	long := proxyV2(t, proxyproto.PROXY, "203.0.113.7:51234")
	long[14], long[15] = 0xff, 0xff // 65,535 bytes of addresses and TLVs
	for name, header := range map[string][]byte{
		"v1 without CRLF":  []byte("PROXY TCP4 " + strings.Repeat("1", proxyV1Max)),
		"v1 bad address":   []byte("PROXY TCP4 203.0.113.x 10.0.0.1 51234 7000\r\n"),
		"v2 over its size": long,
	} {
		t.Run(name, func(t *testing.T) {
			c := h.dial(t)
			c.writeRaw(header)
			c.expectClose(protocol.CloseReason_PROTOCOL_ERROR)
		})
	}
}

// dialWSVia opens a WebSocket that first writes prefix (a PROXY header) and
// carries header in its upgrade request.
func (h *harness) dialWSVia(t *testing.T, prefix []byte, header http.Header) *wsClient {
	t.Helper()
	d := ws.Dialer{Timeout: 5 * time.Second, Header: ws.HandshakeHeaderHTTP(header),
		NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil && len(prefix) > 0 {
				_, err = conn.Write(prefix)
			}
			return conn, err
		}}
	conn, br, _, err := d.Dial(context.Background(), "ws://"+h.gw.Addr().String()+"/")
	if err != nil {
		t.Fatalf("websocket dial: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	c := &wsClient{t: t, conn: conn, r: conn}
	if br != nil {
		c.r = io.MultiReader(br, conn)
	}
	return c
}

func TestProxy_WebSocket(t *testing.T) {
	forwarded := http.Header{"X-Forwarded-For": {"192.0.2.1, 198.51.100.9", "127.0.0.5"}}
	cases := []struct {
		name    string
		trusted []netip.Prefix
		prefix  []byte
		header  http.Header
		want    string // "" for the peer's own address
	}{
		// The rightmost entry is a trusted proxy, the one before it the client.
		{"forwarded for", loopbackProxies, nil, forwarded, "198.51.100.9"},
		{"forwarded for an untrusted peer", nil, nil, forwarded, ""},
		{"forwarded for, garbage first", loopbackProxies, nil,
			http.Header{"X-Forwarded-For": {"nonsense, 127.0.0.9"}}, ""},
		{"proxy header wins", loopbackProxies, []byte(proxyV1Alice), forwarded,
			"203.0.113.7:51234"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := startGateway(t, Config{TrustedProxies: tc.trusted})
			c := h.dialWSVia(t, tc.prefix, tc.header)
			c.login("alice", 1)
			info := h.logic.connOf("alice")
			want := tc.want
			if want == "" {
				want = c.conn.LocalAddr().String()
			}
			if info == nil || info.RemoteAddr != want {
				t.Fatalf("logic saw the client at %+v, want %q", info, want)
			}
		})
	}
}

func TestProxyHeaderLen(t *testing.T) {
	v2 := proxyV2(t, proxyproto.PROXY, "203.0.113.7:51234")
	for _, tc := range []struct {
		buf  string
		want int
	}{
		{"", -1}, {"P", -1}, {"PROXY", -1}, {"PROXY TCP4 1.2.3.4", -1},
		{proxyV1Alice + "more", len(proxyV1Alice)},
		{"\r\n\r\n", -1}, {string(v2[:15]), -1}, {string(v2[:len(v2)-1]), -1},
		{string(v2) + "more", len(v2)},
		{"GET / HTTP/1.1\r\n", 0}, {"\xe7\x01", 0}, {"PROXX", 0},
	} {
		if got, err := proxyHeaderLen([]byte(tc.buf)); got != tc.want || err != nil {
			t.Errorf("proxyHeaderLen(%q) = %d, %v; want %d", tc.buf, got, err, tc.want)
		}
	}
}

// FuzzProxyHeader checks that no input makes the header reader panic, and
// that a length it returns is within the input and its bound.
func FuzzProxyHeader(f *testing.F) {
	f.Add([]byte(proxyV1Alice))
	f.Add([]byte("PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n"))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\xcb\x00\x71\x07\x0a\x00\x00\x01\xc8\x32\x1b\x58"))
	f.Fuzz(func(t *testing.T, buf []byte) {
		n, err := proxyHeaderLen(buf)
		if err != nil || n <= 0 {
			return
		}
		if n > len(buf) || n > proxyV2Max {
			t.Fatalf("header length %d of %d bytes", n, len(buf))
		}
		_, _ = parseProxyHeader(buf[:n])
	})
}
