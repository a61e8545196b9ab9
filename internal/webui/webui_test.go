package webui

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/rs/zerolog"
)

func testFiles() fstest.MapFS {
	return fstest.MapFS{
		"app/index.html": {Data: []byte("<!doctype html><title>x</title>")},
		"app/app.js":     {Data: []byte("import '../sdk/index.js';")},
		"app/app.css":    {Data: []byte("body{}")},
		"app/notes.txt":  {Data: []byte("not an asset")},
		"sdk/index.js":   {Data: []byte("export {};")},
	}
}

func newTestServer(t *testing.T, opts Options) *httptest.Server {
	t.Helper()
	opts.Addr = "127.0.0.1:0"
	if opts.Files == nil {
		opts.Files = testFiles()
	}
	s, err := Listen(opts, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.ln.Close() })
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts
}

func get(t *testing.T, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestServer_ServesFilesWithTypesAndRevalidation(t *testing.T) {
	ts := newTestServer(t, Options{})
	tests := []struct {
		path, wantType, wantBody string
	}{
		{"/", "text/html; charset=utf-8", "<!doctype html>"},
		{"/app.js", "text/javascript; charset=utf-8", "import"},
		{"/app.css", "text/css; charset=utf-8", "body"},
		{"/sdk/index.js", "text/javascript; charset=utf-8", "export"},
	}
	for _, tc := range tests {
		resp, body := get(t, ts.URL+tc.path, nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != tc.wantType ||
			!strings.HasPrefix(body, tc.wantBody) {
			t.Errorf("GET %s: %d %q %q", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q, want no-cache", tc.path, cc)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", tc.path)
		}
		etag := resp.Header.Get("ETag")
		again, _ := get(t, ts.URL+tc.path, http.Header{"If-None-Match": {etag}})
		if etag == "" || again.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with If-None-Match %q: %d, want 304", tc.path, etag, again.StatusCode)
		}
	}
	for _, p := range []string{"/notes.txt", "/app/index.html", "/missing.js", "/../go.mod"} {
		if resp, _ := get(t, ts.URL+p, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
}

// The app shows downloaded images through object URLs (blob:), which an
// img-src of 'self' and data: refused: every thumbnail stayed blank. Only
// images may come from blob: URLs; scripts stay the page's own.
func TestServer_PolicyTakesImagesFromObjectURLs(t *testing.T) {
	ts := newTestServer(t, Options{})
	resp, _ := get(t, ts.URL+"/", nil)
	directives := map[string][]string{}
	for _, d := range strings.Split(resp.Header.Get("Content-Security-Policy"), ";") {
		if f := strings.Fields(d); len(f) > 0 {
			directives[f[0]] = f[1:]
		}
	}
	if img := directives["img-src"]; !slices.Contains(img, "blob:") ||
		!slices.Contains(img, "'self'") {
		t.Errorf("img-src %q: want 'self' and blob:", img)
	}
	if def := directives["default-src"]; !slices.Equal(def, []string{"'self'"}) {
		t.Errorf("default-src %q: want 'self' only", def)
	}
	if _, ok := directives["script-src"]; ok {
		t.Errorf("script-src %q: scripts follow default-src", directives["script-src"])
	}
}

func TestServer_ConfigTellsTheGatewayURL(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		host    string
		wantURL string
	}{
		{"gateway on every interface: the page's host", Options{GatewayAddr: tcpAddr("0.0.0.0:7000")},
			"chat.example:8080", "ws://chat.example:7000/"},
		{"IPv6 page host", Options{GatewayAddr: tcpAddr("[::]:7000")},
			"[::1]:8080", "ws://[::1]:7000/"},
		{"gateway on one address: that address", Options{GatewayAddr: tcpAddr("10.0.0.5:7000")},
			"chat.example:8080", "ws://10.0.0.5:7000/"},
		{"configured URL as is", Options{GatewayAddr: tcpAddr("0.0.0.0:7000"),
			WSURL: "wss://chat.example/ws"}, "chat.example", "wss://chat.example/ws"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, tc.opts)
			req, _ := http.NewRequest(http.MethodGet, ts.URL+"/config.json", nil)
			req.Host = tc.host
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var cfg pageConfig
			if err := json.NewDecoder(resp.Body).Decode(&cfg); err != nil {
				t.Fatal(err)
			}
			if cfg.WSURL != tc.wantURL || resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("wsUrl %q (Cache-Control %q), want %q", cfg.WSURL,
					resp.Header.Get("Cache-Control"), tc.wantURL)
			}
		})
	}
}

func TestListen_RefusesFilesWithoutIndex(t *testing.T) {
	_, err := Listen(Options{Addr: "127.0.0.1:0", Files: fstest.MapFS{
		"sdk/index.js": {Data: []byte("export {};")},
	}}, zerolog.Nop())
	if !errors.Is(err, ErrNoIndex) {
		t.Fatalf("Listen without app/index.html: %v, want ErrNoIndex", err)
	}
}

func TestListen_EmbeddedAppIsComplete(t *testing.T) {
	s, err := Listen(Options{Addr: "127.0.0.1:0"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.ln.Close()
	for _, p := range []string{"/", "/app.js", "/app.css", "/sdk/index.js", "/sdk/session.js"} {
		if _, ok := s.files[p]; !ok {
			t.Errorf("embedded files lack %s", p)
		}
	}
}

func TestOrigins(t *testing.T) {
	loopback8080 := []string{"http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"}
	tests := []struct {
		addr string
		want []string
	}{
		{"127.0.0.1:8080", loopback8080},
		{"0.0.0.0:8080", loopback8080},
		{"10.1.2.3:80", []string{"http://10.1.2.3:80"}},
	}
	for _, tc := range tests {
		if got := Origins(tcpAddr(tc.addr)); !slices.Equal(got, tc.want) {
			t.Errorf("Origins(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}

func tcpAddr(s string) net.Addr {
	a, err := net.ResolveTCPAddr("tcp", s)
	if err != nil {
		panic(err)
	}
	return a
}
