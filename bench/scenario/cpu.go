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
