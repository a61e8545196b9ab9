package scenario

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"
)

// procRun is what the multi-process scenarios (chaos, scale) share: a
// scratch directory for the binary and the processes' logs, kept only when
// the run fails, and a cluster stopped and cleaned up on every return.
type procRun struct {
	name     string // "chaos", "scale": prefixes progress lines and the directory
	bin      string // resonance binary; empty builds one into the directory
	prefix   string
	services ChaosServices
	timeout  time.Duration
	log      io.Writer
	topology topology // instances per role
}

// runProcs gives body a started cluster (roles started in order logic, task,
// gateway, one instance at a time: two logic instances migrating one schema
// at once race) within the run's timeout.
func runProcs[R any](ctx context.Context, p procRun, prepare func(*cluster),
	body func(context.Context, *cluster) (R, error)) (R, error) {
	var zero R
	dir, err := os.MkdirTemp("", "resonance-"+p.name+"-")
	if err != nil {
		return zero, fmt.Errorf("%s: %w", p.name, err)
	}
	res, err := runProcsIn(ctx, p, dir, prepare, body)
	if err != nil {
		fmt.Fprintf(p.log, "%s: logs kept in %s\n", p.name, dir)
	} else {
		_ = os.RemoveAll(dir)
	}
	return res, err
}

func runProcsIn[R any](ctx context.Context, p procRun, dir string, prepare func(*cluster),
	body func(context.Context, *cluster) (R, error)) (R, error) {
	var zero R
	if p.bin == "" {
		bctx, cancel := context.WithTimeout(ctx, buildTimeout)
		bin, err := buildBinary(bctx, dir)
		cancel()
		if err != nil {
			return zero, err
		}
		p.bin = bin
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	cl, err := newClusterOf(p.bin, dir, p.prefix, p.services, p.topology)
	if err != nil {
		return zero, err
	}
	if prepare != nil {
		prepare(cl)
	}
	defer func() {
		cl.stop()
		if p.topology.embedded() {
			return // its data directory goes with dir
		}
		if err := cleanup(p.services, p.prefix); err != nil {
			fmt.Fprintf(p.log, "%s: cleanup: %v\n", p.name, err)
		}
	}()
	for _, role := range []string{roleLogic, roleTask, roleGateway, roleAll} {
		for _, name := range cl.names(role) {
			if err := cl.start(ctx, name); err != nil {
				return zero, err
			}
		}
	}
	return body(ctx, cl)
}

// deviceFailures lists the devices of a run that broke the delivery
// promise, one line each, prefixed with the scenario's name.
func deviceFailures(name string, devices []DeviceTally) []string {
	var lines []string
	for _, d := range devices {
		if !d.OK() {
			lines = append(lines, name+": FAIL "+d.String())
		}
	}
	return lines
}

// deviceLines is one line per device of a run, ok or FAIL, prefixed with
// the scenario's name: what each device received once it had resumed.
func deviceLines(name string, devices []DeviceTally) []string {
	lines := make([]string, 0, len(devices))
	for _, d := range devices {
		verdict := "ok"
		if !d.OK() {
			verdict = "FAIL"
		}
		lines = append(lines, name+": "+verdict+" "+d.String())
	}
	return lines
}
