package scenario

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"time"
)

// The parent drives each worker with one command per line and the worker
// answers each with one event; "progress" events come in between, once a
// second. The order is warmup, ramp, close, then relogin and close again
// with a re-login, then exit.
const (
	cmdWarmup  = "warmup"  // open the warm-up share; answered "warmed"
	cmdRamp    = "ramp"    // open the rest; answered "ramped"
	cmdClose   = "close"   // end the heartbeats and close all; answered "closed"
	cmdRelogin = "relogin" // open all again with their tokens; answered "relogged"
	cmdExit    = "exit"    // close what is open and exit; not answered

	evReady    = "ready"
	evWarmed   = "warmed"
	evRamped   = "ramped"
	evClosed   = "closed"
	evRelogged = "relogged"
	evProgress = "progress"
	evError    = "error"
)

// errParentGone means a worker's commands ended before "exit": the parent
// died or gave up.
var errParentGone = errors.New("connect worker: commands ended before exit")

// workerJob is what the parent gives one worker, on its first line.
type workerJob struct {
	Index     int      `json:"index"`
	Addrs     []string `json:"addrs"`
	Share     share    `json:"share"`
	Users     int      `json:"users"`
	Prefix    string   `json:"prefix"`
	WebSocket bool     `json:"ws"`
	Parallel  int      `json:"parallel"`
	// SourceOctet and PerSource place the worker's source addresses (see
	// spreadSources).
	SourceOctet byte `json:"source_octet"`
	PerSource   int  `json:"per_source"`
}

// workerCommand is one line from the parent; Job is set on the first only.
type workerCommand struct {
	Cmd string     `json:"cmd,omitempty"`
	Job *workerJob `json:"job,omitempty"`
}

// workerEvent is one line from a worker.
type workerEvent struct {
	Event string `json:"event"`
	PID   int    `json:"pid,omitempty"`
	// Opened counts the connections logged in during the current phase
	// (progress events).
	Opened int64 `json:"opened,omitempty"`
	// Phase is the result of a ramp (ramped, relogged).
	Phase *workerPhase `json:"phase,omitempty"`
	// Dropped counts the connections that failed a heartbeat (closed).
	Dropped int    `json:"dropped,omitempty"`
	Error   string `json:"error,omitempty"`
}

// workerPhase is what one worker measured over one ramp.
type workerPhase struct {
	Conns   int        `json:"conns"`
	Refused int        `json:"refused"`
	Login   *Histogram `json:"login"`
	// Sources are the distinct local addresses the connections have, and
	// Targets the connections per gateway address: the proof that the run
	// spread.
	Sources []string       `json:"sources"`
	Targets map[string]int `json:"targets"`
}

// RunConnectWorker runs one client worker of ConnectSpread: it reads its
// job and then commands from in, one JSON object a line, opens and closes
// its connections as told and writes one JSON event a line to out. It
// returns nil after the exit command, and an error (after writing it as an
// error event) when a ramp fails or in ends first. Its connections are
// closed on every return.
func RunConnectWorker(ctx context.Context, in io.Reader, out io.Writer) error {
	cmds := json.NewDecoder(bufio.NewReader(in))
	var first workerCommand
	if err := cmds.Decode(&first); err != nil || first.Job == nil {
		return fmt.Errorf("connect worker: read job: %w", orParentGone(err))
	}
	w := &connWorker{job: *first.Job, enc: json.NewEncoder(out)}
	w.r = w.newRamp(ctx)
	defer w.r.stop()
	if err := w.send(workerEvent{Event: evReady, PID: os.Getpid()}); err != nil {
		return err
	}
	stop := make(chan struct{})
	defer close(stop)
	go w.reportProgress(stop)
	for {
		var c workerCommand
		if err := cmds.Decode(&c); err != nil {
			return fmt.Errorf("connect worker %d: %w", w.job.Index, errParentGone)
		}
		if c.Cmd == cmdExit {
			return nil
		}
		ev, err := w.do(ctx, c.Cmd)
		if err != nil {
			err = fmt.Errorf("connect worker %d: %s: %w", w.job.Index, c.Cmd, err)
			_ = w.send(workerEvent{Event: evError, Error: err.Error()})
			return err
		}
		if err := w.send(ev); err != nil {
			return err
		}
	}
}

// orParentGone turns the end of the commands (or no job in them) into
// errParentGone.
func orParentGone(err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return errParentGone
	}
	return err
}

// connWorker is the state of RunConnectWorker.
type connWorker struct {
	job workerJob
	r   *idleRamp

	mu  sync.Mutex // serializes events: replies and progress
	enc *json.Encoder
}

// newRamp prepares the worker's ramp: its share of the run's indices, every
// gateway, its own source addresses, heartbeats until closed.
func (w *connWorker) newRamp(ctx context.Context) *idleRamp {
	j := w.job
	creds := make([]credential, max(j.Users, 1))
	for i := range creds {
		name := fmt.Sprintf("%s%d", j.Prefix, i)
		creds[i] = credential{username: name, password: password(name)}
	}
	src := spreadSources{octet: j.SourceOctet, perSource: max(j.PerSource, 1)}
	keepCtx, stopKeeping := context.WithCancel(ctx)
	r := &ramp{cfg: ConnectConfig{Conns: j.Share.Count, WebSocket: j.WebSocket,
		Parallel: max(j.Parallel, 1), PerSourceIP: src.perSource, Prefix: j.Prefix},
		creds: creds, conns: make([]*benchConn, j.Share.Count),
		latencies: make([]time.Duration, j.Share.Count), base: j.Share.First, addrs: j.Addrs,
		source: func(i int) net.IP { return src.ip(j.Index, i) }, keepCtx: keepCtx}
	return &idleRamp{ramp: r, stopKeeping: stopKeeping}
}

// do runs one command and returns the event that answers it.
func (w *connWorker) do(ctx context.Context, cmd string) (workerEvent, error) {
	r, sh := w.r, w.job.Share
	switch cmd {
	case cmdWarmup:
		return workerEvent{Event: evWarmed}, r.openRange(ctx, 0, sh.Warmup)
	case cmdRamp:
		if err := r.openRange(ctx, sh.Warmup, sh.Count); err != nil {
			return workerEvent{}, err
		}
		return workerEvent{Event: evRamped, Phase: w.phase()}, nil
	case cmdClose:
		r.stopKeeping()
		r.keepers.Wait()
		r.tokens = make([]string, len(r.conns))
		for i, c := range r.conns {
			if c != nil {
				r.tokens[i] = c.token
			}
		}
		r.closeAll()
		clear(r.conns)
		return workerEvent{Event: evClosed, Dropped: int(r.dropped.Swap(0))}, nil
	case cmdRelogin:
		if r.tokens == nil {
			return workerEvent{}, fmt.Errorf("%w: relogin before close", ErrBadConfig)
		}
		// No heartbeats: the connections close right after the ramp.
		r.keepCtx = nil
		r.refused.Store(0)
		r.opened.Store(0)
		if err := r.openRange(ctx, 0, sh.Count); err != nil {
			return workerEvent{}, err
		}
		return workerEvent{Event: evRelogged, Phase: w.phase()}, nil
	}
	return workerEvent{}, fmt.Errorf("%w: unknown command %q", ErrBadConfig, cmd)
}

// phase summarizes the ramp that just ended.
func (w *connWorker) phase() *workerPhase {
	r := w.r
	p := &workerPhase{Conns: int(r.opened.Load()), Refused: int(r.refused.Load()),
		Login: &Histogram{}, Targets: make(map[string]int)}
	for _, d := range r.latencies {
		p.Login.Record(d)
	}
	seen := make(map[string]bool)
	for _, c := range r.conns {
		if c == nil {
			continue
		}
		if host, _, err := net.SplitHostPort(c.conn.LocalAddr().String()); err == nil &&
			!seen[host] {
			seen[host] = true
			p.Sources = append(p.Sources, host)
		}
		p.Targets[c.conn.RemoteAddr().String()]++
	}
	slices.Sort(p.Sources)
	return p
}

// reportProgress sends the connections opened in the current phase once a
// second while they change, until stop is closed.
func (w *connWorker) reportProgress(stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := int64(-1)
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if n := w.r.opened.Load(); n != last {
			last = n
			_ = w.send(workerEvent{Event: evProgress, Opened: n})
		}
	}
}

func (w *connWorker) send(ev workerEvent) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.enc.Encode(ev); err != nil {
		return fmt.Errorf("connect worker %d: write event: %w", w.job.Index, err)
	}
	return nil
}
