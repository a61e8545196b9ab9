//go:build race

package task

// raceEnabled is true under the race detector, which slows NATS and task
// many times over: a lease write then takes up to half a second on a busy
// machine, so tests that must not lose a lease give it longer.
const raceEnabled = true
