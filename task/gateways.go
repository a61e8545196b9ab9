package task

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cloudwego/kitex/client"
	"github.com/cloudwego/kitex/pkg/connpool"
	"github.com/rs/zerolog"

	"github.com/resonance-im/resonance/internal/route"
	"github.com/resonance-im/resonance/internal/rpcauth"
	"github.com/resonance-im/resonance/internal/rpcerr"
	"github.com/resonance-im/resonance/internal/run"
	"github.com/resonance-im/resonance/kitex_gen/pushrpc"
	"github.com/resonance-im/resonance/kitex_gen/pushrpc/push"
)

// clientIdleTTL is how long a gateway's client is kept without a push. With a
// gateway registry the client of a vanished gateway is dropped at the next
// registry read; without one, routes of a gateway that left expire after
// route.DefaultTTL and its client is dropped soon after.
const clientIdleTTL = 5 * time.Minute

// connIdleTimeout closes a pooled connection to a gateway unused this long.
const connIdleTimeout = time.Minute

// gatewayClients caches one Kitex Push client per gateway push address,
// with the coalescer of its pushes (pushbatch.go). It is safe for
// concurrent use.
type gatewayClients struct {
	timeout time.Duration
	conns   int    // idle connections kept per gateway
	secret  string // internal secret sent with every call; empty: none
	idleTTL time.Duration
	now     func() time.Time
	metrics *metrics
	log     zerolog.Logger
	// inFlight is how many calls each coalescer keeps out to its gateway
	// (maxCallsInFlight unless a test asks for fewer).
	inFlight int
	// calls tracks the coalescers' batch goroutines, so that closeAll can
	// wait for them.
	calls run.Group

	mu      sync.Mutex
	clients map[string]*gatewayClient // by gateway push address
	// older remembers by address the gateways that refused PushBatch, for
	// the clients made again: the client of a lapsed gateway that flaps is
	// dropped and made again every probe interval, and each would try
	// PushBatch and log its refusal anew. sweep forgets an address without
	// a client once its refusal is no longer remembered.
	older map[string]*rpcerr.OlderPeer
}

type gatewayClient struct {
	push     push.Client
	pushes   *pushCoalescer
	lastUsed time.Time // guarded by gatewayClients.mu
}

// clientsConfig configures gatewayClients.
type clientsConfig struct {
	timeout time.Duration // bounds one call, connecting included
	conns   int           // idle connections kept per gateway
	secret  string        // internal secret sent with every call; empty: none
	metrics *metrics      // nil: counted, not exported
	log     zerolog.Logger
	// inFlight bounds the calls out to one gateway; 0: maxCallsInFlight.
	inFlight int
}

// newGatewayClients builds an empty cache of clients configured by cfg.
func newGatewayClients(cfg clientsConfig) *gatewayClients {
	if cfg.metrics == nil {
		cfg.metrics = newMetrics(nil)
	}
	return &gatewayClients{
		timeout:  cfg.timeout,
		conns:    cfg.conns,
		secret:   cfg.secret,
		idleTTL:  clientIdleTTL,
		now:      time.Now,
		metrics:  cfg.metrics,
		log:      cfg.log,
		inFlight: cmp.Or(cfg.inFlight, maxCallsInFlight),
		clients:  make(map[string]*gatewayClient),
		older:    make(map[string]*rpcerr.OlderPeer),
	}
}

// get returns the client of addr, building it on first use.
func (g *gatewayClients) get(addr string) (*gatewayClient, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c, ok := g.clients[addr]; ok {
		c.lastUsed = g.now()
		return c, nil
	}
	// Building a Kitex client opens no connection, so doing it under the
	// lock costs microseconds, and it keeps one client per address.
	opts := append([]client.Option{
		client.WithHostPorts(addr),
		client.WithRPCTimeout(g.timeout),
		client.WithConnectTimeout(g.timeout),
		// The coalescer keeps maxCallsInFlight pushes out, but to a gateway
		// older than PushBatch each worker may have a call in flight: keeping
		// that many idle connections avoids a connect per push there (Kitex
		// keeps 10 by default); only connections that were used are kept.
		client.WithLongConnection(connpool.IdleConfig{
			MaxIdlePerAddress: g.conns,
			MaxIdleTimeout:    connIdleTimeout,
		}),
	}, rpcauth.ClientOptions(g.secret)...)
	cli, err := push.NewClient("resonance.push", opts...)
	if err != nil {
		return nil, fmt.Errorf("task: push client for gateway %s: %w", addr, err)
	}
	older := g.older[addr]
	if older == nil {
		older = new(rpcerr.OlderPeer)
		g.older[addr] = older
	}
	c := &gatewayClient{push: cli, pushes: newPushCoalescer(addr, cli, g, older),
		lastUsed: g.now()}
	g.clients[addr] = c
	return c, nil
}

// sweep drops the clients unused for idleTTL and returns how many it dropped.
func (g *gatewayClients) sweep() int {
	cutoff := g.now().Add(-g.idleTTL)
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for addr, c := range g.clients {
		if c.lastUsed.Before(cutoff) {
			c.pushes.close()
			delete(g.clients, addr)
			n++
		}
	}
	for addr, older := range g.older {
		if _, ok := g.clients[addr]; !ok && !older.Active() {
			delete(g.older, addr)
		}
	}
	return n
}

// drop drops the client of addr and reports whether there was one. Pushes
// queued for it fail; see pushCoalescer.close.
func (g *gatewayClients) drop(addr string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	c, ok := g.clients[addr]
	if ok {
		c.pushes.close()
		delete(g.clients, addr)
	}
	return ok
}

// closeAll drops every client, failing the pushes queued for them, and
// waits for the batch calls in flight, which it cancels.
//
// TODO: the generated push.Client does not expose Close, so a dropped
// client's connections are closed by Kitex's finalizer when it is garbage
// collected, not at once; idle sockets to a gone gateway linger until then
// or until connIdleTimeout.
func (g *gatewayClients) closeAll() {
	g.mu.Lock()
	for _, c := range g.clients {
		c.pushes.close()
	}
	clear(g.clients)
	g.mu.Unlock()
	g.calls.Wait()
}

// len returns the number of cached clients.
func (g *gatewayClients) len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.clients)
}

// pushResult is the outcome of one push to one gateway.
type pushResult struct {
	gateway string
	targets int
	resp    *pushrpc.PushResp
	err     error
	took    time.Duration // from hand-off to answer, queueing included
}

// pushAll sends frame to every gateway of targets concurrently, so that a
// dead or slow gateway costs the others nothing, and returns once every call
// has returned (each is bounded by the client's RPC timeout). frame is shared
// by all calls and must not be modified until pushAll returns.
func (g *gatewayClients) pushAll(ctx context.Context, frame []byte,
	targets map[string][]*pushrpc.Target) []pushResult {
	return g.pushEach(ctx, targets, func(_ string, ts []*pushrpc.Target) *pushrpc.PushReq {
		return &pushrpc.PushReq{Targets: ts, Frame: frame}
	})
}

// pushEach sends the request req builds for each gateway of targets,
// concurrently, and returns once every call has returned.
func (g *gatewayClients) pushEach(ctx context.Context, targets map[string][]*pushrpc.Target,
	req func(addr string, ts []*pushrpc.Target) *pushrpc.PushReq) []pushResult {
	results := make([]pushResult, 0, len(targets))
	if len(targets) == 1 {
		// The common case (every device on one gateway) needs no goroutine.
		for addr, ts := range targets {
			results = append(results, g.pushOne(ctx, addr, req(addr, ts)))
		}
		return results
	}
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	for addr, ts := range targets {
		wg.Go(func() {
			r := g.pushOne(ctx, addr, req(addr, ts))
			mu.Lock()
			results = append(results, r)
			mu.Unlock()
		})
	}
	wg.Wait()
	return results
}

// pushOne hands req to the coalescer of addr's client and waits for its
// answer.
func (g *gatewayClients) pushOne(ctx context.Context, addr string,
	req *pushrpc.PushReq) pushResult {
	r := pushResult{gateway: addr, targets: len(req.Targets)}
	c, err := g.get(addr)
	if err != nil {
		r.err = err
		return r
	}
	start := time.Now()
	r.resp, r.err = c.pushes.push(ctx, req)
	r.took = time.Since(start)
	if r.err != nil {
		r.err = fmt.Errorf("task: push to gateway %s: %w", addr, r.err)
	}
	return r
}

// kick asks the gateway at addr to close the connections of req.
func (g *gatewayClients) kick(ctx context.Context, addr string,
	req *pushrpc.KickReq) (*pushrpc.PushResp, error) {
	c, err := g.get(addr)
	if err != nil {
		return nil, err
	}
	resp, err := c.push.Kick(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("task: kick on gateway %s: %w", addr, err)
	}
	return resp, nil
}

// groupTargets groups routes by gateway, leaving out the origin connection
// (the sending device already has its ack) and routes without a gateway. A
// route listed twice is pushed once.
func groupTargets(routes []route.Route, originGateway string,
	originConn int64) map[string][]*pushrpc.Target {
	out := make(map[string][]*pushrpc.Target)
	seen := make(map[route.Route]struct{}, len(routes))
	for _, r := range routes {
		if r.Gateway == "" || r.Gateway == originGateway && r.ConnID == originConn {
			continue
		}
		if _, dup := seen[r]; dup {
			continue
		}
		seen[r] = struct{}{}
		target := &pushrpc.Target{ConnId: r.ConnID, UserId: r.UserID}
		out[r.Gateway] = append(out[r.Gateway], target)
	}
	return out
}
