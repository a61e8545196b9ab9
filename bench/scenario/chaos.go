package scenario

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resonance-im/resonance/client"
)

// ChaosConfig configures Chaos. Zero fields take their defaults.
type ChaosConfig struct {
	// Bin is the resonance binary; default: go build of this module into a
	// scratch directory.
	Bin string
	// Services are MariaDB, Redis and NATS; defaults on loopback.
	Services ChaosServices
	// Users take part with two devices each; default 4, at least 2.
	Users int
	// Messages is how many 1:1 messages each device sends; default 20.
	Messages int
	// Interval is the pause between two sends of a device; default 300ms.
	Interval time.Duration
	// Down is how long a killed role stays down before it restarts;
	// default 500ms.
	Down time.Duration
	// Timeout bounds the run from the start of the roles to the check; the
	// build (at most 5 minutes) and the cleanup (15s) come on top; default
	// 100s.
	Timeout time.Duration
	// Rounds is how many times each role is killed, the rounds spread over
	// the planned sending time; default 1.
	Rounds int
	// Embedded runs the whole system as one process (resonance all) on its
	// embedded defaults (SQLite, embedded NATS, in-process presence) in a
	// data directory of its own, killed and restarted on that directory:
	// the README's one command, SIGKILLed. Services are then not used.
	Embedded bool
	// Prefix names the run's tables, stream and keys; default a fresh
	// random one per run.
	Prefix string
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

func (c ChaosConfig) withDefaults() (ChaosConfig, error) {
	if err := refuseNegative("chaos", c); err != nil {
		return c, err
	}
	c.Services = c.Services.withDefaults()
	c.Users = cmpPositive(c.Users, 4)
	c.Messages = cmpPositive(c.Messages, 20)
	c.Interval = cmpPositive(c.Interval, 300*time.Millisecond)
	c.Down = cmpPositive(c.Down, 500*time.Millisecond)
	c.Timeout = cmpPositive(c.Timeout, 100*time.Second)
	c.Rounds = cmpPositive(c.Rounds, 1)
	if c.Users < 2 {
		return c, fmt.Errorf("%w: chaos: --users must be at least 2, got %d", ErrBadConfig,
			c.Users)
	}
	if c.Prefix == "" {
		// Stream names and table names allow no dash.
		c.Prefix = strings.TrimSuffix(uniquePrefix("chaos"), "-")
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return c, nil
}

func cmpPositive[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// ChaosResult is the outcome of Chaos. Delivered, Lost and Duplicated sum
// the devices: a message counts once per device it is due at.
type ChaosResult struct {
	Devices    int
	Acked      int
	Failed     int // sends never acked
	Delivered  int
	Lost       int
	Duplicated int
	Reordered  int
	PerDevice  []DeviceTally
	// Resumes counts the catch-ups after a reconnect, over all devices.
	Resumes int
	// Elapsed runs from the first send to the last delivery (or timeout).
	Elapsed time.Duration
}

// String is the summary line of the bench tool.
func (r ChaosResult) String() string {
	return fmt.Sprintf("chaos: devices=%d acked=%d delivered=%d lost=%d duplicated=%d "+
		"reordered=%d elapsed=%.1fs", r.Devices, r.Acked, r.Delivered, r.Lost,
		r.Duplicated, r.Reordered, r.Elapsed.Seconds())
}

// OK reports whether every send was acked and every device got each of its
// messages once, in order.
func (r ChaosResult) OK() bool {
	return r.Devices > 0 && r.Failed == 0 && r.Lost == 0 && r.Duplicated == 0 &&
		r.Reordered == 0
}

// Failures lists the devices that broke the promise, one line each.
func (r ChaosResult) Failures() []string {
	return deviceFailures("chaos", r.PerDevice)
}

// Lines lists every device, ok or FAIL, one line each.
func (r ChaosResult) Lines() []string {
	return deviceLines("chaos", r.PerDevice)
}

// Chaos starts logic, task and gateway as separate processes against the
// services (or, with cfg.Embedded, the whole system as one process), has
// cfg.Users users with two devices each send 1:1 messages at a steady pace
// through client.Session, and meanwhile kills with SIGKILL and restarts
// task, then logic, then the gateway (or the one process), cfg.Rounds
// times. Once every device has caught up (or the timeout passes) it checks
// each device. It returns an error wrapping ErrCheckFailed with the result
// when a check fails; other errors mean the run could not be set up. The
// roles are killed and the run's tables, stream and keys removed on every
// return.
func Chaos(ctx context.Context, cfg ChaosConfig) (ChaosResult, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return ChaosResult{}, err
	}
	p := procRun{name: "chaos", bin: cfg.Bin, prefix: cfg.Prefix, services: cfg.Services,
		timeout: cfg.Timeout, log: cfg.Log, topology: topology{logic: 1, task: 1, gateway: 1}}
	what := "cluster"
	if cfg.Embedded {
		p.topology, what = topology{all: 1}, "one process"
	}
	// Every device logs in from 127.0.0.1, all of them again after each
	// kill: the limits per address would refuse what many addresses would
	// spread.
	prepare := func(cl *cluster) {
		perAddr := []string{"--login-addr-limit", "1000000/1ms",
			"--register-addr-limit", "1000000/1ms"}
		cl.roleArgs = map[string][]string{roleLogic: perAddr, roleAll: perAddr}
	}
	return runProcs(ctx, p, prepare, func(ctx context.Context, cl *cluster) (ChaosResult, error) {
		fmt.Fprintf(cfg.Log, "chaos: %s up (gateway %s, prefix %s)\n",
			what, cl.gatewayAddr, cfg.Prefix)
		return runChaos(ctx, cfg, cl)
	})
}

// buildTimeout bounds the go build of the binary, which a cold cache makes
// slow; it is not part of ChaosConfig.Timeout.
const buildTimeout = 5 * time.Minute

// catchUpTimeout bounds the wait for every device to have every acked
// message after the last send, so that a failing run ends early.
const catchUpTimeout = 30 * time.Second

// runChaos drives the devices and the kills, then checks.
func runChaos(ctx context.Context, cfg ChaosConfig, cl *cluster) (ChaosResult, error) {
	led := newLedger()
	var resumes atomic.Int64
	devs, err := openDevices(ctx, cfg, cl.gatewayAddrs, led, &resumes)
	if err != nil {
		return ChaosResult{}, err
	}
	defer closeDevices(devs)

	start := time.Now()
	var failed atomic.Int64
	var wg sync.WaitGroup
	sendCtx, stopSends := context.WithCancel(ctx)
	defer stopSends()
	for _, d := range devs {
		wg.Add(1)
		go func() { defer wg.Done(); failed.Add(int64(d.sendAll(sendCtx, cfg, devs, led))) }()
	}
	chaosErr := killAndRestart(ctx, cfg, cl)
	if chaosErr != nil {
		stopSends() // the check cannot pass; do not wait out the timeout
	}
	wg.Wait()
	catchUp, cancel := context.WithTimeout(ctx, catchUpTimeout)
	waitFor(catchUp, led.complete)
	cancel()
	elapsed := time.Since(start)
	settle(ctx)

	res := ChaosResult{Devices: len(devs), Failed: int(failed.Load()), Elapsed: elapsed,
		Resumes: int(resumes.Load())}
	res.PerDevice, res.Acked = led.tally()
	for _, d := range res.PerDevice {
		res.Delivered += d.Delivered
		res.Lost += d.Lost
		res.Duplicated += d.Duplicated
		res.Reordered += d.Reordered
	}
	if chaosErr != nil {
		return res, chaosErr
	}
	if !res.OK() {
		return res, fmt.Errorf("%w: %d failed sends, %d lost, %d duplicated, %d reordered",
			ErrCheckFailed, res.Failed, res.Lost, res.Duplicated, res.Reordered)
	}
	return res, nil
}

// killAndRestart kills task, logic and the gateway in turn (or the one
// process), cfg.Rounds times, the kills spread evenly over the planned
// sending time, each role restarted after cfg.Down and up again before the
// next kill.
func killAndRestart(ctx context.Context, cfg ChaosConfig, cl *cluster) error {
	plan := time.Duration(cfg.Messages) * cfg.Interval
	roles := []string{roleTask, roleLogic, roleGateway}
	if cfg.Embedded {
		roles = []string{roleAll}
	}
	var kills []string
	for range cfg.Rounds {
		kills = append(kills, roles...)
	}
	start := time.Now()
	for i, role := range kills {
		// The first kill lands a fifth of the way in when there are three, as
		// before rounds; the last leaves time for sends after it.
		at := start.Add(plan * time.Duration(i+1) / time.Duration(len(kills)+2))
		if err := sleepCtx(ctx, time.Until(at)); err != nil {
			return err
		}
		cl.kill(role)
		fmt.Fprintf(cfg.Log, "chaos: %s killed (SIGKILL) at %.1fs\n", role,
			time.Since(start).Seconds())
		if err := sleepCtx(ctx, cfg.Down); err != nil {
			return err
		}
		if err := cl.start(ctx, role); err != nil {
			return err
		}
		fmt.Fprintf(cfg.Log, "chaos: %s restarted at %.1fs\n", role,
			time.Since(start).Seconds())
		if role == roleGateway || role == roleAll {
			fmt.Fprintf(cfg.Log, "chaos: gateway now on %s\n", cl.gatewayAddr)
		}
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitFor polls done until it holds or ctx ends.
func waitFor(ctx context.Context, done func() bool) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !done() {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// device is one logged-in device of a chaos user.
type device struct {
	index int // in the ledger
	user  int // index of its user
	id    int64
	sess  *client.Session
	done  chan struct{} // closed when its collector ends
}

// openDevices registers the users and opens two sessions for each; each
// session's messages go to the ledger.
func openDevices(ctx context.Context, cfg ChaosConfig, addrs [2]string,
	led *ledger, resumes *atomic.Int64) ([]*device, error) {
	var devs []*device
	for u := range cfg.Users {
		name := fmt.Sprintf("%s-%d", cfg.Prefix, u)
		id, err := register(ctx, addrs[0], name)
		if err != nil {
			closeDevices(devs)
			return nil, err
		}
		for k := range 2 {
			d, err := openDevice(ctx, addrs, name, k, led, resumes)
			if err != nil {
				closeDevices(devs)
				return nil, err
			}
			d.user, d.id = u, id
			devs = append(devs, d)
		}
	}
	return devs, nil
}

func register(ctx context.Context, addr, name string) (int64, error) {
	c, err := client.Dial(ctx, addr, client.Options{})
	if err != nil {
		return 0, fmt.Errorf("chaos: register %s: %w", name, err)
	}
	defer c.Close()
	id, err := c.Register(ctx, name, password(name))
	if err != nil {
		return 0, fmt.Errorf("chaos: register %s: %w", name, err)
	}
	return id, nil
}

func openDevice(ctx context.Context, addrs [2]string, name string, k int,
	led *ledger, resumes *atomic.Int64) (*device, error) {
	devName := fmt.Sprintf("%s/d%d", name, k)
	sess, err := client.OpenSession(ctx, client.SessionConfig{
		Addr:      addrs[0],
		Fallbacks: addrs[1:],
		Login: client.LoginParams{Username: name, Password: password(name),
			DeviceID: fmt.Sprintf("d%d", k), Platform: "bench"},
		Client:     client.Options{RequestTimeout: 5 * time.Second},
		MinBackoff: 100 * time.Millisecond,
		MaxBackoff: time.Second,
		OnEvent: func(e client.Event) {
			if e.Kind == client.EventResumed {
				resumes.Add(1)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("chaos: open %s: %w", devName, err)
	}
	d := &device{sess: sess, done: make(chan struct{})}
	d.index = led.addDevice(devName, sess.UserID())
	go func() {
		defer close(d.done)
		for m := range sess.Messages() {
			led.handed(d.index, m)
		}
	}()
	return d, nil
}

func closeDevices(devs []*device) {
	for _, d := range devs {
		_ = d.sess.Close()
		<-d.done
	}
}

// sendAll sends cfg.Messages messages round-robin to the other users, one
// per cfg.Interval (after a random start offset, so devices do not send in
// step), and returns how many were never acked.
func (d *device) sendAll(ctx context.Context, cfg ChaosConfig, devs []*device,
	led *ledger) int {
	failed := 0
	if sleepCtx(ctx, rand.N(cfg.Interval)) != nil {
		return cfg.Messages
	}
	for j := range cfg.Messages {
		to := devs[2*((d.user+1+j%(cfg.Users-1))%cfg.Users)]
		ack, err := d.sess.Send(ctx, client.SendParams{ToUserID: to.id,
			Text: fmt.Sprintf("chaos %d/%d", d.index, j)})
		if err != nil {
			failed++
			if ctx.Err() != nil {
				return failed + cfg.Messages - j - 1
			}
			continue
		}
		led.ackedMsg(ack.MsgId, d.id, to.id)
		if sleepCtx(ctx, cfg.Interval) != nil {
			return failed + cfg.Messages - j - 1
		}
	}
	return failed
}
