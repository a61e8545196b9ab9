package app

import "cmp"

// The Go runtime runs Go code on GOMAXPROCS Ps, by default one per usable
// CPU. Two of its rules cost Resonance latency when Ps are few: a thread
// blocked in a system call keeps its P until the runtime's monitor takes it
// back, and while every P has work queued the network is polled only by
// that monitor, every 10 ms at worst. Resonance has threads that block by
// design: each gnet event loop in epoll_wait, Kitex's netpoll poller too,
// SQLite's commits in fsync. Measured on 2 CPUs with the whole system in
// one process, the default of 2 Ps alternated for seconds at a time between
// a fast and a slow mode; in the slow one, task's push calls took 10 ms of
// which the gateway spent under 1 ms, and they carried about 10 ms of
// events each. With 8 Ps, bench chat at 5,000 msgs/s went from an end to
// end p99 of 68-82 ms to 18-27 ms (three alternating pairs; 44-48 against
// 25-26 in three before), and bench group at 3,100 msgs/s from 24-55 ms to
// 17-19 ms, for about a fifth more server CPU. So a process runs more Ps
// than CPUs: one per CPU, one per event loop, and blockingThreads.

// blockingThreads is how many Ps a process adds, besides one per gateway
// event loop, for the other threads that block in system calls while
// holding one: netpoll's poller, the SQLite writer's fsync, NATS's file
// store.
const blockingThreads = 4

// Procs returns the GOMAXPROCS of a process of c on a machine where the
// runtime would use cpus Ps (the usable CPUs, a container's limit
// included): c.MaxProcs when set; otherwise cpus, plus one per gateway event
// loop when the process runs the gateway (c.Gateway.NumEventLoop, or one
// per CPU), plus blockingThreads. The caller leaves GOMAXPROCS alone when
// the environment sets it.
func (c *Config) Procs(cpus int) int {
	if c.MaxProcs > 0 {
		return c.MaxProcs
	}
	n := cpus + blockingThreads
	if c.Role.Has(RoleGateway) {
		n += cmp.Or(c.Gateway.NumEventLoop, cpus)
	}
	return n
}
