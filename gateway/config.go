package gateway

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"time"

	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/codec"
	gwregistry "github.com/resonance-im/resonance/internal/registry"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc/logic"
)

// Config tunes a Gateway. Zero fields take the default named on each field.
type Config struct {
	// Addr is the client listen address; default "0.0.0.0:7000". Port 0 picks a
	// free port, reported by Gateway.Addr once Ready.
	Addr string
	// LoginTimeout is how long a new connection may stay unauthenticated; the
	// first successful LOGIN must arrive within it. Default 10s.
	LoginTimeout time.Duration
	// HeartbeatInterval is sent to clients in LoginResp; default 30s.
	HeartbeatInterval time.Duration
	// HeartbeatTimeout closes a connection silent for longer; default
	// 3 x HeartbeatInterval. It must not be shorter than HeartbeatInterval.
	HeartbeatTimeout time.Duration
	// MaxBody is the largest client frame body in bytes; default
	// codec.DefaultMaxBody.
	MaxBody int
	// Workers bounds the goroutines calling logic; default 1024. When all are
	// busy, requests are answered BUSY instead of queued.
	Workers int
	// MaxPending bounds the requests queued per connection; default 64.
	MaxPending int
	// RequestTimeout bounds each logic call; default 5s.
	RequestTimeout time.Duration
	// RenewInterval is the period of the batched route renewal; default 30s.
	RenewInterval time.Duration
	// OutboundHighWater is the number of bytes pending to a client past which
	// it is closed as a slow consumer; default 4 MiB.
	OutboundHighWater int
	// NumEventLoop is the number of gnet event loops; default runtime.NumCPU().
	NumEventLoop int
	// RegisterTTL is how long the push address stays registered without a
	// refresh (Deps.Registry); it is refreshed every third of it. Default 15s.
	RegisterTTL time.Duration

	// MaxConns caps the open client connections; a connection over the cap
	// is closed with OVERLOADED. Default 100000; negative means no cap.
	MaxConns int
	// AcceptRate limits new connections per second, with a burst of one
	// second's worth; a connection over the rate is closed with OVERLOADED and
	// a reconnect delay. Default 5000; negative means no limit.
	AcceptRate int
	// AcceptAddrRate limits new connections per second from one client
	// address (an IPv6 /64 counts as one), with a burst of one second's
	// worth, so that one address cannot spend AcceptRate for everyone: a
	// connection over it is closed as over AcceptRate and takes nothing of
	// it. A trusted proxy's connections are not limited by their address
	// (the balancer limits its clients). Default a tenth of AcceptRate (at
	// least 1), no limit when AcceptRate has none; negative means no limit.
	AcceptAddrRate int
	// FrameRate limits the frames per second of one connection (WebSocket
	// control frames included), with a burst of two seconds' worth; a client
	// over it is closed with RATE_LIMITED. Default 200; negative means no
	// limit.
	FrameRate int
	// AllowedOrigins lists the Origin header values a WebSocket handshake may
	// carry, compared exactly (for example "https://chat.example.com"). Empty
	// allows every origin. A handshake without Origin is always allowed:
	// only browsers send it, and the list exists to keep other sites' pages
	// from opening connections with a user's browser.
	AllowedOrigins []string
	// TrustedProxies lists the load balancers (addresses or prefixes) whose
	// word on a client's address is taken: a PROXY protocol header (version
	// 1 or 2) first on the connection, or X-Forwarded-For in a WebSocket
	// upgrade (see proxy.go). logic limits password logins and
	// registrations per client address, which behind a balancer would
	// otherwise be the balancer's. Empty (the default): every peer is the
	// client, and a PROXY header is refused as a malformed frame.
	TrustedProxies []netip.Prefix

	// InternalSecret, when set, is required on every call to the Push
	// service (see internal/rpcauth); task must send the same. Empty: none.
	InternalSecret string
}

// Deps are the parts a Gateway uses but does not own.
type Deps struct {
	// Log receives the gateway's logs; nothing per frame is above debug.
	Log zerolog.Logger
	// Logic is the client of the logic service, built by the caller.
	Logic logic.Client
	// PushListener is where the Push Kitex server accepts. The server owns it
	// from Run on and closes it when it stops.
	PushListener net.Listener
	// PushAddr is the push address advertised to logic in sessions; default
	// PushListener.Addr().String().
	PushAddr string
	// Registry, when set, holds PushAddr while the gateway runs, so that
	// task stops calling this gateway as soon as it is gone instead of
	// waiting out timeouts; nil registers nothing.
	Registry gwregistry.Registry
}

const (
	defaultAddr              = "0.0.0.0:7000"
	defaultLoginTimeout      = 10 * time.Second
	defaultHeartbeatInterval = 30 * time.Second
	defaultWorkers           = 1024
	defaultMaxPending        = 64
	defaultRequestTimeout    = 5 * time.Second
	defaultRenewInterval     = 30 * time.Second
	defaultOutboundHighWater = 4 << 20
	defaultMaxConns          = 100000
	defaultAcceptRate        = 5000
	defaultFrameRate         = 200
	defaultRegisterTTL       = 15 * time.Second
	// minRegisterTTL keeps the refresh period (a third) well above a
	// registry round trip.
	minRegisterTTL = 30 * time.Millisecond
	// acceptAddrShare is the default AcceptAddrRate as a fraction of
	// AcceptRate: an address floods at most a tenth of it.
	acceptAddrShare = 10
)

// applyDefaults replaces every zero field of cfg with its default.
func applyDefaults(cfg Config) Config {
	if cfg.Addr == "" {
		cfg.Addr = defaultAddr
	}
	if cfg.LoginTimeout == 0 {
		cfg.LoginTimeout = defaultLoginTimeout
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = defaultHeartbeatInterval
	}
	if cfg.HeartbeatTimeout == 0 {
		cfg.HeartbeatTimeout = 3 * cfg.HeartbeatInterval
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = codec.DefaultMaxBody
	}
	if cfg.Workers == 0 {
		cfg.Workers = defaultWorkers
	}
	if cfg.MaxPending == 0 {
		cfg.MaxPending = defaultMaxPending
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = defaultRequestTimeout
	}
	if cfg.RenewInterval == 0 {
		cfg.RenewInterval = defaultRenewInterval
	}
	if cfg.OutboundHighWater == 0 {
		cfg.OutboundHighWater = defaultOutboundHighWater
	}
	if cfg.NumEventLoop == 0 {
		cfg.NumEventLoop = runtime.NumCPU()
	}
	if cfg.RegisterTTL == 0 {
		cfg.RegisterTTL = defaultRegisterTTL
	}
	cfg.MaxConns = orDefault(cfg.MaxConns, defaultMaxConns)
	cfg.AcceptRate = orDefault(cfg.AcceptRate, defaultAcceptRate)
	if cfg.AcceptAddrRate == 0 {
		cfg.AcceptAddrRate = -1
		if cfg.AcceptRate > 0 {
			cfg.AcceptAddrRate = max(cfg.AcceptRate/acceptAddrShare, 1)
		}
	}
	cfg.FrameRate = orDefault(cfg.FrameRate, defaultFrameRate)
	return cfg
}

// orDefault returns def for zero; a negative value (no limit) stays.
func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// validate checks a config after applyDefaults.
func validate(cfg Config) error {
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return fmt.Errorf("%w: addr %q: %v", ErrBadConfig, cfg.Addr, err)
	}
	durations := []struct {
		name string
		d    time.Duration
	}{
		{"login timeout", cfg.LoginTimeout},
		{"heartbeat interval", cfg.HeartbeatInterval},
		{"heartbeat timeout", cfg.HeartbeatTimeout},
		{"request timeout", cfg.RequestTimeout},
		{"renew interval", cfg.RenewInterval},
	}
	for _, d := range durations {
		if d.d < 0 {
			return fmt.Errorf("%w: %s %v is negative", ErrBadConfig, d.name, d.d)
		}
	}
	if cfg.RegisterTTL < minRegisterTTL {
		return fmt.Errorf("%w: register ttl %v under %v", ErrBadConfig, cfg.RegisterTTL,
			minRegisterTTL)
	}
	if cfg.HeartbeatTimeout < cfg.HeartbeatInterval {
		return fmt.Errorf("%w: heartbeat timeout %v is shorter than the interval %v",
			ErrBadConfig, cfg.HeartbeatTimeout, cfg.HeartbeatInterval)
	}
	if cfg.FrameRate > maxFrameRate {
		return fmt.Errorf("%w: frame rate %d over %d", ErrBadConfig, cfg.FrameRate, maxFrameRate)
	}
	counts := []struct {
		name string
		n    int
	}{
		{"max body", cfg.MaxBody}, {"workers", cfg.Workers}, {"max pending", cfg.MaxPending},
		{"outbound high water", cfg.OutboundHighWater}, {"event loops", cfg.NumEventLoop},
	}
	for _, c := range counts {
		if c.n < 0 {
			return fmt.Errorf("%w: %s %d is negative", ErrBadConfig, c.name, c.n)
		}
	}
	return nil
}

// Validate reports a setting New would refuse, after zero fields take their
// defaults. It opens nothing, so a caller can check before starting
// anything else.
func (cfg Config) Validate() error { return validate(applyDefaults(cfg)) }

// validateDeps checks the dependencies New needs.
func validateDeps(deps Deps) error {
	if deps.Logic == nil {
		return fmt.Errorf("%w: logic client is nil", ErrBadConfig)
	}
	if deps.PushListener == nil {
		return fmt.Errorf("%w: push listener is nil", ErrBadConfig)
	}
	return nil
}
