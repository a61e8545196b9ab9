package app

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cloudwego/kitex/client"
	"github.com/cloudwego/kitex/pkg/connpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"gorm.io/gorm"

	"github.com/resonance-im/resonance/gateway"
	"github.com/resonance-im/resonance/internal/buildinfo"
	"github.com/resonance-im/resonance/internal/dirlock"
	"github.com/resonance-im/resonance/internal/mq"
	"github.com/resonance-im/resonance/internal/obs"
	"github.com/resonance-im/resonance/internal/registry"
	"github.com/resonance-im/resonance/internal/route"
	"github.com/resonance-im/resonance/internal/rpcauth"
	"github.com/resonance-im/resonance/internal/run"
	"github.com/resonance-im/resonance/internal/webui"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc/logic"
	logicsvc "github.com/resonance-im/resonance/logic"
	"github.com/resonance-im/resonance/task"
)

// System is a running process: the parts its role starts and what they share.
// Stop shuts them down in order.
type System struct {
	cfg   Config
	log   zerolog.Logger
	group run.Group
	errs  chan error
	// stopGateway and stopTask cancel those parts' Run contexts, one after
	// the other, so shutdown follows the documented order.
	stopGateway, stopTask context.CancelFunc

	// dirLock keeps other processes off the data dir while this one runs;
	// nil when the configuration uses no data dir.
	dirLock  *dirlock.Lock
	obs      *obs.Server
	web      *webui.Server // nil when not configured or its port was taken
	metrics  *prometheus.Registry
	embedded *mq.Embedded
	nc       *nats.Conn
	rdb      redis.UniversalClient // standalone or cluster (connectRedis)
	db       *gorm.DB
	// registry is the gateway registry the gateway and task share; nil for
	// a lone gateway without Redis, which then does not register.
	registry registry.Registry
	// watches is the presence watch store logic and task share.
	watches route.Watches
	// routes is the route table logic and task share; nil for a lone
	// gateway.
	routes route.Table

	logic     *logicsvc.Service
	logicAddr net.Addr
	gateway   *gateway.Gateway
	task      *task.Task
	// gatewayDone and taskDone close when those parts' Run returns; logic is
	// stopped only after both, so their last calls still reach it.
	gatewayDone chan struct{}
	taskDone    chan struct{}
	stopped     bool
}

// Start brings up the parts of cfg.Role and returns once they accept work.
// On error, whatever had started is stopped again.
func Start(ctx context.Context, cfg Config, log zerolog.Logger) (*System, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.ownInternalSecret(); err != nil {
		return nil, err
	}
	if err := cfg.checkPortsFree(); err != nil {
		return nil, err
	}
	s := &System{
		cfg: cfg, log: log, errs: make(chan error, 4),
		gatewayDone: make(chan struct{}), taskDone: make(chan struct{}),
	}
	if err := s.start(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	ev := log.Info().Str("role", string(cfg.Role)).Stringer("build", buildinfo.Read())
	if a := s.GatewayAddr(); a != nil {
		ev = ev.Stringer("addr", a)
	}
	if a := s.LogicAddr(); a != nil {
		ev = ev.Stringer("logic_addr", a)
	}
	if a := s.HTTPAddr(); a != nil {
		ev = ev.Str("metrics", "http://"+a.String()+"/metrics")
	}
	ev.Msg("resonance started")
	return s, nil
}

func (s *System) start(ctx context.Context) error {
	if err := s.lockDataDir(); err != nil {
		return err
	}
	s.metrics = obs.NewRegistry()
	if err := s.startObs(); err != nil {
		return err
	}
	var js jetstream.JetStream
	if s.cfg.Role.Has(RoleLogic) || s.cfg.Role.Has(RoleTask) {
		var err error
		if js, err = s.connectNATS(); err != nil {
			return err
		}
		if s.routes, err = s.routeTable(ctx); err != nil {
			return err
		}
		s.watches = s.watchStore()
	}
	if err := s.openRegistry(ctx); err != nil {
		return err
	}
	names := mq.NewNames(s.cfg.Prefix)
	if s.cfg.Role.Has(RoleLogic) {
		if err := s.startLogic(ctx, js, names, s.routes); err != nil {
			return err
		}
	}
	if s.cfg.Role.Has(RoleTask) {
		if err := s.startTask(ctx, js, names, s.routes); err != nil {
			return err
		}
	}
	if s.cfg.Role.Has(RoleGateway) {
		s.listenWeb()
		if err := s.startGateway(ctx); err != nil {
			return err
		}
		s.serveWeb()
	}
	if s.obs != nil {
		s.obs.SetReady(true)
	}
	return nil
}

// lockDataDir creates and locks the data dir, if the configuration uses
// one, before anything in it is opened. A second process on the same dir
// would share the SQLite file and the token key but run its own embedded
// NATS: both would ack messages the other's users never see.
func (s *System) lockDataDir() error {
	if !s.cfg.usesDataDir() {
		return nil
	}
	if err := os.MkdirAll(s.cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("app: data dir %s: %w", s.cfg.DataDir, err)
	}
	l, err := dirlock.Acquire(s.cfg.DataDir)
	if errors.Is(err, dirlock.ErrLocked) {
		return fmt.Errorf("app: %w; stop that process or give this one another --data-dir", err)
	}
	if err != nil {
		return fmt.Errorf("app: data dir: %w", err)
	}
	s.dirLock = l
	return nil
}

// startObs serves /metrics, /healthz and /readyz from the start, so a probe
// can tell "starting" from "dead"; /readyz turns ready when Start returns.
func (s *System) startObs() error {
	if s.cfg.HTTPListen == "" {
		return nil
	}
	srv, err := obs.Listen(obs.Options{
		Addr: s.cfg.HTTPListen, Pprof: s.cfg.Pprof, Checks: s.readinessChecks(),
	}, s.metrics, s.log)
	if err != nil {
		// The flag to change, not the package: 9100 is also a common
		// exporter's port, so a first run may find it taken.
		return fmt.Errorf("app: --http-listen (metrics and probes; empty for none): %w", err)
	}
	s.obs = srv
	s.group.Go(s.log, "obs", func() { s.report("http", srv.Serve()) })
	return nil
}

// readinessChecks look at the dependencies as they are when probed; a part
// that was not started is not checked.
func (s *System) readinessChecks() map[string]obs.Check {
	return map[string]obs.Check{
		"nats": func(context.Context) error {
			if s.nc != nil && !s.nc.IsConnected() {
				return errors.New("nats disconnected")
			}
			return nil
		},
		"redis": func(ctx context.Context) error {
			if s.rdb == nil {
				return nil
			}
			return s.rdb.Ping(ctx).Err()
		},
		"database": func(ctx context.Context) error {
			if s.db == nil {
				return nil
			}
			sqlDB, err := s.db.DB()
			if err != nil {
				return err
			}
			return sqlDB.PingContext(ctx)
		},
	}
}

// listenWeb binds the web app's address before the gateway starts, so that
// the app's origins can join the gateway's Origin allow-list.
func (s *System) listenWeb() {
	if s.cfg.WebListen == "" {
		return
	}
	srv, err := webui.Listen(webui.Options{Addr: s.cfg.WebListen, WSURL: s.cfg.WebWSURL}, s.log)
	if err != nil {
		s.log.Warn().Err(err).Msg("web app not served (set --web-listen to another address)")
		return
	}
	s.web = srv
	if len(s.cfg.Gateway.AllowedOrigins) > 0 {
		// A new slice: the configured one may be shared with the caller.
		s.cfg.Gateway.AllowedOrigins = slices.Concat(s.cfg.Gateway.AllowedOrigins,
			webui.Origins(srv.Addr()))
	}
}

func (s *System) serveWeb() {
	if s.web == nil {
		return
	}
	s.web.SetGatewayAddr(s.gateway.Addr())
	s.group.Go(s.log, "web", func() { s.report("web", s.web.Serve()) })
	s.log.Info().Str("url", s.web.URL()).Msg("web app: open this URL in a browser")
}

// WebAddr is the bound address of the web app, or nil.
func (s *System) WebAddr() net.Addr {
	if s.web == nil {
		return nil
	}
	return s.web.Addr()
}

// HTTPAddr is the bound address of the operational endpoints, or nil.
func (s *System) HTTPAddr() net.Addr {
	if s.obs == nil {
		return nil
	}
	return s.obs.Addr()
}

func (s *System) connectNATS() (jetstream.JetStream, error) {
	var err error
	if s.cfg.NATSURL == "" {
		s.embedded, err = mq.StartEmbedded(filepath.Join(s.cfg.DataDir, "nats"), s.cfg.NATSListen)
		if err != nil {
			return nil, fmt.Errorf("app: --nats-listen: %w", err)
		}
		s.nc, err = s.embedded.Connect("resonance-" + string(s.cfg.Role))
	} else {
		s.nc, err = mq.Dial(s.cfg.NATSURL, "resonance-"+string(s.cfg.Role))
	}
	if err != nil {
		return nil, err
	}
	// An async publish nobody answers is given up after the publisher's own
	// timeout: nats.go otherwise keeps it pending until a reply or a
	// reconnect, and once its bound is pending every PublishAsync stalls.
	pubTimeout := cmp.Or(s.cfg.Logic.PublishTimeout, logicsvc.DefaultPublishTimeout)
	js, err := jetstream.New(s.nc, jetstream.WithPublishAsyncTimeout(pubTimeout),
		jetstream.WithPublishAsyncMaxPending(logicsvc.PublishAsyncMaxPending))
	if err != nil {
		return nil, fmt.Errorf("app: jetstream: %w", err)
	}
	return js, nil
}

func (s *System) routeTable(ctx context.Context) (route.Table, error) {
	if s.cfg.RedisAddr == "" {
		return route.NewMemory(0), nil
	}
	if err := s.connectRedis(ctx); err != nil {
		return nil, err
	}
	return route.NewRedis(s.rdb, s.cfg.Prefix+":", 0), nil
}

// openRegistry sets up the gateway registry of a process with a gateway or
// task: in Redis when configured, in process when both roles run here.
func (s *System) openRegistry(ctx context.Context) error {
	if !s.cfg.Role.Has(RoleGateway) && !s.cfg.Role.Has(RoleTask) {
		return nil
	}
	switch {
	case s.cfg.RedisAddr != "":
		if err := s.connectRedis(ctx); err != nil {
			return err
		}
		s.registry = registry.NewRedis(s.rdb, s.cfg.Prefix+":", 0)
	case s.cfg.Role == RoleAll:
		s.registry = registry.NewMemory(0)
	}
	return nil
}

func (s *System) startLogic(ctx context.Context, js jetstream.JetStream, names mq.Names,
	routes route.Table) error {
	lc := s.cfg.Logic
	onSQLite := lc.DBDriver == "" || lc.DBDriver == "sqlite"
	if onSQLite && lc.DBDSN == "" {
		lc.DBDSN = filepath.Join(s.cfg.DataDir, "resonance.db")
	}
	if lc.FileDir == "" && onSQLite {
		// Beside the database: on the disk that holds it, off its one writer.
		lc.FileDir = filepath.Join(filepath.Dir(lc.DBDSN), "files")
	}
	lc.InternalSecret = s.cfg.InternalSecret
	if lc.TokenSecret == "" {
		secret, err := loadOrCreateSecret(filepath.Join(s.cfg.DataDir, "token.key"))
		if err != nil {
			return err
		}
		lc.TokenSecret = secret
	}
	db, err := logicsvc.OpenDB(ctx, lc)
	if err != nil {
		return err
	}
	s.db = db
	sqlitePath := ""
	if onSQLite {
		sqlitePath = lc.DBDSN
	}
	if err := s.moveSeqsIfRestored(ctx, db, sqlitePath); err != nil {
		return err
	}
	if err := obs.InstrumentDB(db, s.metrics); err != nil {
		return fmt.Errorf("app: database metrics: %w", err)
	}
	svc, err := logicsvc.New(ctx, lc, db, logicsvc.Deps{
		Log: s.log.With().Str("role", "logic").Logger(), JS: js, MQ: names, Routes: routes,
		Watches: s.watches, Metrics: s.metrics,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.cfg.LogicListen)
	if err != nil {
		return fmt.Errorf("app: --logic-listen: %w", err) // net names the address
	}
	s.logic, s.logicAddr = svc, ln.Addr()
	s.group.Go(s.log, "logic", func() { s.report("logic", svc.Serve(ln)) })
	if err := waitTCP(ctx, ln.Addr().String()); err != nil {
		return err
	}
	s.serveAdmin()
	return nil
}

func (s *System) startTask(ctx context.Context, js jetstream.JetStream, names mq.Names,
	routes route.Table) error {
	tc := s.cfg.Task
	tc.InternalSecret = s.cfg.InternalSecret
	// No other process reaches the embedded NATS: a restart after a crash
	// need not wait for the leases of the run that crashed.
	tc.SoleInstance = s.embedded != nil
	deps := task.Deps{
		Log: s.log.With().Str("role", "task").Logger(), JS: js, MQ: names, Routes: routes,
		Metrics: s.metrics, Registry: s.registry, Watches: s.watches,
	}
	if tc.Notify.Enabled() {
		lc, err := s.taskLogicClient()
		if err != nil {
			return err
		}
		deps.Logic = lc
	}
	t, err := task.New(tc, deps)
	if err != nil {
		return err
	}
	s.task = t
	runCtx, cancel := context.WithCancel(context.Background())
	s.stopTask = cancel
	s.group.Go(s.log, "task", func() {
		defer close(s.taskDone)
		s.report("task", t.Run(runCtx))
	})
	return waitReady(ctx, "task", t.Ready(), s.errs)
}

func (s *System) startGateway(ctx context.Context) error {
	lc, err := s.logicClient("resonance_gateway_logic_call_seconds",
		"Latency of the gateway's calls to logic.", connpool.IdleConfig{
			MaxIdlePerAddress: 256, MaxIdleGlobal: 4096, MaxIdleTimeout: time.Minute,
		})
	if err != nil {
		return fmt.Errorf("app: logic client: %w", err)
	}
	ln, err := net.Listen("tcp", s.cfg.PushListen)
	if err != nil {
		return fmt.Errorf("app: --push-listen: %w", err) // net names the address
	}
	gc := s.cfg.Gateway
	gc.InternalSecret = s.cfg.InternalSecret
	gw, err := gateway.New(gc, gateway.Deps{
		Log:          s.log, // the gateway adds role=gateway itself
		Logic:        lc,
		PushListener: ln,
		PushAddr:     advertise(s.cfg.PushAdvertise, ln.Addr()),
		Registry:     s.registry,
	})
	if err != nil {
		ln.Close()
		return err
	}
	s.gateway = gw
	if err := s.metrics.Register(newGatewayCollector(gw.Stats)); err != nil {
		return fmt.Errorf("app: gateway metrics: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s.stopGateway = cancel
	s.group.Go(s.log, "gateway", func() {
		defer close(s.gatewayDone)
		s.report("gateway", gw.Run(runCtx))
	})
	return waitReady(ctx, "gateway", gw.Ready(), s.errs)
}

// advertise picks the push address task should dial: the configured one, or
// the bound one with an unspecified host replaced by loopback.
func advertise(configured string, bound net.Addr) string {
	if configured != "" {
		return configured
	}
	host, port, _ := net.SplitHostPort(bound.String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// report records how a part ended. A part that ends before Stop is a fault
// the process should exit on; Errors lets main see it. The error goes on as
// it is: every part's errors already start with its package's name.
func (s *System) report(part string, err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		s.log.Error().Err(err).Str("part", part).Msg("part stopped with an error")
		select {
		case s.errs <- err:
		default:
		}
	}
}

// Errors delivers the error of a part that stopped on its own.
func (s *System) Errors() <-chan error { return s.errs }

// GatewayAddr is the bound client address, or nil when the role has no gateway.
func (s *System) GatewayAddr() net.Addr {
	if s.gateway == nil {
		return nil
	}
	return s.gateway.Addr()
}

// LogicAddr is the bound logic address, or nil when the role has no logic.
func (s *System) LogicAddr() net.Addr { return s.logicAddr }

// Stop shuts the parts down in the order that loses nothing: the gateway
// first (clients are told to reconnect, in-flight requests finish), then task
// (in-flight pushes finish, the rest stays in JetStream), then logic, then
// the connections to NATS, Redis and the database. Before that, /readyz turns
// unready and every part serves on for Config.DrainDelay. It is idempotent.
func (s *System) Stop() {
	if s.stopped {
		return
	}
	s.stopped = true
	if s.obs != nil {
		s.obs.SetReady(false) // load balancers stop routing before draining
	}
	done := make(chan struct{})
	go func() {
		if s.cfg.DrainDelay > 0 {
			s.log.Info().Dur("drain_delay", s.cfg.DrainDelay).
				Msg("unready; serving on until load balancers stop routing here")
			time.Sleep(s.cfg.DrainDelay)
		}
		if s.gateway != nil {
			s.stopGateway()
			<-s.gatewayDone
		}
		if s.task != nil {
			s.stopTask()
			<-s.taskDone
		}
		if s.logic != nil {
			if err := s.logic.Stop(); err != nil {
				s.log.Warn().Err(err).Msg("logic stop")
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if s.web != nil {
			_ = s.web.Shutdown(ctx)
		}
		if s.obs != nil {
			_ = s.obs.Shutdown(ctx)
		}
		cancel()
		s.group.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(s.cfg.DrainDelay + shutdownTimeout):
		s.log.Error().Dur("timeout", s.cfg.DrainDelay+shutdownTimeout).
			Msg("shutdown timed out; closing dependencies anyway")
	}
	s.closeDeps()
}

func (s *System) closeDeps() {
	if s.nc != nil {
		s.nc.Close()
	}
	if s.embedded != nil {
		s.embedded.Shutdown()
	}
	if s.rdb != nil {
		s.rdb.Close()
	}
	if s.db != nil {
		if sqlDB, err := s.db.DB(); err == nil {
			sqlDB.Close()
		}
	}
	// Last: whatever this process had open in the data dir is closed.
	_ = s.dirLock.Release()
}

func waitReady(ctx context.Context, part string, ready <-chan struct{}, errs <-chan error) error {
	select {
	case <-ready:
		return nil
	case err := <-errs:
		return err
	case <-ctx.Done():
		return fmt.Errorf("app: %s not ready: %w", part, ctx.Err())
	}
}

// waitTCP polls until addr accepts connections: Kitex's Serve binds in its
// own goroutine and offers no ready signal.
func waitTCP(ctx context.Context, addr string) error {
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("app: %s not accepting: %w", addr, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// loadOrCreateSecret keeps a random token key in path so tokens survive a
// restart of the single-process mode.
func loadOrCreateSecret(path string) (string, error) {
	raw, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(raw))) >= 32 {
		return strings.TrimSpace(string(raw)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("app: read token key %s: %w", path, err)
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("app: generate token key: %w", err)
	}
	secret := hex.EncodeToString(buf)
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("app: write token key %s: %w", path, err)
	}
	return secret, nil
}

// logicClient returns a Kitex client of the logic in this process, else of
// --logic-addrs, timing its calls under metric.
func (s *System) logicClient(metric, help string, idle connpool.IdleConfig) (logic.Client, error) {
	addrs := s.cfg.LogicAddrs
	if s.logicAddr != nil {
		addrs = []string{s.logicAddr.String()}
	}
	if len(addrs) == 0 {
		addrs = []string{"127.0.0.1:7100"}
	}
	opts := append([]client.Option{
		client.WithHostPorts(addrs...),
		client.WithConnectTimeout(time.Second),
		client.WithMiddleware(obs.RPCClientMiddleware(s.metrics, metric, help)),
		client.WithLongConnection(idle),
	}, rpcauth.ClientOptions(s.cfg.InternalSecret)...)
	return logic.NewClient("logic", opts...)
}
