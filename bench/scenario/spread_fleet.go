package scenario

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// evExited is the pseudo event of a worker that exited cleanly.
const evExited = "exited"

// stopGrace is how long stopping a fleet waits for a worker to exit by
// itself (its commands closed) before killing it.
const stopGrace = 5 * time.Second

// fleet is the parent's side of a run's workers: it sends every worker the
// same command and collects their answers.
type fleet struct {
	workers []*workerProc
	events  chan fleetEvent
	quit    chan struct{} // closed by stop: readers stop forwarding
}

// workerProc is one worker, a child process or (without a command) a
// goroutine speaking the same lines through pipes.
type workerProc struct {
	index  int
	pid    int
	cmds   io.WriteCloser
	enc    *json.Encoder // on cmds
	opened atomic.Int64  // from its progress events
	stderr *tailWriter   // nil in process
	kill   func()
	done   chan struct{} // closed once it has exited and its output is read
}

// fleetEvent is an event of worker, or its end: ended with the exit error.
type fleetEvent struct {
	worker int
	ev     workerEvent
	ended  bool
	err    error
}

// startFleet starts one worker per share of plan, hands each its job and
// waits until all are ready. command starts a worker process; nil runs the
// workers in this process.
func startFleet(ctx context.Context, command func() *exec.Cmd,
	jobs []workerJob) (*fleet, error) {
	f := &fleet{events: make(chan fleetEvent, 4*len(jobs)), quit: make(chan struct{})}
	for _, job := range jobs {
		w, err := f.start(ctx, command, job.Index)
		if err == nil {
			err = w.send(workerCommand{Job: &job})
		}
		if err != nil {
			f.stop()
			return nil, fmt.Errorf("%w: start worker %d: %w", errWorkerFailed, job.Index, err)
		}
	}
	if _, _, err := f.step(ctx, "", evReady); err != nil {
		f.stop()
		return nil, err
	}
	return f, nil
}

// start starts worker index and the goroutine that reads its events.
func (f *fleet) start(ctx context.Context, command func() *exec.Cmd,
	index int) (*workerProc, error) {
	w := &workerProc{index: index, done: make(chan struct{})}
	f.workers = append(f.workers, w)
	if command == nil {
		return w, f.startInProcess(ctx, w)
	}
	cmd := command()
	cmd.SysProcAttr = childAttr() // the worker dies with the bench
	w.stderr = &tailWriter{max: 4 << 10}
	cmd.Stderr = w.stderr
	cmds, err := cmd.StdinPipe()
	if err != nil {
		close(w.done)
		return w, err
	}
	events, err := cmd.StdoutPipe()
	if err != nil {
		close(w.done)
		return w, err
	}
	if err := cmd.Start(); err != nil {
		close(w.done)
		return w, err
	}
	w.pid, w.cmds, w.enc = cmd.Process.Pid, cmds, json.NewEncoder(cmds)
	w.kill = func() { _ = cmd.Process.Kill() }
	go f.read(w, events, cmd.Wait)
	return w, nil
}

// startInProcess runs worker w as a goroutine of RunConnectWorker.
func (f *fleet) startInProcess(ctx context.Context, w *workerProc) error {
	cmdR, cmdW := io.Pipe()
	evR, evW := io.Pipe()
	ctx, cancel := context.WithCancel(ctx)
	exit := make(chan error, 1)
	go func() {
		err := RunConnectWorker(ctx, cmdR, evW)
		_ = evW.Close()
		_ = cmdR.Close() // the parent's next command fails instead of blocking
		exit <- err
	}()
	w.pid, w.cmds, w.enc, w.kill = os.Getpid(), cmdW, json.NewEncoder(cmdW), cancel
	go f.read(w, evR, func() error { cancel(); return <-exit })
	return nil
}

// read forwards w's events until its output ends, then its exit.
func (f *fleet) read(w *workerProc, events io.Reader, wait func() error) {
	defer close(w.done)
	sc := bufio.NewScanner(events)
	sc.Buffer(make([]byte, 64<<10), 16<<20) // a histogram line can be long
	for sc.Scan() {
		var ev workerEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			ev = workerEvent{Event: evError, Error: fmt.Sprintf("unreadable event %.200q: %v",
				sc.Bytes(), err)}
		}
		if ev.Event == evProgress {
			w.opened.Store(ev.Opened)
			continue
		}
		f.forward(fleetEvent{worker: w.index, ev: ev})
	}
	f.forward(fleetEvent{worker: w.index, ended: true, err: wait()})
}

func (f *fleet) forward(e fleetEvent) {
	select {
	case f.events <- e:
	case <-f.quit:
	}
}

// step sends cmd (none when empty) to every worker and waits for each to
// answer want; it returns the answers by worker and the time from sending
// to the last answer. A worker that fails, answers out of turn or exits
// fails the step.
func (f *fleet) step(ctx context.Context, cmd, want string) ([]workerEvent, time.Duration,
	error) {
	start := time.Now()
	if cmd != "" {
		for _, w := range f.workers {
			if err := w.send(workerCommand{Cmd: cmd}); err != nil {
				return nil, 0, w.failure(fmt.Errorf("send %s: %w", cmd, err))
			}
		}
	}
	got := make([]workerEvent, len(f.workers))
	have := make([]bool, len(f.workers))
	for n := 0; n < len(f.workers); n++ {
		var e fleetEvent
		select {
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case e = <-f.events:
		}
		w := f.workers[e.worker]
		switch {
		case e.ended && want == evExited && e.err == nil && !have[e.worker]:
			got[e.worker] = workerEvent{Event: evExited}
		case e.ended:
			return nil, 0, w.failure(cmpOrErr(e.err, errors.New("exited before it was done")))
		case e.ev.Event == evError:
			return nil, 0, w.failure(errors.New(e.ev.Error))
		case e.ev.Event != want || have[e.worker]:
			return nil, 0, w.failure(fmt.Errorf("answered %q, want %q", e.ev.Event, want))
		default:
			got[e.worker] = e.ev
		}
		have[e.worker] = true
	}
	return got, time.Since(start), nil
}

// opened sums the connections the workers logged in during the current
// phase, as of their last progress events.
func (f *fleet) opened() int64 {
	var n int64
	for _, w := range f.workers {
		n += w.opened.Load()
	}
	return n
}

// resetOpened zeroes the progress counts at the start of a phase.
func (f *fleet) resetOpened() {
	for _, w := range f.workers {
		w.opened.Store(0)
	}
}

// stop closes every worker's commands, which makes it close its
// connections and exit, and kills those still running after stopGrace. It
// returns once every worker has exited.
func (f *fleet) stop() {
	close(f.quit)
	for _, w := range f.workers {
		if w.cmds != nil {
			_ = w.cmds.Close()
		}
	}
	deadline := time.Now().Add(stopGrace)
	for _, w := range f.workers {
		select {
		case <-w.done:
		case <-time.After(time.Until(deadline)):
			w.kill()
			<-w.done
		}
	}
}

func (w *workerProc) send(c workerCommand) error {
	return w.enc.Encode(c)
}

// failure wraps err as the failure of worker w, with the end of its
// standard error when it has one.
func (w *workerProc) failure(err error) error {
	tail := ""
	if w.stderr != nil {
		if t := strings.TrimSpace(w.stderr.String()); t != "" {
			tail = "\n  " + strings.ReplaceAll(t, "\n", "\n  ")
		}
	}
	return fmt.Errorf("%w: worker %d (pid %d): %v%s", errWorkerFailed, w.index, w.pid, err, tail)
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	max int

	mu  sync.Mutex
	buf []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = t.buf[over:]
		if i := bytes.IndexByte(t.buf, '\n'); i >= 0 {
			t.buf = t.buf[i+1:] // start at a whole line
		}
	}
	return len(p), nil
}

func (t *tailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
