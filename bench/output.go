package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/resonance-im/resonance/bench/scenario"
)

// outputFlags are the flags every measuring scenario (echo, chat, push)
// shares: how to print its report, and which server process to measure.
type outputFlags struct {
	json bool
	html string
	pid  int
}

func (o *outputFlags) bind(fs *flag.FlagSet) {
	fs.BoolVar(&o.json, "json", false, "print the report as JSON instead of a table")
	fs.StringVar(&o.html, "html", "", "also write a self-contained HTML report to this file")
	fs.Func("pid", "server process id: report its CPU time (Linux /proc)", func(v string) error {
		pid, err := parsePID(v)
		o.pid = pid
		return err
	})
}

// parsePID reads a process id and checks that the process exists, so that
// a mistyped one is refused at the start instead of reporting no CPU time.
func parsePID(v string) (int, error) {
	pid, err := strconv.Atoi(v)
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("not a process id")
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid) + "/stat"); err != nil {
		return 0, fmt.Errorf("no process %d", pid)
	}
	return pid, nil
}

// finish prints rep and returns the exit status for err: 0 on success, 1
// when the scenario failed (a report that exists is printed first), 2 on
// bad usage.
func (o *outputFlags) finish(rep scenario.Report, err error, out, errOut io.Writer) int {
	if err != nil && rep.Scenario == "" {
		fmt.Fprintf(errOut, "bench: %v\n", err)
		if errors.Is(err, scenario.ErrBadConfig) {
			return 2
		}
		return 1
	}
	if o.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		writeTable(out, rep)
	}
	if o.html != "" {
		if werr := os.WriteFile(o.html, renderHTML(rep), 0o644); werr != nil {
			fmt.Fprintf(errOut, "bench: write html: %v\n", werr)
			return 1
		}
	}
	if err != nil {
		fmt.Fprintf(errOut, "bench: %v\n", err)
		return 1
	}
	return 0
}

// writeTable prints rep as aligned plain text: the parameters on one line,
// the metrics with the server CPU next to every rate, then the latencies.
func writeTable(out io.Writer, rep scenario.Report) {
	params := make([]string, 0, len(rep.Params))
	for _, p := range rep.Params {
		params = append(params, p.Name+"="+formatValue(p.Value)+p.Unit)
	}
	fmt.Fprintf(out, "%s: %s\n\n", rep.Scenario, strings.Join(params, " "))

	rows := [][]string{{"metric", "value", "unit", "server cpu", "per core"}}
	for _, m := range rep.Metrics {
		cpu, perCore := "", ""
		if m.IsRate() && rep.ServerCPU != nil {
			cpu = fmt.Sprintf("%.0f%%", 100*rep.ServerCPU.Cores)
			if rep.ServerCPU.Cores > 0 {
				perCore = formatValue(m.Value / rep.ServerCPU.Cores)
			}
		}
		rows = append(rows, []string{m.Name, formatValue(m.Value), m.Unit, cpu, perCore})
	}
	writeAligned(out, rows)

	fmt.Fprintln(out)
	rows = [][]string{{"latency", "count", "p50", "p99", "p999", "max", "mean"}}
	for _, l := range rep.Latencies {
		rows = append(rows, []string{l.Name, strconv.FormatUint(l.Count, 10), l.P50.String(),
			l.P99.String(), l.P999.String(), l.Max.String(), l.Mean.String()})
	}
	writeAligned(out, rows)

	fmt.Fprintln(out)
	switch {
	case rep.ServerCPU != nil:
		fmt.Fprintln(out, rep.ServerCPU)
	case len(rep.CPU) > 0:
		rows = [][]string{{"cpu", "phase", "% of a core"}}
		for _, c := range rep.CPU {
			rows = append(rows, []string{c.Group, c.Phase, fmt.Sprintf("%.0f", 100*c.Cores)})
		}
		writeAligned(out, rows)
	default:
		fmt.Fprintln(out, "server cpu: not measured (no --pid)")
	}
	result := "ok"
	if !rep.OK {
		result = "FAILED"
	}
	fmt.Fprintf(out, "result: %s\n", result)
}

// writeAligned prints rows as columns two spaces apart: the first column
// (names) aligned left, the others (numbers) right.
func writeAligned(out io.Writer, rows [][]string) {
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, cell := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}
	var line strings.Builder
	for _, row := range rows {
		line.Reset()
		for i, cell := range row {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell))
			if i == 0 {
				line.WriteString(cell + pad)
			} else {
				line.WriteString("  " + pad + cell)
			}
		}
		fmt.Fprintln(out, strings.TrimRight(line.String(), " "))
	}
}

// formatValue prints integers without decimals and others with one.
func formatValue(v float64) string {
	if v == float64(int64(v)) {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}
