package logic

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cloudwego/kitex/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"gorm.io/gorm"

	"github.com/resonance-im/resonance/internal/mq"
	"github.com/resonance-im/resonance/internal/obs"
	"github.com/resonance-im/resonance/internal/rpcauth"
	"github.com/resonance-im/resonance/internal/run"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc"
	"github.com/resonance-im/resonance/kitex_gen/logicrpc/logic"
)

// failLogBurst is how many failed requests are logged per second.
const failLogBurst = 10

// exitWait bounds how long Stop waits for in-flight calls to finish.
const exitWait = 3 * time.Second

// Service is the logic role. It implements logicrpc.Logic; every method is
// safe for concurrent use and returns either nil or a *common.BizError.
type Service struct {
	cfg Config
	log zerolog.Logger
	// failLog is log sampled to a burst per second: an outage of NATS or the
	// database fails every request, and one line each would flood the log.
	failLog zerolog.Logger
	db      *gorm.DB
	// rdb serves the reads that need not see an uncommitted write of their
	// own request. With SQLite it is a pool of read-only connections, which
	// WAL lets run beside the one writer; otherwise it is db.
	rdb     *gorm.DB
	ownsRDB bool
	deps    Deps
	hash    *hasher
	tokens  tokenSigner
	limits  limiters
	eph     *ephemeral
	now     func() time.Time
	tables  tableNames
	// blobs keeps uploaded files' bytes (blobs.go).
	blobs blobStore
	// seqFloor is the seq after which a conversation created now starts,
	// past the restores of the store (metaSeqFloor); read at the start,
	// since MoveSeqsPastRestore runs before logic serves.
	seqFloor int64
	// uploadStarts serialize the check and insert of one user's new
	// uploads in this instance, striped by user (startUpload).
	uploadStarts [64]sync.Mutex
	// queries are the hot statements written without GORM (queries.go).
	queries queries
	members memberCache
	// gens are the device generations the send path read (sessiongen.go);
	// revokedSub empties them of the devices other instances revoke.
	gens       genCache
	revokedSub *nats.Subscription
	// consecutiveIDs says that a multi-row INSERT's ids are consecutive
	// (detectConsecutiveIDs): batches of sends may take the plain path.
	consecutiveIDs bool

	// batchQueue feeds groups of seq writes to the group commit (batch.go).
	batchQueue chan []*batchItem
	// outboxQueue feeds committed outbox rows to the publisher goroutine.
	outboxQueue chan outboxItem
	undeleted   undeletedRows
	// onStored is called with the outbox row of each newly stored message
	// after commit; it is enqueue, and tests replace it to play a crash
	// between commit and publish.
	onStored func(*outboxRow)
	stats    outboxStats
	// bg runs the publisher and the relay; stopBG ends them.
	bg     run.Group
	stopBG context.CancelFunc
	// late holds the login attempts a LoginBatch answered without.
	late lateLogins
	// searchRows is the stored messages a search page reads, 0 meaning
	// searchScanRows; tests lower it.
	searchRows int

	// mu guards svr, exit, owned and ran: Serve creates them, Stop stops the
	// server.
	mu      sync.Mutex
	svr     server.Server
	exit    chan error // the server's exit signal, sent by Stop
	owned   *ownedListener
	ran     chan struct{} // closed when svr.Run has returned
	stopped bool
	// stopping is set with stopped, for Serve to read without mu once Run
	// has returned (Stop holds mu while Kitex shuts down).
	stopping atomic.Bool
	// onPolled is given to the listener Serve makes (see ownedListener);
	// tests set it.
	onPolled func()
	// onWatchChecked, when set, is called by WatchPresence between its
	// block check and saving the watch set; tests set it to block there.
	onWatchChecked func()
}

var _ logicrpc.Logic = (*Service)(nil)

// New validates cfg and deps, ensures the JetStream stream exists and returns
// a Service on db (from OpenDB, with the same cfg). ctx bounds only the setup.
// The Service starts publishing its outbox at once (republishing rows a
// previous run left behind); Stop ends that, so call Stop even without Serve.
func New(ctx context.Context, cfg Config, db *gorm.DB, deps Deps) (*Service, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.cheapHashing() {
		deps.Log.Warn().Int("hash_memory_kib", cfg.HashMemoryKiB).Int("hash_time", cfg.HashTime).
			Msg("password hashing is cheaper than the default: for benchmarks and tests only")
	}
	return newService(ctx, cfg, db, deps, cfg.argon())
}

// newService is New with the argon2 cost given apart from cfg, so that tests
// hash in microseconds without the warning.
func newService(ctx context.Context, cfg Config, db *gorm.DB, deps Deps,
	argon argonParams) (*Service, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := deps.validate(); err != nil {
		return nil, err
	}
	if db == nil {
		return nil, fmt.Errorf("%w: db", ErrMissingDep)
	}
	if _, err := mq.EnsureStream(ctx, deps.JS, deps.MQ); err != nil {
		return nil, fmt.Errorf("logic: new: %w", err)
	}
	h, err := newHasher(argon, cfg.HashConcurrency)
	if err != nil {
		return nil, err
	}
	tables, err := resolveTables(db)
	if err != nil {
		return nil, err
	}
	rdb, ownsRDB := db, false
	if db.Dialector.Name() == DriverSQLite {
		if rdb, err = openSQLiteReader(cfg); err != nil {
			return nil, err
		}
		ownsRDB = true
	}
	consecutive, err := detectConsecutiveIDs(ctx, db)
	if err != nil {
		return nil, err
	}
	floor, err := seqFloor(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("logic: new: %w", err)
	}
	log := deps.Log
	s := &Service{
		cfg:         cfg,
		log:         log,
		failLog:     log.Sample(&zerolog.BurstSampler{Burst: failLogBurst, Period: time.Second}),
		db:          db,
		rdb:         rdb,
		ownsRDB:     ownsRDB,
		deps:        deps,
		hash:        h,
		tokens:      tokenSigner{secret: []byte(cfg.TokenSecret), ttl: cfg.TokenTTL},
		limits:      newLimiters(cfg),
		eph:         newEphemeral(cfg.Ephemeral, deps.Watches),
		now:         time.Now,
		tables:      tables,
		queries:     newQueries(tables),
		outboxQueue: make(chan outboxItem, outboxQueueLen),
		batchQueue:  make(chan []*batchItem, batchQueueLen),
	}
	s.onStored = s.enqueue
	s.blobs = sqlBlobs{db: s.dbc}
	if cfg.FileDir != "" {
		s.blobs = &dirBlobs{dir: cfg.FileDir}
	}
	s.consecutiveIDs = consecutive
	s.seqFloor = floor
	if deps.Metrics != nil {
		if err := deps.Metrics.Register(newMetrics(s)); err != nil {
			return nil, fmt.Errorf("logic: metrics: %w", err)
		}
	}
	if err := s.subscribeRevoked(); err != nil {
		return nil, err
	}
	s.startBackground()
	return s, nil
}

// startBackground starts the outbox publisher and relay.
func (s *Service) startBackground() {
	ctx, cancel := context.WithCancel(context.Background())
	s.stopBG = cancel
	deletes := make(chan []int64, deleteQueueLen)
	s.bg.Go(s.log, "logic-outbox-publisher", func() { s.runPublisher(ctx, deletes) })
	s.bg.Go(s.log, "logic-outbox-deleter", func() { s.runDeleter(ctx, deletes) })
	s.bg.Go(s.log, "logic-outbox-relay", func() { s.runRelay(ctx) })
	s.bg.Go(s.log, "logic-device-pruner", func() { s.runPruner(ctx) })
	for range s.batchWorkers() {
		s.bg.Go(s.log, "logic-group-commit", func() { s.runBatcher(ctx) })
	}
}

// Serve runs the Kitex Logic server on ln and blocks until Stop. It returns
// nil after Stop, unless serving failed for a cause of its own (see
// endedByStop), and may be called once.
func (s *Service) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.stopped || s.svr != nil {
		s.mu.Unlock()
		_ = ln.Close()
		return fmt.Errorf("logic: serve %s: already served or stopped", ln.Addr())
	}
	// Not logic.NewServer: it panics when registration fails. The exit
	// signal is Stop's alone: by default Kitex stops a server on SIGINT,
	// SIGTERM and SIGHUP by itself, which stopped logic while the gateway of
	// the same process still drained (SIGTERM), or for good with the process
	// serving on (SIGHUP). Signals are the process's to act on.
	s.exit = make(chan error, 1)
	exit := s.exit
	owned, err := ownListener(ln)
	if err != nil {
		s.mu.Unlock()
		_ = ln.Close()
		return fmt.Errorf("logic: serve %s: %w", ln.Addr(), err)
	}
	owned.onPolled = s.onPolled
	opts := append([]server.Option{
		server.WithListener(owned),
		server.WithServiceAddr(ln.Addr()),
		server.WithExitWaitTime(exitWait),
		server.WithExitSignal(func() <-chan error { return exit }),
		server.WithCompatibleMiddlewareForUnary(),
	}, rpcauth.ServerOptions(s.cfg.InternalSecret)...)
	if s.deps.Metrics != nil {
		opts = append(opts, server.WithMiddleware(obs.RPCServerMiddleware(s.deps.Metrics,
			"resonance_logic_call_seconds", "Latency of the calls logic handles, by method.")))
	}
	svr := server.NewServer(opts...)
	if err := logic.RegisterService(svr, s); err != nil {
		s.mu.Unlock()
		_ = owned.release() // ln with it
		return fmt.Errorf("logic: register service: %w", err)
	}
	s.svr, s.owned, s.ran = svr, owned, make(chan struct{})
	ran := s.ran
	s.mu.Unlock()

	s.log.Info().Str("addr", ln.Addr().String()).Msg("logic serving")
	err = svr.Run()
	close(ran)
	s.log.Info().Str("addr", ln.Addr().String()).Msg("logic server stopped")
	// Kitex's Stop closed it, unless Run failed before the transport took it
	// (see ownedListener, awaitTransport). Either way the transport is done
	// with its descriptor: Run returns after Kitex's Stop, which waits for
	// the registration (but for a transport not started, awaitTransport).
	_ = owned.release()
	if err != nil && s.stopping.Load() && endedByStop(err) {
		// The Stop's doing: it closed the listener as the transport was
		// registering it (see ownedListener).
		s.log.Debug().Err(err).Str("addr", ln.Addr().String()).Msg("logic server ended by stop")
		return nil
	}
	if err != nil {
		return fmt.Errorf("logic: serve %s: %w", ln.Addr(), err)
	}
	return nil
}

// Stop stops the server started by Serve, waiting up to a few seconds for
// in-flight calls and as long for the login attempts a LoginBatch answered
// without, then the outbox publisher and relay (a publish round in
// flight finishes; queued events stay in the outbox for the next relay). It
// is idempotent; it does not close db or deps.
func (s *Service) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true
	s.stopping.Store(true)
	var err error
	if s.svr != nil {
		s.awaitTransport()
		if serr := s.svr.Stop(); serr != nil {
			err = fmt.Errorf("logic: stop: %w", serr)
		}
		// Run returns even when it had not got far enough to see the Stop.
		s.exit <- nil
	}
	if !s.late.stop(exitWait) {
		s.log.Warn().Dur("waited", exitWait).Msg("cancelled login attempts still running")
	}
	if err := s.revokedSub.Unsubscribe(); err != nil {
		s.log.Debug().Err(err).Msg("revocation subscription already gone")
	}
	// After the server: requests still in flight may enqueue events.
	s.stopBG()
	s.bg.Wait()
	if s.ownsRDB {
		closeDB(s.rdb)
	}
	s.log.Debug().Int64("published", s.stats.published.Load()).
		Int64("relayed", s.stats.relayed.Load()).Msg("outbox stopped")
	return err
}

// awaitTransport waits, up to exitWait, until the Kitex transport's event
// loop has taken the listener, or Run has returned without. Kitex's Stop
// runs once: one that comes as Serve starts, before Run has built the
// transport, shuts nothing down, and the event loop then starts anyway and
// waits for ever on the listener Serve closes (epoll drops a closed
// descriptor without an event). Once the loop has asked for the
// descriptor, Kitex's Stop finds it and shuts it down. Called with mu held.
func (s *Service) awaitTransport() {
	select {
	case <-s.owned.polled:
		return
	case <-s.ran:
		return
	default:
	}
	s.log.Debug().Msg("stop waits for the transport to start")
	timer := time.NewTimer(exitWait)
	defer timer.Stop()
	select {
	case <-s.owned.polled:
	case <-s.ran:
	case <-timer.C:
		s.log.Warn().Dur("waited", exitWait).
			Msg("transport not started; its event loop may stay after Stop")
	}
}

// dbc returns the database bound to ctx, with the service logger in ctx for
// GORM's slow-query log.
func (s *Service) dbc(ctx context.Context) *gorm.DB {
	return s.db.WithContext(s.log.WithContext(ctx))
}

// rdc is dbc for reads that may run on the read pool (see Service.rdb).
func (s *Service) rdc(ctx context.Context) *gorm.DB {
	return s.rdb.WithContext(s.log.WithContext(ctx))
}

// fail turns err into the BizError a handler returns. Request errors are
// logged at debug; anything else at error (rate-limited), with ev's fields
// (the ids).
func (s *Service) fail(op string, err error, ev func(*zerolog.Event) *zerolog.Event) error {
	return s.failBiz(op, err, ev)
}

// failBiz is fail for a handler that returns the BizError inside its result
// (SendBatch's outcome of one request) rather than throwing it.
func (s *Service) failBiz(op string, err error,
	ev func(*zerolog.Event) *zerolog.Event) *common.BizError {
	biz, known := bizError(err)
	e := s.failLog.Error()
	if known {
		e = s.log.Debug()
	}
	if ev != nil {
		e = ev(e)
	}
	e.Err(err).Str("op", op).Stringer("code", biz.Code).Msg("request failed")
	return biz
}

// tableNames are the prefixed names of the tables that hand-written joins
// name.
type tableNames struct {
	conv    string
	member  string
	user    string
	block   string
	device  string
	message string
	outbox  string
	fileRef string
	file    string
}

func resolveTables(db *gorm.DB) (tableNames, error) {
	var names [9]string
	for i, model := range []any{&convRow{}, &memberRow{}, &userRow{}, &blockRow{}, &deviceRow{},
		&messageRow{}, &outboxRow{}, &fileRefRow{}, &fileRow{}} {
		stmt := &gorm.Statement{DB: db}
		if err := stmt.Parse(model); err != nil {
			return tableNames{}, fmt.Errorf("logic: table name of %T: %w", model, err)
		}
		names[i] = stmt.Schema.Table
	}
	return tableNames{conv: names[0], member: names[1], user: names[2], block: names[3],
		device: names[4], message: names[5], outbox: names[6], fileRef: names[7],
		file: names[8]}, nil
}

// endedByStop says whether err, from Run after a Stop began, is what that
// Stop causes when it closes the listener as the transport registers it:
// the descriptor gone (EBADF), /dev/null in its place (EPERM: epoll refuses
// it), or the number taken by a socket registered meanwhile (EEXIST); or
// the listener closed. Any other error is a failure to serve, Stop or not.
func endedByStop(err error) bool {
	return errors.Is(err, syscall.EBADF) || errors.Is(err, syscall.EPERM) ||
		errors.Is(err, syscall.EEXIST) || errors.Is(err, net.ErrClosed)
}
