package gateway

import (
	"fmt"
	"net"
	"runtime"
	"time"

	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/codec"
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
	return cfg
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
	if cfg.HeartbeatTimeout < cfg.HeartbeatInterval {
		return fmt.Errorf("%w: heartbeat timeout %v is shorter than the interval %v",
			ErrBadConfig, cfg.HeartbeatTimeout, cfg.HeartbeatInterval)
	}
	if cfg.MaxBody < 0 || cfg.Workers < 0 || cfg.MaxPending < 0 ||
		cfg.OutboundHighWater < 0 || cfg.NumEventLoop < 0 {
		return fmt.Errorf("%w: negative size or count", ErrBadConfig)
	}
	return nil
}

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
