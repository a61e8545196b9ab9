package scenario

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	kclient "github.com/cloudwego/kitex/client"
	"github.com/cloudwego/kitex/pkg/connpool"

	"github.com/resonance-im/resonance/codec"
	"github.com/resonance-im/resonance/internal/rpcauth"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
	"github.com/resonance-im/resonance/kitex_gen/pushrpc"
	pushsvc "github.com/resonance-im/resonance/kitex_gen/pushrpc/push"
)

// PushConfig configures Push. Zero fields take the default named.
type PushConfig struct {
	// Addr is the gateway's client address; required.
	Addr string
	// PushAddr is the same gateway's push Kitex address (--push-listen);
	// required.
	PushAddr string
	// InternalSecret is the gateway's --internal-secret, which its push port
	// requires; the whole system in one process makes its own unless given
	// one, so give it one to run Push against it.
	InternalSecret string
	// MetricsURL is the same gateway's /metrics page; required. Push reads
	// its process start time and accepted connections to find the
	// receivers' conn ids (see findConns).
	MetricsURL string
	// Receivers is the number of logged-in receiving connections; default 500.
	Receivers int
	// Batch is the targets per Push call; default 500, at most Receivers.
	Batch int
	// Callers is the Push calls in flight; default 4.
	Callers int
	// Duration is how long Push is called; default 10s.
	Duration time.Duration
	// Window bounds the frames the gateway accepted that the receivers have
	// not read yet; callers wait above it, so the rate measured is one the
	// receivers sustain and none is closed as a slow consumer. It also
	// bounds the latency measured, which is mostly this queue: default 8
	// per receiver.
	Window int
	// ServerPID, when set, is the server process whose CPU time is measured.
	ServerPID int
	// Progress receives a status line every second; nil prints none.
	Progress io.Writer
}

func (c PushConfig) withDefaults() (PushConfig, error) {
	if err := refuseNegative("push", c); err != nil {
		return c, err
	}
	c.Receivers, c.Callers = cmpOr(c.Receivers, 500), cmpOr(c.Callers, 4)
	c.Batch = min(cmpOr(c.Batch, 500), c.Receivers)
	c.Window = cmpOr(c.Window, 8*c.Receivers)
	c.Duration = cmp0(c.Duration, 10*time.Second)
	if c.Addr == "" || c.PushAddr == "" || c.MetricsURL == "" {
		return c, fmt.Errorf("%w: push needs --addr, --push-addr and --metrics-url of one gateway",
			ErrBadConfig)
	}
	return c, nil
}

// probeWindow is the most targets of one probe call (see findConns).
const probeWindow = 4096

// stampMarker fills the stamp in the template so that its offset can be
// found; a stamp of 0 marks a probe frame.
var stampMarker = []byte{0xa5, 0x5a, 0xa5, 0x5a, 0xa5, 0x5a, 0xa5, 0x5a}

// errConnsNotFound means probing did not find every receiver's conn id.
var errConnsNotFound = errors.New("push: receivers' conn ids not found")

// pushRun is the state of one Push.
type pushRun struct {
	cfg      PushConfig
	conns    []*benchConn
	targets  []*pushrpc.Target
	cli      pushsvc.Client
	template []byte
	stampAt  int // offset of the 8-byte stamp in the frame
	start    time.Time
	latency  *Recorder // Push call -> frame read at a receiver
	calls    *Recorder // Push call round trip

	accepted atomic.Int64 // frames the gateway reported written
	received atomic.Int64 // frames read at the receivers, probes excluded
	probes   atomic.Int64
	missing  atomic.Int64 // targets the gateway did not find
	nCalls   atomic.Int64
	lastRecv atomic.Int64 // ns since start
	readErrs atomic.Int64
}

// Push measures the gateway's push path alone: it logs cfg.Receivers
// connections in (as devices of a few users), then calls the gateway's Push
// service directly with a frame encoded once (only an 8-byte send stamp in
// its content is rewritten per call) for batches of targets, for
// cfg.Duration. Deliveries are counted where they land: at the receivers.
// It fails with ErrCheckFailed when a frame the gateway accepted did not
// arrive or a target was missing.
func Push(ctx context.Context, cfg PushConfig) (Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Report{}, err
	}
	before, err := readGatewayCounters(ctx, cfg.MetricsURL)
	if err != nil {
		return Report{}, err
	}
	conns, err := openConns(ctx, rawConnsConfig{addr: cfg.Addr, conns: cfg.Receivers,
		users: usersFor(cfg.Receivers), prefix: uniquePrefix("push")})
	if err != nil {
		return Report{}, fmt.Errorf("push: %w", err)
	}
	after, err := readGatewayCounters(ctx, cfg.MetricsURL)
	if err != nil {
		closeConns(conns)
		return Report{}, err
	}
	r := &pushRun{cfg: cfg, conns: conns, start: time.Now()}
	r.latency, r.calls = NewRecorder(r.start), NewRecorder(r.start)
	if err := r.prepare(); err != nil {
		closeConns(conns)
		return Report{}, err
	}
	readers := r.read()
	keepCtx, stopKeeping := context.WithCancel(ctx)
	go r.heartbeat(keepCtx)
	defer func() {
		stopKeeping()
		closeConns(conns)
		readers.Wait()
	}()
	if err := r.findConns(ctx, before, after); err != nil {
		return Report{}, err
	}
	return r.measure(ctx)
}

// prepare encodes the template frame and builds the Kitex client.
func (r *pushRun) prepare() error {
	msg := &protocol.PushMsg{Message: &common.Message{MsgId: 1, ConvId: "bench-push", Seq: 1,
		ContentType: common.ContentType_BINARY, Content: stampMarker}}
	r.template = codec.EncodeFrame(protocol.Op_PUSH, 0, 0, msg)
	r.stampAt = bytes.Index(r.template, stampMarker)
	if r.stampAt < 0 {
		return errors.New("push: stamp not found in the encoded frame")
	}
	opts := append(rpcauth.ClientOptions(r.cfg.InternalSecret),
		kclient.WithHostPorts(r.cfg.PushAddr), kclient.WithRPCTimeout(10*time.Second),
		kclient.WithConnectTimeout(5*time.Second),
		kclient.WithLongConnection(connpool.IdleConfig{MaxIdlePerAddress: r.cfg.Callers,
			MaxIdleTimeout: time.Minute}))
	cli, err := pushsvc.NewClient("resonance.push", opts...)
	if err != nil {
		return fmt.Errorf("push: client for %s: %w", r.cfg.PushAddr, err)
	}
	r.cli = cli
	return nil
}

// frame returns a copy of the template stamped with stamp.
func (r *pushRun) frame(stamp time.Duration) []byte {
	f := bytes.Clone(r.template)
	binary.BigEndian.PutUint64(f[r.stampAt:], uint64(stamp))
	return f
}

// measure calls Push from cfg.Callers goroutines for cfg.Duration, then
// waits for the frames in flight.
func (r *pushRun) measure(ctx context.Context) (Report, error) {
	stop := make(chan struct{})
	waitProgress := progress(r.cfg.Progress, stop, r.status)
	cpu := startCPU(r.cfg.ServerPID)
	phase := time.Now()
	r.lastRecv.Store(int64(phase.Sub(r.start)))
	runCtx, cancel := context.WithTimeout(ctx, r.cfg.Duration)
	defer cancel()
	var cursor atomic.Int64
	errs := make([]error, r.cfg.Callers)
	var wg sync.WaitGroup
	for i := range r.cfg.Callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.call(runCtx, &cursor)
		}()
	}
	wg.Wait()
	drained := r.waitFor(ctx, func() bool { return r.received.Load() >= r.accepted.Load() })
	usage := cpu.stop()
	close(stop)
	waitProgress()
	rep := r.report(time.Duration(r.lastRecv.Load())-phase.Sub(r.start), usage)
	if err := firstError(errs); err != nil {
		rep.OK = false
		return rep, fmt.Errorf("push: %w", err)
	}
	if drained != nil || !rep.OK {
		rep.OK = false
		return rep, fmt.Errorf("%w: %d frames accepted, %d received, %d targets missing",
			ErrCheckFailed, r.accepted.Load(), r.received.Load(), r.missing.Load())
	}
	return rep, nil
}

// call pushes batches until ctx is done, each to the next cfg.Batch
// targets in turn, keeping the frames not yet read under cfg.Window.
func (r *pushRun) call(ctx context.Context, cursor *atomic.Int64) error {
	batch := make([]*pushrpc.Target, r.cfg.Batch)
	for ctx.Err() == nil {
		for r.accepted.Load()-r.received.Load() > int64(r.cfg.Window) && ctx.Err() == nil {
			time.Sleep(100 * time.Microsecond)
		}
		from := int(cursor.Add(int64(len(batch))) - int64(len(batch)))
		for i := range batch {
			batch[i] = r.targets[(from+i)%len(r.targets)]
		}
		sent := time.Now()
		resp, err := r.cli.Push(context.WithoutCancel(ctx),
			&pushrpc.PushReq{Targets: batch, Frame: r.frame(sent.Sub(r.start))})
		if err != nil {
			return err
		}
		now := time.Now()
		r.calls.Record(now, now.Sub(sent))
		r.nCalls.Add(1)
		r.accepted.Add(int64(resp.Delivered))
		r.missing.Add(int64(len(resp.MissingConns)))
	}
	return nil
}

// read starts one reader per receiver.
func (r *pushRun) read() *sync.WaitGroup {
	var wg sync.WaitGroup
	for _, c := range r.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.readConn(c); err != nil && !errors.Is(err, io.EOF) {
				r.readErrs.Add(1)
			}
		}()
	}
	return &wg
}

// readConn counts the PUSH frames of c and records their latency from the
// stamp, until the connection closes.
func (r *pushRun) readConn(c *benchConn) error {
	bodyLen := len(r.template) - codec.HeaderSize
	stampAt := r.stampAt - codec.HeaderSize
	for {
		h, err := c.readHeader()
		if err != nil {
			return err
		}
		body, err := c.readBody(h)
		if err != nil {
			return err
		}
		if h.Op != protocol.Op_PUSH || len(body) != bodyLen {
			continue
		}
		stamp := time.Duration(binary.BigEndian.Uint64(body[stampAt:]))
		if stamp == 0 {
			r.probes.Add(1)
			continue
		}
		now := time.Now()
		since := now.Sub(r.start)
		r.latency.Record(now, since-stamp)
		r.received.Add(1)
		r.lastRecv.Store(int64(since))
	}
}

// heartbeat keeps the receivers logged in; their readers skip the acks.
func (r *pushRun) heartbeat(ctx context.Context) {
	t := time.NewTicker(r.conns[0].interval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, c := range r.conns {
			_ = c.writeFrame(protocol.Op_HEARTBEAT, 1, protocol.NewHeartbeatReq())
		}
	}
}

// waitFor polls cond until it holds, for at most 30 seconds.
func (r *pushRun) waitFor(ctx context.Context, cond func() bool) error {
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("push: timed out waiting for the receivers")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

func (r *pushRun) status() string {
	n, p99 := r.latency.Snapshot()
	return fmt.Sprintf("push: %4.0fs delivered=%d p99=%s", time.Since(r.start).Seconds(), n,
		FormatDuration(p99))
}

// report builds the report; took runs from the first call to the last
// frame read.
func (r *pushRun) report(took time.Duration, usage *CPUUsage) Report {
	lost := r.accepted.Load() - r.received.Load()
	rep := Report{Scenario: "push", ServerCPU: usage,
		Params: []Metric{{Name: "receivers", Value: float64(len(r.conns))},
			{Name: "batch", Value: float64(r.cfg.Batch)},
			{Name: "callers", Value: float64(r.cfg.Callers)},
			{Name: "duration", Value: r.cfg.Duration.Seconds(), Unit: "s"}},
		Metrics: []Metric{
			{Name: "deliveries", Value: float64(r.received.Load())},
			{Name: "delivery rate", Value: perSecond(r.received.Load(), took), Unit: "msgs/s"},
			{Name: "call rate", Value: perSecond(r.nCalls.Load(), took),
				Unit: "calls/s"},
			{Name: "lost", Value: float64(lost)},
			{Name: "missing targets", Value: float64(r.missing.Load())},
		},
		Latencies: []Latency{latencyOf("push to read", r.latency),
			latencyOf("push call", r.calls)}}
	rep.OK = lost == 0 && r.missing.Load() == 0
	return rep
}
