package scenario

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTick is the unit of utime and stime in /proc/<pid>/stat: USER_HZ,
// which Linux fixes at 100 for user space on every architecture we run on.
const clockTick = 10 * time.Millisecond

// CPUUsage is the CPU time a server process spent during a measured phase.
type CPUUsage struct {
	PID     int     `json:"pid"`
	Seconds float64 `json:"cpu_seconds"`  // user + system
	Wall    float64 `json:"wall_seconds"` // length of the phase
	// Cores is Seconds/Wall: 1.0 is one core busy the whole phase.
	Cores float64 `json:"cores"`
}

func (u CPUUsage) String() string {
	return fmt.Sprintf("server cpu: %.2fs over %.2fs = %.0f%% of one core (pid %d)",
		u.Seconds, u.Wall, 100*u.Cores, u.PID)
}

// cpuMeter samples a process's CPU time at the start and end of a phase.
// The zero value (no pid) measures nothing.
type cpuMeter struct {
	pid   int
	cpu   time.Duration
	start time.Time
	err   error
}

// startCPU samples pid now; pid 0 disables the meter.
func startCPU(pid int) *cpuMeter {
	m := &cpuMeter{pid: pid, start: time.Now()}
	if pid > 0 {
		m.cpu, m.err = processCPU(pid)
	}
	return m
}

// stop returns the usage since start, or nil without a pid or on error.
func (m *cpuMeter) stop() *CPUUsage {
	if m.pid <= 0 || m.err != nil {
		return nil
	}
	cpu, err := processCPU(m.pid)
	if err != nil {
		return nil
	}
	wall := time.Since(m.start)
	return &CPUUsage{PID: m.pid, Seconds: (cpu - m.cpu).Seconds(), Wall: wall.Seconds(),
		Cores: (cpu - m.cpu).Seconds() / wall.Seconds()}
}

// processCPU returns utime+stime of pid.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("cpu of pid %d: %w", pid, err)
	}
	return parseStatCPU(b)
}

// parseStatCPU reads fields 14 and 15 (utime, stime) of a stat line. The
// command name (field 2) is in parentheses and may hold spaces and
// parentheses itself, so fields are counted after its last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return 0, fmt.Errorf("stat line without a command: %q", b)
	}
	fields := bytes.Fields(b[end+1:]) // fields[0] is field 3, the state
	if len(fields) < 13 {
		return 0, fmt.Errorf("stat line with %d fields", len(fields)+2)
	}
	utime, err1 := strconv.ParseInt(string(fields[11]), 10, 64)
	stime, err2 := strconv.ParseInt(string(fields[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("stat utime %q stime %q", fields[11], fields[12])
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// cpuProbe is a process whose CPU time a phase measures, and the group its
// time is summed into (gateways, logic, bench clients, ...).
type cpuProbe struct {
	group string
	pid   int
}

// PhaseCPU is the CPU time a group of processes spent over a phase.
type PhaseCPU struct {
	Phase string `json:"phase"`
	Group string `json:"group"`
	// Cores is the CPU seconds of the group over the phase's wall seconds:
	// 1.0 is one core busy the whole phase.
	Cores float64 `json:"cores"`
}

// cpuMeters measure a set of processes over one phase.
type cpuMeters struct {
	probes []cpuProbe
	meters []*cpuMeter
}

// startCPUs samples every probe now.
func startCPUs(probes []cpuProbe) cpuMeters {
	m := cpuMeters{probes: probes}
	for _, p := range probes {
		m.meters = append(m.meters, startCPU(p.pid))
	}
	return m
}

// stop returns each group's usage since startCPUs, in the order the groups
// first appear among the probes; a group none of whose processes could be
// read is left out.
func (m cpuMeters) stop(phase string) []PhaseCPU {
	var out []PhaseCPU
	index := make(map[string]int)
	for i, meter := range m.meters {
		u := meter.stop()
		if u == nil {
			continue
		}
		g := m.probes[i].group
		j, ok := index[g]
		if !ok {
			j = len(out)
			index[g] = j
			out = append(out, PhaseCPU{Phase: phase, Group: g})
		}
		out[j].Cores += u.Cores
	}
	return out
}

// readRSS returns VmRSS of pid in KiB, or -1.
func readRSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return -1
	}
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			rest = bytes.TrimSuffix(bytes.TrimSpace(rest), []byte(" kB"))
			if n, err := strconv.ParseInt(string(rest), 10, 64); err == nil {
				return n
			}
		}
	}
	return -1
}
