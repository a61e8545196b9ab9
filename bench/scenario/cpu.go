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

// CPUUsage is the CPU time a server process spent during a measured phase,
// with what the rest of the machine did meanwhile: on a shared machine a
// run whose other processes (or the hypervisor's steal) took cores is not
// comparable with a quiet one.
type CPUUsage struct {
	PID     int     `json:"pid"`
	Seconds float64 `json:"cpu_seconds"`  // user + system
	Wall    float64 `json:"wall_seconds"` // length of the phase
	// Cores is Seconds/Wall: 1.0 is one core busy the whole phase.
	Cores float64 `json:"cores"`
	// Bench is the cores this bench process took over the phase (its
	// worker processes, if any, count among the others).
	Bench float64 `json:"bench_cores"`
	// Machine is the cores busy machine-wide (user, system and interrupt
	// time of every process and the kernel), CPUs how many there are, and
	// Steal the cores the hypervisor gave to other machines. Zero when
	// /proc/stat cannot be read.
	Machine float64 `json:"machine_cores"`
	CPUs    int     `json:"cpus"`
	Steal   float64 `json:"steal_cores"`
}

// Others is the cores busy on the machine beyond the server and this bench:
// other processes, and the kernel's work for no process.
func (u CPUUsage) Others() float64 {
	bench := u.Bench
	if u.PID == os.Getpid() {
		bench = 0 // the server runs in this process: counted once
	}
	return max(u.Machine-u.Cores-bench, 0)
}

func (u CPUUsage) String() string {
	s := fmt.Sprintf("server cpu: %.2fs over %.2fs = %.0f%% of one core (pid %d)",
		u.Seconds, u.Wall, 100*u.Cores, u.PID)
	if u.CPUs == 0 {
		return s
	}
	s += fmt.Sprintf("; this bench %.0f%%; machine %.0f%% of %d%% busy, other processes %.0f%%",
		100*u.Bench, 100*u.Machine, 100*u.CPUs, 100*u.Others())
	if u.Steal >= 0.05 {
		s += fmt.Sprintf(", stolen by the hypervisor %.0f%%", 100*u.Steal)
	}
	return s
}

// cpuMeter samples a process's CPU time, this process's and the machine's
// at the start and end of a phase. The zero value (no pid) measures
// nothing.
type cpuMeter struct {
	pid     int
	cpu     time.Duration
	self    time.Duration
	machine machineCPU
	start   time.Time
	err     error
}

// startCPU samples pid now; pid 0 disables the meter.
func startCPU(pid int) *cpuMeter {
	m := &cpuMeter{pid: pid, start: time.Now()}
	if pid > 0 {
		m.cpu, m.err = processCPU(pid)
		m.self, _ = processCPU(os.Getpid())
		m.machine, _ = readMachineCPU()
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
	u := &CPUUsage{PID: m.pid, Seconds: (cpu - m.cpu).Seconds(), Wall: wall.Seconds(),
		Cores: (cpu - m.cpu).Seconds() / wall.Seconds()}
	if self, err := processCPU(os.Getpid()); err == nil && m.self > 0 {
		u.Bench = (self - m.self).Seconds() / wall.Seconds()
	}
	if now, err := readMachineCPU(); err == nil && m.machine.cpus > 0 {
		idle := (now.idle - m.machine.idle).Seconds() / wall.Seconds()
		u.Steal = (now.steal - m.machine.steal).Seconds() / wall.Seconds()
		u.Machine = max(float64(now.cpus)-idle-u.Steal, 0)
		u.CPUs = now.cpus
	}
	return u
}

// machineCPU is the idle and stolen time of the whole machine since boot,
// summed over its CPUs (/proc/stat). Busy time is what is not idle: the
// kernel measures idle time exactly, where it counts busy time by sampling
// at its ticks, which on a tickless machine lightly loaded reads far less
// than its processes' own times add up to.
type machineCPU struct {
	idle, steal time.Duration // idle counts iowait too
	cpus        int
}

func readMachineCPU() (machineCPU, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineCPU{}, fmt.Errorf("machine cpu: %w", err)
	}
	return parseProcStat(b)
}

// parseProcStat reads the summary line of /proc/stat ("cpu  user nice
// system idle iowait irq softirq steal ...", in clock ticks) and counts the
// per-CPU lines.
func parseProcStat(b []byte) (machineCPU, error) {
	var m machineCPU
	for line := range bytes.Lines(b) {
		fields := bytes.Fields(line)
		if len(fields) == 0 || !bytes.HasPrefix(fields[0], []byte("cpu")) {
			continue
		}
		if len(fields[0]) > 3 {
			m.cpus++
			continue
		}
		if len(fields) < 9 {
			return machineCPU{}, fmt.Errorf("/proc/stat cpu line with %d fields", len(fields))
		}
		var ticks [8]int64
		for i := range ticks {
			v, err := strconv.ParseInt(string(fields[1+i]), 10, 64)
			if err != nil {
				return machineCPU{}, fmt.Errorf("/proc/stat cpu field %d: %q", 1+i, fields[1+i])
			}
			ticks[i] = v
		}
		m.idle = time.Duration(ticks[3]+ticks[4]) * clockTick
		m.steal = time.Duration(ticks[7]) * clockTick
	}
	if m.cpus == 0 {
		return machineCPU{}, fmt.Errorf("/proc/stat without cpu lines")
	}
	return m, nil
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
// first appear among the probes, then the whole machine's busy cores and
// what of them no group took ("other"); a group none of whose processes
// could be read is left out.
func (m cpuMeters) stop(phase string) []PhaseCPU {
	var out []PhaseCPU
	index := make(map[string]int)
	machine, groups := -1.0, 0.0
	for i, meter := range m.meters {
		u := meter.stop()
		if u == nil {
			continue
		}
		if machine < 0 && u.CPUs > 0 {
			machine = u.Machine
		}
		groups += u.Cores
		g := m.probes[i].group
		j, ok := index[g]
		if !ok {
			j = len(out)
			index[g] = j
			out = append(out, PhaseCPU{Phase: phase, Group: g})
		}
		out[j].Cores += u.Cores
	}
	if machine >= 0 {
		out = append(out, PhaseCPU{Phase: phase, Group: "whole machine", Cores: machine},
			PhaseCPU{Phase: phase, Group: "other", Cores: max(machine-groups, 0)})
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
