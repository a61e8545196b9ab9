package gateway

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	gwregistry "github.com/resonance-im/resonance/internal/registry"
	"github.com/resonance-im/resonance/internal/run"
)

// registryTimeout bounds one call to the registry.
const registryTimeout = 2 * time.Second

// registration keeps the gateway's push address in the registry from before
// the first client can connect until shutdown begins. Its methods do
// nothing on a nil *registration (no registry configured).
type registration struct {
	reg  gwregistry.Registry
	addr string
	ttl  time.Duration
	log  zerolog.Logger
	warn zerolog.Logger // sampled: a registry outage fails every refresh
	// cancel ends keep; stopped is closed when keep returned, so that
	// Deregister cannot be overtaken by a refresh still in flight.
	cancel  context.CancelFunc
	stopped chan struct{}
}

func newRegistration(reg gwregistry.Registry, addr string, ttl time.Duration,
	log zerolog.Logger) *registration {
	if reg == nil {
		return nil
	}
	return &registration{reg: reg, addr: addr, ttl: ttl, log: log,
		warn:    log.Sample(&zerolog.BurstSampler{Burst: 3, Period: time.Minute}),
		stopped: make(chan struct{})}
}

// register makes the first registration. It runs before the client listener
// opens: a route can name this gateway only after a login here, so task
// never reads such a route while the registry still says "vanished" from an
// earlier life at the same address.
func (r *registration) register(ctx context.Context) error {
	if r == nil {
		return nil
	}
	if err := r.refresh(ctx); err != nil {
		return err
	}
	r.log.Info().Str("push_addr", r.addr).Str("ttl", r.ttl.String()).Msg("registered")
	return nil
}

func (r *registration) refresh(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, registryTimeout)
	defer cancel()
	return r.reg.Register(cctx, r.addr, r.ttl)
}

// start runs keep in grp until ctx is done or deregister is called.
func (r *registration) start(ctx context.Context, grp *run.Group) {
	if r == nil {
		return
	}
	ctx, r.cancel = context.WithCancel(ctx)
	grp.Go(r.log, "registry", func() { r.keep(ctx) })
}

// keep refreshes the registration every third of its TTL until ctx is done;
// two refreshes may fail before it lapses.
func (r *registration) keep(ctx context.Context) {
	defer close(r.stopped)
	tick := time.NewTicker(r.ttl / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := r.refresh(ctx); err != nil && ctx.Err() == nil {
			r.warn.Warn().Err(err).Str("push_addr", r.addr).Msg("registry refresh failed")
		}
	}
}

// deregister stops keep and waits for it to end, then marks the address gone, so that
// task stops pushing here before the clients are told to leave. A failure
// is only logged: the registration then lapses after its TTL.
func (r *registration) deregister() {
	if r == nil {
		return
	}
	r.cancel()
	<-r.stopped
	ctx, cancel := context.WithTimeout(context.Background(), registryTimeout)
	defer cancel()
	if err := r.reg.Deregister(ctx, r.addr); err != nil {
		r.log.Warn().Err(err).Str("push_addr", r.addr).Msg("deregister failed")
		return
	}
	r.log.Info().Str("push_addr", r.addr).Msg("deregistered")
}
