package scenario

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resonance-im/resonance/internal/route"
)

// The task series Scale reads (task/metrics.go).
const (
	metricVanished   = `resonance_task_registry_gateways{state="vanished"}`
	metricPushErrors = `resonance_task_push_seconds_count{outcome="error"}`
	metricSkipped    = `resonance_task_push_skipped_total`
)

// taskCounters are the push outcomes summed over the task instances.
type taskCounters struct {
	errors, skipped float64
}

// scaleCheck is what checkScale looks at.
type scaleCheck struct {
	devs   []*scaleDevice
	led    *ledger
	victim *instance
	tasks  []string     // task instance names
	before taskCounters // when both tasks had seen the victim vanish
}

// checkScale fills res from the ledger, the route table and the tasks'
// metrics, and returns an error wrapping ErrCheckFailed when it is not OK.
func checkScale(ctx context.Context, cfg ScaleConfig, cl *cluster, sc scaleCheck,
	res ScaleResult) (ScaleResult, error) {
	res.PerDevice, res.Acked = sc.led.tally()
	for _, d := range res.PerDevice {
		res.Delivered += d.Delivered
		res.Lost += d.Lost
		res.Duplicated += d.Duplicated
		res.Reordered += d.Reordered
	}
	for _, d := range sc.devs {
		// One catch-up at the first login, one after the move.
		if d.onVictim && d.resumes.Load() >= 2 {
			res.Moved++
		}
	}
	stale, err := staleRoutes(ctx, cfg, sc.devs, sc.victim.listen)
	if err != nil {
		return res, err
	}
	res.StaleRoutes = stale
	after, err := sumCounters(ctx, cl, sc.tasks)
	if err != nil {
		return res, err
	}
	res.DeadPushErrors = int(after.errors - sc.before.errors)
	res.Skipped = int(after.skipped - sc.before.skipped)
	if !res.OK() {
		return res, fmt.Errorf("%w: %d failed sends, %d lost, %d duplicated, %d reordered, "+
			"%d of %d moved, %d stale routes, %d push errors on the vanished gateway, "+
			"%d skipped", ErrCheckFailed, res.Failed, res.Lost, res.Duplicated, res.Reordered,
			res.Moved, res.Devices/2, res.StaleRoutes, res.DeadPushErrors, res.Skipped)
	}
	return res, nil
}

// staleRoutes counts the routes of the chat devices (not the stranded one)
// that still name the gateway at push address dead.
func staleRoutes(ctx context.Context, cfg ScaleConfig, devs []*scaleDevice,
	dead string) (int, error) {
	rdb := redis.NewClient(&redis.Options{Addr: cfg.Services.RedisAddr})
	defer rdb.Close()
	users := make([]int64, 0, len(devs))
	for _, d := range devs {
		users = append(users, d.id)
	}
	routes, err := route.NewRedis(rdb, cfg.Prefix+":", 0).Lookup(ctx, users)
	if err != nil {
		return 0, fmt.Errorf("scale: read routes: %w", err)
	}
	stale := 0
	for _, r := range routes {
		if r.Gateway == dead && r.DeviceID != strandedDevice {
			stale++
		}
	}
	return stale, nil
}

// waitVanished polls the tasks' metrics until each reports a vanished
// gateway, and returns their push counters at that moment.
func waitVanished(ctx context.Context, cl *cluster, tasks []string) (taskCounters, error) {
	for {
		all := true
		for _, name := range tasks {
			m, err := scrape(ctx, cl.instances[name].http)
			if err != nil {
				return taskCounters{}, err
			}
			all = all && m[metricVanished] >= 1
		}
		if all {
			return sumCounters(ctx, cl, tasks)
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return taskCounters{}, fmt.Errorf("scale: waiting for the tasks to see the "+
				"killed gateway vanish: %w", err)
		}
	}
}

// sumCounters adds up the push counters of the tasks.
func sumCounters(ctx context.Context, cl *cluster, tasks []string) (taskCounters, error) {
	var sum taskCounters
	for _, name := range tasks {
		m, err := scrape(ctx, cl.instances[name].http)
		if err != nil {
			return sum, err
		}
		sum.errors += m[metricPushErrors]
		sum.skipped += m[metricSkipped]
	}
	return sum, nil
}

// scrape reads the Prometheus text at addr into series (name with labels,
// as written) and values.
func scrape(ctx context.Context, addr string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, fmt.Errorf("scale: metrics of %s: %w", addr, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scale: metrics of %s: %w", addr, err)
	}
	defer resp.Body.Close()
	out := make(map[string]float64)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		if i < 0 || strings.HasPrefix(line, "#") {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scale: metrics of %s: %w", addr, err)
	}
	return out, nil
}
