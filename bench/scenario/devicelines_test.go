package scenario

import (
	"slices"
	"testing"
)

func TestDeviceLines_EveryDeviceWithItsVerdict(t *testing.T) {
	devices := []DeviceTally{
		{Device: "u1/d1", Expected: 3, Delivered: 3},
		{Device: "u2/d1", Expected: 3, Delivered: 2, Lost: 1},
	}
	got := deviceLines("chaos", devices)
	want := []string{
		"chaos: ok u1/d1: expected=3 delivered=3 lost=0 duplicated=0 reordered=0",
		"chaos: FAIL u2/d1: expected=3 delivered=2 lost=1 duplicated=0 reordered=0",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("lines:\n%q\nwant:\n%q", got, want)
	}
}
