package app

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestWeb_ServesTheAppAndAllowsItsOrigin starts the whole system with the
// web app and an Origin allow-list naming another site: the page and its
// config are served, and the gateway accepts a WebSocket from the page's
// origin but not from a third one.
func TestWeb_ServesTheAppAndAllowsItsOrigin(t *testing.T) {
	cfg := baseConfig(t, RoleAll)
	cfg.WebListen = "127.0.0.1:0"
	cfg.Gateway.AllowedOrigins = []string{"https://other.example"}
	sys := startSystem(t, cfg)
	web := sys.WebAddr()
	if web == nil {
		t.Fatal("no web app address")
	}
	base := "http://" + web.String()

	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK ||
		!strings.HasPrefix(ct, "text/html") {
		t.Fatalf("GET /: %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	resp, err = http.Get(base + "/config.json")
	if err != nil {
		t.Fatal(err)
	}
	var pageCfg struct {
		WSURL string `json:"wsUrl"`
	}
	err = json.NewDecoder(resp.Body).Decode(&pageCfg)
	resp.Body.Close()
	if want := "ws://" + sys.GatewayAddr().String() + "/"; err != nil || pageCfg.WSURL != want {
		t.Fatalf("config.json wsUrl %q (%v), want %q", pageCfg.WSURL, err, want)
	}

	gw := sys.GatewayAddr().String()
	tests := []struct {
		origin string
		want   int
	}{
		{base, http.StatusSwitchingProtocols},
		{"http://localhost:" + portOf(web), http.StatusSwitchingProtocols},
		{"https://other.example", http.StatusSwitchingProtocols},
		{"https://evil.example", http.StatusForbidden},
	}
	for _, tc := range tests {
		if got := upgradeStatus(t, gw, tc.origin); got != tc.want {
			t.Errorf("upgrade with Origin %s: HTTP %d, want %d", tc.origin, got, tc.want)
		}
	}
}

// TestWeb_PortInUseIsNotFatal: the web app is a convenience beside the
// gateway, so a taken port is logged and the system runs without it.
func TestWeb_PortInUseIsNotFatal(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := baseConfig(t, RoleAll)
	cfg.WebListen = ln.Addr().String()
	sys := startSystem(t, cfg)
	if sys.WebAddr() != nil || sys.GatewayAddr() == nil {
		t.Fatalf("web %v, gateway %v: want no web app and a gateway", sys.WebAddr(), sys.GatewayAddr())
	}
}

func portOf(a net.Addr) string {
	_, port, _ := net.SplitHostPort(a.String())
	return port
}

// upgradeStatus sends a browser-like WebSocket handshake and returns the
// status code of the answer.
func upgradeStatus(t *testing.T, addr, origin string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"+
		"Origin: %s\r\n\r\n", addr, origin)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("handshake with Origin %s: %v", origin, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
