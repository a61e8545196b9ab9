// Package gateway owns the client-facing role of Resonance: it holds the long
// client connections (gnet, binary frames of package codec), forwards their
// requests to logic over Kitex through a bounded worker pool, and hosts the
// Push Kitex service through which task delivers frames to connections and
// closes them (Kick).
//
// One port serves raw TCP and WebSocket: a connection whose first bytes are
// "GET " is upgraded, and then each binary message carries exactly one
// frame in either direction. WebSocket frames are parsed in place in gnet's
// buffer; a connection keeps no buffer of its own while idle.
//
// Every limit (login and heartbeat deadlines, frame size, frames per second,
// outbound bytes pending, connection count, accept rate) closes with a typed
// CloseReason sent first, and is counted in Stats.
//
// Event-loop callbacks never block: requests are decoded on the loop and run
// by workers, one at a time per connection; replies and pushes come back
// through gnet's asynchronous writes. Deadlines (login, heartbeat) live in one
// timing wheel per event loop.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudwego/kitex/pkg/remote/trans/gonet"
	"github.com/cloudwego/kitex/server"
	"github.com/gobwas/ws"
	"github.com/panjf2000/ants/v2"
	"github.com/panjf2000/gnet/v2"
	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/internal/coalesce"
	"github.com/resonance-im/resonance/internal/rpcauth"
	"github.com/resonance-im/resonance/internal/run"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc/logic"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
	"github.com/resonance-im/resonance/kitex_gen/pushrpc/push"
)

// shutdownTimeout bounds each step of the graceful shutdown.
const shutdownTimeout = 10 * time.Second

// Gateway serves client connections and the Push service. Build it with New
// and serve with Run; a Gateway runs once (a second Run returns ErrRunTwice).
type Gateway struct {
	cfg  Config
	log  zerolog.Logger
	warn zerolog.Logger // sampled, for errors that may repeat per request
	// writeDone is afterWrite bound once: a method value passed per write
	// would allocate on every reply and push.
	writeDone gnet.AsyncCallback
	logic     logic.Client
	pushLn    *pushListener
	pushAddr  string
	reg       *registration // nil without a registry

	boot    time.Time    // origin of the gateway clock (monotonic)
	connSeq atomic.Int64 // last connection id handed out
	conns   *registry
	started atomic.Bool // Run was called
	stats   gatewayStats
	accepts tokenBucket // the accept rate, shared by all loops
	// addrAccepts is the accept rate of each client address.
	addrAccepts addrBuckets
	// sends carries the runs of SENDs of all connections to logic.
	sends *coalesce.Batcher[*logicrpc.SendRun, []*logicrpc.SendOutcome]
	// logins carries the token LOGINs of all connections to logic.
	logins *coalesce.Batcher[*logicrpc.LoginAttempt, *logicrpc.LoginOutcome]
	// loginFlights maps the id of a connection whose LOGIN is in flight to
	// its *loginFlight (loginflight.go): a map of the few connections
	// logging in, not a field of conn, which would cost every idle one.
	loginFlights sync.Map
	// sendsOld, loginsOld and disconnectsOld remember a logic that refused
	// SendRuns, LoginBatch or DisconnectBatch as unknown.
	sendsOld, loginsOld, disconnectsOld olderLogic
	// upgrader is built once: its Origin check is the same for every
	// handshake.
	upgrader ws.Upgrader

	// Set by Run before anything can read them.
	rpcCtx context.Context
	pool   *ants.Pool
	// disc carries closed connections' sessions to the goroutines that
	// remove their routes (disconnect.go).
	disc disconnects
	// late carries closed connections' positions to the goroutines that
	// send them (late.go).
	late latePositions

	loopsMu  sync.Mutex
	loops    map[gnet.EventLoop]*loopState
	draining bool // shutting down: refuse new connections

	engine gnet.Engine // set in OnBoot
	addr   net.Addr    // set in OnBoot, before booted closes
	booted chan struct{}
	ready  chan struct{}
}

// New checks cfg (zero fields take their defaults) and deps and returns a
// gateway ready to Run. It starts nothing and binds nothing.
func New(cfg Config, deps Deps) (*Gateway, error) {
	cfg = applyDefaults(cfg)
	if err := validate(cfg); err != nil {
		return nil, err
	}
	if err := validateDeps(deps); err != nil {
		return nil, err
	}
	pushAddr := deps.PushAddr
	if pushAddr == "" {
		pushAddr = deps.PushListener.Addr().String()
	}
	boot := time.Now()
	g := &Gateway{
		cfg:      cfg,
		log:      deps.Log.With().Str("role", "gateway").Logger(),
		logic:    deps.Logic,
		pushLn:   newPushListener(deps.PushListener),
		pushAddr: pushAddr,
		boot:     boot,
		conns:    newRegistry(),
		upgrader: newUpgrader(cfg.AllowedOrigins),
		loops:    make(map[gnet.EventLoop]*loopState),
		booted:   make(chan struct{}),
		ready:    make(chan struct{}),
	}
	g.writeDone = g.afterWrite
	g.sendsOld.method, g.sendsOld.single = "SendRuns", "Send"
	g.loginsOld.method, g.loginsOld.single = "LoginBatch", "Login"
	g.disconnectsOld.method, g.disconnectsOld.single = "DisconnectBatch", "Disconnect"
	g.reg = newRegistration(deps.Registry, pushAddr, cfg.RegisterTTL, g.log)
	g.warn = g.log.Sample(&zerolog.BurstSampler{Burst: 10, Period: time.Second})
	// Ids count up from the boot time in ms shifted left by 20, so a restarted
	// gateway repeats no id of its previous life unless that life handed out
	// more than 2^20 ids per millisecond it ran.
	g.connSeq.Store(boot.UnixMilli() << 20)
	return g, nil
}

// Ready is closed once both the client listener and the Push server accept.
// It is never closed if Run fails to start; callers select on Run's return
// too.
func (g *Gateway) Ready() <-chan struct{} { return g.ready }

// Addr is the client address actually bound; nil before Ready is closed.
func (g *Gateway) Addr() net.Addr {
	select {
	case <-g.ready:
		return g.addr
	default:
		return nil
	}
}

// PushAddr is the push address advertised to logic in sessions, which task
// dials.
func (g *Gateway) PushAddr() string { return g.pushAddr }

// Run serves until ctx is done, then shuts down gracefully: new connections
// are refused, the push address is deregistered, every connection gets
// CLOSE SERVER_SHUTDOWN, the engine and the Push server stop and the workers
// finish. It returns after all of that, with the error that stopped it
// early, if any. With a registry, Run first registers the push address and
// fails if it cannot.
func (g *Gateway) Run(ctx context.Context) error {
	if !g.started.CompareAndSwap(false, true) {
		return ErrRunTwice
	}
	pool, err := ants.NewPool(g.cfg.Workers, ants.WithNonblocking(true),
		ants.WithPanicHandler(func(r any) {
			g.log.Error().Interface("panic", r).Msg("worker panicked")
		}))
	if err != nil {
		return fmt.Errorf("gateway: worker pool: %w", err)
	}
	g.pool = pool
	g.rpcCtx = context.WithoutCancel(ctx) // in-flight calls outlive shutdown
	g.sends = g.newSendRuns()
	g.logins = g.newLoginBatches()
	if err := g.reg.register(ctx); err != nil {
		pool.Release()
		_ = g.pushLn.Close() // ours until a push server takes it over
		return fmt.Errorf("gateway: %w", err)
	}

	rs := &servers{pushExit: make(chan error, 1), pushDone: make(chan struct{}),
		engineDone: make(chan struct{})}
	g.reg.start(ctx, &rs.grp)
	g.disc.start(g, &rs.grp)
	g.late.start(g, &rs.grp)
	rs.grp.Go(g.log, "gnet", func() {
		rs.engineErr = g.serveClients()
		close(rs.engineDone)
	})
	runErr := g.serve(ctx, rs)
	g.shutdown(rs)
	rs.grp.Wait()
	return runErr
}

// servers is what Run started, for serve and shutdown.
type servers struct {
	grp         run.Group
	pushStarted bool          // the push server's Run was started
	pushExit    chan error    // the push server's exit signal
	pushDone    chan struct{} // closed when the push server's Run returned
	pushErr     error         // valid after pushDone
	engineDone  chan struct{} // closed when gnet.Run returned
	engineErr   error         // valid after engineDone
}

// serve waits for the engine to boot, starts the Push server, then waits
// until ctx is done or a server stops on its own.
func (g *Gateway) serve(ctx context.Context, rs *servers) error {
	select {
	case <-g.booted:
	case <-rs.engineDone:
		return fmt.Errorf("gateway: client listener %s: %w", g.cfg.Addr, rs.engineErr)
	}
	if err := g.startPush(rs); err != nil {
		return err
	}
	close(g.ready)
	g.log.Info().Str("client_addr", g.addr.String()).Str("push_addr", g.pushAddr).
		Int("event_loops", g.cfg.NumEventLoop).Msg("gateway started")
	rs.grp.Go(g.log, "renew", func() { g.renewLoop(ctx) })
	select {
	case <-ctx.Done():
		return nil
	case <-rs.engineDone:
		return fmt.Errorf("gateway: client engine stopped: %w", rs.engineErr)
	case <-rs.pushDone:
		return fmt.Errorf("gateway: push server stopped: %w", rs.pushErr)
	}
}

// startPush starts the Push server once the engine has booted, so that an
// engine failing to start never has a push server to stop.
func (g *Gateway) startPush(rs *servers) error {
	svr, err := g.newPushServer(rs.pushExit)
	if err != nil {
		return err
	}
	rs.pushStarted = true
	rs.grp.Go(g.log, "push-server", func() {
		rs.pushErr = svr.Run()
		close(rs.pushDone)
	})
	return nil
}

// newPushServer builds the Push Kitex server. It registers the service by
// hand rather than through push.NewServer, which panics on failure. The
// server stops when exit receives: unlike Stop, that also works when Run has
// not yet got far enough to notice a Stop, and it keeps Kitex from acting on
// OS signals, which are the caller's. With Config.InternalSecret set, a call
// without it is refused before Push or Kick runs: whoever reaches the port
// could otherwise write to any client.
//
// The server runs on Kitex's gonet transport, not netpoll. Its callers are a
// few task instances on long-lived connections, so a goroutine per
// connection costs nothing, and netpoll's server in Kitex v0.16.3 sets its
// listener without a lock while Stop reads it: a gateway stopped just after
// it started raced, and could leave the push port open. gonet's server sets
// the listener under its lock; shutdown also closes the listener itself in
// case Stop came before the server had taken it.
func (g *Gateway) newPushServer(exit chan error) (server.Server, error) {
	opts := append([]server.Option{server.WithListener(g.pushLn),
		server.WithTransServerFactory(gonet.NewTransServerFactory()),
		server.WithTransHandlerFactory(gonet.NewSvrTransHandlerFactory()),
		server.WithExitWaitTime(time.Second),
		server.WithExitSignal(func() <-chan error { return exit }),
		server.WithCompatibleMiddlewareForUnary(),
	}, rpcauth.ServerOptions(g.cfg.InternalSecret)...)
	svr := server.NewServer(opts...)
	if err := push.RegisterService(svr, &pushService{g: g}); err != nil {
		return nil, fmt.Errorf("gateway: register push service: %w", err)
	}
	return svr, nil
}

// serveClients runs the gnet engine until it stops.
func (g *Gateway) serveClients() error {
	err := gnet.Run(&events{g: g}, "tcp://"+g.cfg.Addr,
		gnet.WithMulticore(true),
		gnet.WithNumEventLoop(g.cfg.NumEventLoop),
		gnet.WithTicker(true),
		gnet.WithReusePort(false),
		// A restarted gateway must rebind at once, not wait out TIME_WAIT.
		gnet.WithReuseAddr(true),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithLogger(gnetLogger{g.log}),
	)
	if err == nil {
		select {
		case <-g.booted:
		default:
			err = errors.New("engine stopped before boot")
		}
	}
	return err
}

// shutdown runs the ordered stop. Each wait is bounded by shutdownTimeout.
func (g *Gateway) shutdown(rs *servers) {
	g.loopsMu.Lock()
	g.draining = true
	g.loopsMu.Unlock()
	// Task stops pushing here before the clients are sent away.
	g.reg.deregister()
	if g.engine.Validate() == nil {
		g.closeAll(protocol.CloseReason_SERVER_SHUTDOWN)
		g.stopEngine(rs.engineDone)
	}
	// Every connection is closed: the routes left to remove are queued.
	g.disc.stop(shutdownTimeout)
	// So are their positions, but for those of a connection whose worker
	// still runs: it hands them over when done, so the queue stays open
	// until the pool is released. Their deadline starts now all the same.
	g.late.expire(shutdownTimeout)
	if rs.pushStarted {
		// The clients are gone, so a push in flight has no one to reach.
		g.pushLn.closeConns()
		rs.pushExit <- nil
		g.waitClosed(rs.pushDone, "push server")
	}
	// Ours until a push server took it over, and closed again in case the
	// server was stopped before it had.
	_ = g.pushLn.Close()
	if err := g.pool.ReleaseTimeout(shutdownTimeout); err != nil {
		g.log.Warn().Err(err).Msg("workers did not finish")
	}
	g.late.stop()
	g.log.Info().Msg("gateway stopped")
}

// stopEngine stops gnet and waits for gnet.Run to return. Engine.Stop only
// notices the end by polling every 500ms; Run returning is the exact signal,
// so Stop gets a context that is already done: it starts the shutdown and
// returns at once.
func (g *Gateway) stopEngine(engineDone <-chan struct{}) {
	trigger, cancel := context.WithCancel(context.Background())
	cancel()
	_ = g.engine.Stop(trigger)
	g.waitClosed(engineDone, "client engine")
}

func (g *Gateway) waitClosed(done <-chan struct{}, what string) {
	select {
	case <-done:
	case <-time.After(shutdownTimeout):
		g.log.Warn().Str("server", what).Dur("waited", shutdownTimeout).Msg("did not stop")
	}
}

// closeAll closes every connection with reason, each on its own loop, and
// waits until every loop has done so or shutdownTimeout passed.
func (g *Gateway) closeAll(reason protocol.CloseReason) {
	g.loopsMu.Lock()
	loops := make([]*loopState, 0, len(g.loops))
	for _, ls := range g.loops {
		loops = append(loops, ls)
	}
	g.loopsMu.Unlock()

	done := make(chan struct{}, len(loops)) // buffered: a late loop never blocks
	queued := 0
	for _, ls := range loops {
		task := gnet.RunnableFunc(func(context.Context) error {
			g.closeLoopConns(ls, reason)
			done <- struct{}{}
			return nil
		})
		if ls.el.Execute(context.Background(), task) == nil {
			queued++
		}
	}
	timeout := time.After(shutdownTimeout)
	for ; queued > 0; queued-- {
		select {
		case <-done:
		case <-timeout:
			g.log.Warn().Int("loops", queued).Msg("event loops did not close their connections")
			return
		}
	}
}

// closeLoopConns closes every connection of one loop; it runs on that loop.
func (g *Gateway) closeLoopConns(ls *loopState, reason protocol.CloseReason) {
	var all []*conn
	ls.wheel.each(func(c *conn) { all = append(all, c) })
	for _, c := range all {
		g.closeOnLoop(c, reason, "shutdown")
	}
}

// onBoot records the engine and the address it bound.
func (g *Gateway) onBoot(eng gnet.Engine) gnet.Action {
	addr, err := boundAddr(eng)
	if err != nil {
		g.log.Error().Err(err).Msg("client listener address")
		return gnet.Shutdown
	}
	g.engine, g.addr = eng, addr
	close(g.booted)
	return gnet.None
}

// boundAddr reads the listener's address from a duplicate of its socket,
// the only way gnet exposes it (needed when the configured port is 0).
func boundAddr(eng gnet.Engine) (net.Addr, error) {
	fd, err := eng.Dup()
	if err != nil {
		return nil, fmt.Errorf("dup listener: %w", err)
	}
	f := os.NewFile(uintptr(fd), "gateway-listener")
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("listener from fd: %w", err)
	}
	defer ln.Close()
	return ln.Addr(), nil
}

// nowMs is the gateway clock: monotonic milliseconds since New.
func (g *Gateway) nowMs() int64 { return time.Since(g.boot).Milliseconds() }

func (g *Gateway) nextConnID() int64 { return g.connSeq.Add(1) }

// events adapts the gateway to gnet.EventHandler, keeping the callbacks out
// of the Gateway's exported API.
type events struct {
	gnet.BuiltinEventEngine
	g *Gateway
}

func (e events) OnBoot(eng gnet.Engine) gnet.Action         { return e.g.onBoot(eng) }
func (e events) OnOpen(c gnet.Conn) ([]byte, gnet.Action)   { return e.g.onOpen(c) }
func (e events) OnClose(c gnet.Conn, err error) gnet.Action { return e.g.onClose(c, err) }
func (e events) OnTraffic(c gnet.Conn) gnet.Action          { return e.g.onTraffic(c) }
func (e events) OnTick() (time.Duration, gnet.Action)       { return e.g.onTick() }

// gnetLogger sends gnet's own logs to zerolog.
type gnetLogger struct{ log zerolog.Logger }

func (l gnetLogger) Debugf(format string, args ...any) { l.log.Debug().Msgf(format, args...) }
func (l gnetLogger) Infof(format string, args ...any)  { l.log.Debug().Msgf(format, args...) }
func (l gnetLogger) Warnf(format string, args ...any)  { l.log.Warn().Msgf(format, args...) }
func (l gnetLogger) Errorf(format string, args ...any) { l.log.Error().Msgf(format, args...) }
func (l gnetLogger) Fatalf(format string, args ...any) { l.log.Error().Msgf(format, args...) }
