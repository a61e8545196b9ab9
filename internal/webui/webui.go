// Package webui serves the browser chat app of clients/web over HTTP: the
// embedded page, its scripts and the SDK, and /config.json, which tells the
// page the gateway's WebSocket URL. It is a small static server beside the
// gateway; the chat itself goes over the gateway's WebSocket port.
package webui

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	web "github.com/resonance-im/resonance/clients/web"
)

// ErrNoIndex means the files to serve lack app/index.html, the page.
var ErrNoIndex = errors.New("webui: no app/index.html among the files")

// Options configure a Server.
type Options struct {
	// Addr is the listen address; port 0 picks one. Required.
	Addr string
	// GatewayAddr is the gateway's bound client address. When WSURL is
	// empty the page is told ws://<host>:<gateway port>/, with the host the
	// browser used to reach the page when the gateway listens on every
	// interface, else the gateway's host.
	GatewayAddr net.Addr
	// WSURL, when set, is the WebSocket URL the page is told as is (for a
	// TLS-terminating proxy: wss://chat.example.com/ws).
	WSURL string
	// Files is what is served; default the embedded clients/web files.
	Files fs.FS
}

// Server is the web app's HTTP server.
type Server struct {
	opts  Options
	ln    net.Listener
	srv   *http.Server
	log   zerolog.Logger
	files map[string]file
}

// file is one served file, read once at start: the app is a few small
// files, and an ETag from the content lets browsers revalidate cheaply.
type file struct {
	body        []byte
	contentType string
	etag        string
}

// contentTypes are set explicitly rather than from the system's MIME table,
// which may lack .js or map it to a type browsers refuse for modules.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
	".json": "application/json",
}

// Listen binds opts.Addr and loads the files; Serve starts serving.
func Listen(opts Options, log zerolog.Logger) (*Server, error) {
	if opts.Files == nil {
		opts.Files = web.Files
	}
	files, err := load(opts.Files)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("webui: listen %s: %w", opts.Addr, err)
	}
	s := &Server{opts: opts, ln: ln, log: log, files: files}
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	return s, nil
}

// load reads every file under app/ and sdk/ into memory, keyed by URL path:
// app/index.html is "/", app/x is "/x", sdk/x is "/sdk/x".
func load(fsys fs.FS) (map[string]file, error) {
	files := make(map[string]file)
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			return nil // not a servable asset
		}
		body, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		f := file{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		switch {
		case p == "app/index.html":
			files["/"] = f
		case strings.HasPrefix(p, "app/"):
			files["/"+strings.TrimPrefix(p, "app/")] = f
		default:
			files["/"+p] = f
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("webui: load files: %w", err)
	}
	if _, ok := files["/"]; !ok {
		return nil, ErrNoIndex
	}
	return files, nil
}

// SetGatewayAddr sets Options.GatewayAddr, for a gateway started after
// Listen; call it before Serve.
func (s *Server) SetGatewayAddr(addr net.Addr) { s.opts.GatewayAddr = addr }

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// URL is the address to open in a browser: loopback when the server listens
// on every interface.
func (s *Server) URL() string {
	host, port, _ := net.SplitHostPort(s.ln.Addr().String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

// Serve serves until Shutdown; it returns nil after a Shutdown.
func (s *Server) Serve() error {
	if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("webui: serve: %w", err)
	}
	return nil
}

// Shutdown stops serving, waiting for in-flight requests up to ctx. It also
// releases the port of a server that never served (its gateway failed).
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	_ = s.ln.Close()
	return err
}

// Handler serves the files and /config.json.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /config.json", s.config)
	mux.HandleFunc("GET /", s.static)
	return securityHeaders(mux)
}

// securityHeaders keeps the page to its own origin: scripts and styles
// from itself only, images from itself and from object URLs (blob:, the
// images the app downloads over the WebSocket and shows), connections to
// itself and to WebSocket URLs (the gateway is another port, which 'self'
// does not cover).
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss:; "+
			"img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

func (s *Server) static(w http.ResponseWriter, r *http.Request) {
	f, ok := s.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	// no-cache: always revalidate, so a new binary's files are used at
	// once; the ETag makes an unchanged file a 304.
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", f.etag)
	if match := r.Header.Get("If-None-Match"); match != "" && match == f.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", f.contentType)
	h.Set("Content-Length", strconv.Itoa(len(f.body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(f.body)
}

// pageConfig is the body of /config.json.
type pageConfig struct {
	WSURL string `json:"wsUrl"`
}

func (s *Server) config(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(pageConfig{WSURL: s.wsURL(r)})
}

// wsURL is the gateway's WebSocket URL as the browser should dial it.
func (s *Server) wsURL(r *http.Request) string {
	if s.opts.WSURL != "" {
		return s.opts.WSURL
	}
	if s.opts.GatewayAddr == nil {
		return ""
	}
	host, port, _ := net.SplitHostPort(s.opts.GatewayAddr.String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		// The gateway listens everywhere: the host that reached this page
		// reaches the gateway too.
		host = r.Host
		if h, _, err := net.SplitHostPort(r.Host); err == nil {
			host = h
		}
		host = strings.Trim(host, "[]")
	}
	return "ws://" + net.JoinHostPort(host, port) + "/"
}

// Origins returns the Origin values a browser sends from a page served at
// addr (a bound listen address): loopback names for a loopback or
// unspecified host, else the host itself. A gateway with an Origin
// allow-list adds them, so that its own web app is always allowed.
func Origins(addr net.Addr) []string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return nil
	}
	ip := net.ParseIP(host)
	if ip != nil && (ip.IsLoopback() || ip.IsUnspecified()) {
		return []string{
			"http://127.0.0.1:" + port, "http://localhost:" + port, "http://[::1]:" + port,
		}
	}
	return []string{"http://" + net.JoinHostPort(host, port)}
}
