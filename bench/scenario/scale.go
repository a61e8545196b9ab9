package scenario

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resonance-im/resonance/client"
)

// ScaleConfig configures Scale. Zero fields take their defaults.
type ScaleConfig struct {
	// Bin is the resonance binary; default: go build of this module into a
	// scratch directory.
	Bin string
	// Services are MariaDB, Redis and NATS; defaults on loopback.
	Services ChaosServices
	// Users take part with two devices each, one on each gateway; default
	// 4, at least 2.
	Users int
	// Messages is how many 1:1 messages each device sends, half before and
	// half after the killed gateway vanished; default 16, at least 2.
	Messages int
	// Interval is the pause between two sends of a device; default 200ms.
	Interval time.Duration
	// RegisterTTL is the gateways' registry TTL, which bounds how long the
	// killed gateway looks alive; default 3s.
	RegisterTTL time.Duration
	// Timeout bounds the run from the start of the processes to the check;
	// the build and the cleanup come on top; default 90s.
	Timeout time.Duration
	// Prefix names the run's tables, stream and keys; default a fresh
	// random one per run.
	Prefix string
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

func (c ScaleConfig) withDefaults() (ScaleConfig, error) {
	if err := refuseNegative("scale", c); err != nil {
		return c, err
	}
	c.Services = c.Services.withDefaults()
	c.Users = cmpPositive(c.Users, 4)
	c.Messages = cmpPositive(c.Messages, 16)
	c.Interval = cmpPositive(c.Interval, 200*time.Millisecond)
	c.RegisterTTL = cmpPositive(c.RegisterTTL, 3*time.Second)
	c.Timeout = cmpPositive(c.Timeout, 90*time.Second)
	if c.Users < 2 {
		return c, fmt.Errorf("%w: scale: --users must be at least 2, got %d", ErrBadConfig,
			c.Users)
	}
	if c.Messages < 2 {
		return c, fmt.Errorf("%w: scale: --messages must be at least 2, got %d", ErrBadConfig,
			c.Messages)
	}
	if c.Prefix == "" {
		c.Prefix = strings.TrimSuffix(uniquePrefix("scale"), "-") // names allow no dash
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return c, nil
}

// scaleTopology is the cluster Scale runs.
var scaleTopology = topology{logic: 2, task: 2, gateway: 2}

// ScaleResult is the outcome of Scale. The delivery counts sum the devices,
// as in ChaosResult.
type ScaleResult struct {
	Devices    int
	Acked      int
	Failed     int // sends never acked
	Delivered  int
	Lost       int
	Duplicated int
	Reordered  int
	PerDevice  []DeviceTally
	// Moved counts the devices of the killed gateway that resumed on the
	// other one; all of them should.
	Moved int
	// StaleRoutes counts the routes of moved devices still naming the
	// killed gateway at the end.
	StaleRoutes int
	// DeadPushErrors counts the task push calls that failed after both
	// tasks saw the killed gateway vanish; Skipped counts the calls they
	// skipped instead (the routes of a device that never came back).
	DeadPushErrors int
	Skipped        int
	// Elapsed runs from the first send to the last delivery (or timeout).
	Elapsed time.Duration
}

// String is the summary line of the bench tool.
func (r ScaleResult) String() string {
	return fmt.Sprintf("scale: devices=%d acked=%d delivered=%d lost=%d duplicated=%d "+
		"reordered=%d moved=%d stale_routes=%d dead_push_errors=%d skipped=%d elapsed=%.1fs",
		r.Devices, r.Acked, r.Delivered, r.Lost, r.Duplicated, r.Reordered, r.Moved,
		r.StaleRoutes, r.DeadPushErrors, r.Skipped, r.Elapsed.Seconds())
}

// OK reports whether every send was acked, every device got each of its
// messages once and in order, every device of the killed gateway moved and
// left no route behind, and task skipped the vanished gateway instead of
// calling it.
func (r ScaleResult) OK() bool {
	return r.Devices > 0 && r.Failed == 0 && r.Lost == 0 && r.Duplicated == 0 &&
		r.Reordered == 0 && r.Moved == r.Devices/2 && r.StaleRoutes == 0 &&
		r.DeadPushErrors == 0 && r.Skipped > 0
}

// Failures lists the devices that broke the delivery promise, one line each.
func (r ScaleResult) Failures() []string {
	return deviceFailures("scale", r.PerDevice)
}

// Lines lists every device, ok or FAIL, one line each.
func (r ScaleResult) Lines() []string {
	return deviceLines("scale", r.PerDevice)
}

// Scale starts 2 logic, 2 task and 2 gateway processes against the
// services (each gateway calls both logic instances and registers in Redis)
// and gives each of cfg.Users users one device on each gateway, with the
// other gateway as its fallback, plus one device of the first user that
// stays on the first gateway. While the devices chat, the first gateway is
// killed with SIGKILL; its devices move to the other gateway. Once both
// tasks see it vanish from the registry, the devices send the rest. Then it
// checks delivery per device, that no moved device's route names the dead
// gateway, and that task skipped it rather than calling it (the stranded
// device's route lingers until its TTL). Errors are as for Chaos; the
// processes are killed and the run's tables, stream and keys removed on
// every return.
func Scale(ctx context.Context, cfg ScaleConfig) (ScaleResult, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return ScaleResult{}, err
	}
	p := procRun{name: "scale", bin: cfg.Bin, prefix: cfg.Prefix, services: cfg.Services,
		timeout: cfg.Timeout, log: cfg.Log, topology: scaleTopology}
	prepare := func(cl *cluster) {
		cl.roleArgs = map[string][]string{roleGateway: {"--register-ttl", cfg.RegisterTTL.String()}}
	}
	return runProcs(ctx, p, prepare, func(ctx context.Context, cl *cluster) (ScaleResult, error) {
		fmt.Fprintf(cfg.Log, "scale: cluster up (gateways %s and %s, prefix %s)\n",
			cl.gateway(0).client, cl.gateway(1).client, cfg.Prefix)
		return runScale(ctx, cfg, cl)
	})
}

// gateway returns the i-th gateway instance.
func (c *cluster) gateway(i int) *instance {
	return c.instances[c.names(roleGateway)[i]]
}

// scaleDevice is a chat device of Scale and the gateway it starts on.
type scaleDevice struct {
	*device
	onVictim bool          // starts on the gateway that is killed
	resumes  *atomic.Int64 // catch-ups after connecting, the first included
}

// runScale drives the devices, the kill and the checks.
func runScale(ctx context.Context, cfg ScaleConfig, cl *cluster) (ScaleResult, error) {
	victim, survivor := cl.gateway(0), cl.gateway(1)
	led := newLedger()
	devs, err := openScaleDevices(ctx, cfg, victim.client, survivor.client, led)
	if err != nil {
		return ScaleResult{}, err
	}
	defer closeScaleDevices(devs)
	stranded, err := strandDevice(ctx, cfg.Prefix+"-0", victim.client)
	if err != nil {
		return ScaleResult{}, err
	}
	defer stranded.Close()

	start := time.Now()
	half := ChaosConfig{Users: cfg.Users, Messages: cfg.Messages / 2, Interval: cfg.Interval}
	failed := sendRound(ctx, half, devs, led, func() {
		_ = sleepCtx(ctx, time.Duration(half.Messages)*cfg.Interval/2)
		cl.kill(victim.name)
		fmt.Fprintf(cfg.Log, "scale: %s killed (SIGKILL) at %.1fs\n", victim.name,
			time.Since(start).Seconds())
	})
	tasks := cl.names(roleTask)
	// The registration lapses within RegisterTTL; each task reads the
	// registry every 2s (its default); the rest is slack for a busy machine.
	vctx, cancel := context.WithTimeout(ctx, cfg.RegisterTTL+15*time.Second)
	before, err := waitVanished(vctx, cl, tasks)
	cancel()
	if err != nil {
		return ScaleResult{}, err
	}
	fmt.Fprintf(cfg.Log, "scale: both tasks saw %s vanish at %.1fs\n", victim.name,
		time.Since(start).Seconds())
	rest := half
	rest.Messages = cfg.Messages - half.Messages
	failed += sendRound(ctx, rest, devs, led, nil)

	catchUp, cancel := context.WithTimeout(ctx, catchUpTimeout)
	waitFor(catchUp, led.complete)
	cancel()
	res := ScaleResult{Devices: len(devs), Failed: failed, Elapsed: time.Since(start)}
	settle(ctx)
	return checkScale(ctx, cfg, cl, scaleCheck{devs: devs, led: led, victim: victim,
		tasks: tasks, before: before}, res)
}

// sendRound has every device send cfg.Messages messages at cfg's pace and
// returns how many sends failed; during, when set, runs meanwhile on the
// caller's goroutine.
func sendRound(ctx context.Context, cfg ChaosConfig, devs []*scaleDevice, led *ledger,
	during func()) int {
	plain := make([]*device, len(devs))
	for i, d := range devs {
		plain[i] = d.device
	}
	var failed atomic.Int64
	var wg sync.WaitGroup
	for _, d := range plain {
		wg.Go(func() { failed.Add(int64(d.sendAll(ctx, cfg, plain, led))) })
	}
	if during != nil {
		during()
	}
	wg.Wait()
	return int(failed.Load())
}

// openScaleDevices registers the users and opens two sessions for each,
// device k of user u starting on gateway (u+k)%2 with the other as
// fallback, so that every user has a device on each gateway.
func openScaleDevices(ctx context.Context, cfg ScaleConfig, victim, survivor string,
	led *ledger) ([]*scaleDevice, error) {
	var devs []*scaleDevice
	for u := range cfg.Users {
		name := fmt.Sprintf("%s-%d", cfg.Prefix, u)
		id, err := register(ctx, survivor, name)
		if err != nil {
			closeScaleDevices(devs)
			return nil, err
		}
		for k := range 2 {
			onVictim := (u+k)%2 == 0
			addrs := [2]string{survivor, victim}
			if onVictim {
				addrs = [2]string{victim, survivor}
			}
			resumes := new(atomic.Int64)
			d, err := openDevice(ctx, addrs, name, k, led, resumes)
			if err != nil {
				closeScaleDevices(devs)
				return nil, err
			}
			d.user, d.id = u, id
			devs = append(devs, &scaleDevice{device: d, onVictim: onVictim, resumes: resumes})
		}
	}
	return devs, nil
}

func closeScaleDevices(devs []*scaleDevice) {
	for _, d := range devs {
		_ = d.sess.Close()
		<-d.done
	}
}

// strandedDevice is the device id of the connection that dies with the
// killed gateway and never comes back.
const strandedDevice = "stranded"

// strandDevice logs user name in on addr as a plain connection, which does
// not reconnect: its route outlives the gateway until the route TTL.
func strandDevice(ctx context.Context, name, addr string) (*client.Client, error) {
	c, err := client.Dial(ctx, addr, client.Options{})
	if err != nil {
		return nil, fmt.Errorf("scale: stranded device of %s: %w", name, err)
	}
	_, err = c.Login(ctx, client.LoginParams{Username: name, Password: password(name),
		DeviceID: strandedDevice, Platform: "bench"})
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("scale: stranded device of %s: %w", name, err)
	}
	return c, nil
}
