package client_test

import (
	"testing"
	"time"

	"github.com/resonance-im/resonance/client"
	"github.com/resonance-im/resonance/kitex_gen/common"
	"github.com/resonance-im/resonance/kitex_gen/protocol"
)

// A server older than LoginResp.limits reports none: every limit is its
// default, and Reported says so; a server that reports some leaves the
// rest at their defaults.
func TestLimitsOf_FallsBackToTheDefaults(t *testing.T) {
	if got := client.LimitsOf(&protocol.LoginResp{}); got != client.DefaultLimits() {
		t.Fatalf("no limits: %+v, want the defaults %+v", got, client.DefaultLimits())
	}
	recall := int64(90_000)
	got := client.LimitsOf(&protocol.LoginResp{
		Limits: &common.ServerLimits{RecallWindowMs: &recall}})
	want := client.DefaultLimits()
	want.RecallWindow, want.Reported = 90*time.Second, true
	if got != want {
		t.Fatalf("recall window only: %+v, want %+v", got, want)
	}
}

// A reported pin limit is taken; one reported as zero keeps the default.
func TestLimitsOf_MaxPins(t *testing.T) {
	for _, tc := range []struct {
		name string
		sent int32
		want int
	}{{name: "reported", sent: 7, want: 7}, {name: "zero", sent: 0, want: client.DefaultMaxPins}} {
		got := client.LimitsOf(&protocol.LoginResp{Limits: &common.ServerLimits{MaxPins: &tc.sent}})
		if got.MaxPins != tc.want {
			t.Errorf("%s: MaxPins %d, want %d", tc.name, got.MaxPins, tc.want)
		}
	}
}

// A window's last millisecond is still in it, as the server judges.
func TestLimits_WindowsEndAfterTheirLastInstant(t *testing.T) {
	l := client.DefaultLimits()
	m := &common.Message{SendTimeMs: 1_000_000}
	sent := time.UnixMilli(m.SendTimeMs)
	for _, tc := range []struct {
		name string
		open func(*common.Message, time.Time) bool
		at   time.Time
		want bool
	}{
		{name: "recall, last instant", open: l.RecallOpen, at: sent.Add(l.RecallWindow), want: true},
		{name: "recall, after", open: l.RecallOpen, at: sent.Add(l.RecallWindow + 1), want: false},
		{name: "edit, last instant", open: l.EditOpen, at: sent.Add(l.EditWindow), want: true},
		{name: "edit, after", open: l.EditOpen, at: sent.Add(l.EditWindow + 1), want: false},
	} {
		if got := tc.open(m, tc.at); got != tc.want {
			t.Errorf("%s: open = %v, want %v", tc.name, got, tc.want)
		}
	}
}
