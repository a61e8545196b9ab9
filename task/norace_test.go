//go:build !race

package task

// raceEnabled: see race_test.go.
const raceEnabled = false
