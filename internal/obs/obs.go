// Package obs serves a process's operational HTTP endpoints: Prometheus
// metrics, liveness, readiness and, behind a flag, pprof. Roles register
// their collectors on the Registry they are handed; nothing is global.
package obs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// Check reports whether one dependency is usable; nil means ready.
type Check func(ctx context.Context) error

// NewRegistry returns a registry with the Go runtime and process collectors,
// so heap, goroutines, RSS and open files are always exported.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// Server is the HTTP side of a process.
type Server struct {
	log    zerolog.Logger
	reg    *prometheus.Registry
	checks map[string]Check
	ready  atomic.Bool
	srv    *http.Server
	mux    *http.ServeMux
	ln     net.Listener
}

// Options configure a Server.
type Options struct {
	Addr   string           // listen address; port 0 picks one
	Pprof  bool             // serve /debug/pprof/
	Checks map[string]Check // dependencies /readyz verifies, by name
}

// Listen binds the address and returns a Server that is not yet serving.
// /readyz fails until SetReady(true).
func Listen(opts Options, reg *prometheus.Registry, log zerolog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("obs: %w", err) // net's error names the address
	}
	s := &Server{log: log, reg: reg, checks: opts.Checks, ln: ln}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	if opts.Pprof {
		mux.Handle("/debug/pprof/", localOnly(pprof.Index))
		mux.Handle("/debug/pprof/cmdline", localOnly(pprof.Cmdline))
		mux.Handle("/debug/pprof/profile", localOnly(pprof.Profile))
		mux.Handle("/debug/pprof/symbol", localOnly(pprof.Symbol))
		mux.Handle("/debug/pprof/trace", localOnly(pprof.Trace))
	}
	s.mux = mux
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return s, nil
}

// localOnly serves h to clients on this host alone, 403 to the rest. A
// heap profile holds what the process holds, tokens and passwords in
// flight among it, and the listener of the metrics is often on every
// interface (a lone role's default): from elsewhere, pprof is reached
// through a tunnel (ssh -L, kubectl port-forward), whose requests come
// from loopback.
func localOnly(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			http.Error(w, "pprof answers only on this host: reach it through a tunnel "+
				"(ssh -L, kubectl port-forward)", http.StatusForbidden)
			return
		}
		h(w, r)
	})
}

// Handle serves pattern (http.ServeMux syntax) with h from now on, for a
// part of the process that starts after the listener, such as logic's
// /admin/ endpoints. Safe while serving: until then the pattern is 404.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve serves until Shutdown; it returns nil after a Shutdown.
func (s *Server) Serve() error {
	if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("obs: serve: %w", err)
	}
	return nil
}

// SetReady flips /readyz. A process sets it after start and clears it first
// thing at shutdown, so load balancers stop sending before draining begins.
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// Shutdown stops serving, waiting for in-flight scrapes up to ctx.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if !s.ready.Load() {
		http.Error(w, "not ready: starting or draining", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	for name, check := range s.checks {
		if err := check(ctx); err != nil {
			s.log.Warn().Err(err).Str("dependency", name).Msg("readiness check failed")
			http.Error(w, "not ready: "+name, http.StatusServiceUnavailable)
			return
		}
	}
	fmt.Fprintln(w, "ready")
}
