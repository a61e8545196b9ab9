package scenario

import (
	"fmt"
	"io"
	"os"

	"strconv"
	"strings"
	"time"
)

// Report is what the echo, chat and push scenarios measured, in a form the
// bench tool prints as a table, as JSON or as an HTML page.
type Report struct {
	Scenario string   `json:"scenario"`
	Params   []Metric `json:"params"`
	Metrics  []Metric `json:"metrics"`
	// Latencies are the run's latency distributions, with their histograms
	// and per-second windows for the HTML page (not in JSON).
	Latencies []Latency `json:"latency"`
	// ServerCPU is nil when no server pid was given.
	ServerCPU *CPUUsage `json:"server_cpu,omitempty"`
	// CPU is the CPU of groups of processes over phases, for scenarios that
	// measure several processes (connect).
	CPU []PhaseCPU `json:"cpu,omitempty"`
	// OK is false when a check failed (lost, duplicated, reordered, ...).
	OK bool `json:"ok"`
}

// Metric is one named value; Unit "/s" marks a rate.
type Metric struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit,omitempty"`
}

// IsRate reports whether m is a per-second rate.
func (m Metric) IsRate() bool { return strings.HasSuffix(m.Unit, "/s") }

// Latency summarizes one distribution; durations are in microseconds in
// JSON.
type Latency struct {
	Name      string     `json:"name"`
	Count     uint64     `json:"count"`
	P50       Micros     `json:"p50_us"`
	P99       Micros     `json:"p99_us"`
	P999      Micros     `json:"p999_us"`
	Max       Micros     `json:"max_us"`
	Mean      Micros     `json:"mean_us"`
	Histogram *Histogram `json:"-"`
	Windows   []Window   `json:"over_time,omitempty"`
}

// Micros is a duration that marshals as microseconds.
type Micros time.Duration

// MarshalJSON writes the duration in microseconds with 1 ns resolution.
func (m Micros) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(m)/1e3, 'f', 3, 64), nil
}

func (m Micros) String() string { return FormatDuration(time.Duration(m)) }

// FormatDuration prints d with 3 significant digits in the unit that fits.
func FormatDuration(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d)
	case d < time.Millisecond:
		return fmt.Sprintf("%.3gµs", float64(d)/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.3gms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.3gs", d.Seconds())
}

// latencyOf finishes r into a Latency named name.
func latencyOf(name string, r *Recorder) Latency {
	h, windows := r.Finish()
	l := latencyOfHistogram(name, h)
	l.Windows = windows
	return l
}

// latencyOfHistogram summarizes h as a Latency named name, without windows.
func latencyOfHistogram(name string, h *Histogram) Latency {
	return Latency{Name: name, Count: h.Count(), P50: Micros(h.Quantile(0.5)),
		P99: Micros(h.Quantile(0.99)), P999: Micros(h.Quantile(0.999)), Max: Micros(h.Max()),
		Mean: Micros(h.Mean()), Histogram: h}
}

// perSecond returns n per second over d, 0 for no time.
func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// progress writes one status line every second to w until stop is
// closed, overwriting itself with \r on a terminal and one line each
// otherwise (a log); line returns the text. A nil w prints nothing.
func progress(w io.Writer, stop <-chan struct{}, line func() string) func() {
	done := make(chan struct{})
	if w == nil {
		close(done)
		return func() {}
	}
	term := isTerminal(w)
	tick, last := "\r%s ", "\r%s\n"
	if !term {
		tick, last = "%s\n", "%s\n"
	}
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		printed := ""
		for {
			select {
			case <-stop:
				// On a terminal the last line ends the one being redrawn;
				// elsewhere it would repeat an unchanged tick.
				if l := line(); l != printed || term {
					fmt.Fprintf(w, last, l)
				}
				return
			case <-t.C:
				printed = line()
				fmt.Fprintf(w, tick, printed)
			}
		}
	}()
	return func() { <-done }
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
