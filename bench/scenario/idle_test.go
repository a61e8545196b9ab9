package scenario

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestReadMetrics_ReadsNamedSeries(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"+
			"process_resident_memory_bytes 2.5e+07\n"+
			"go_memstats_heap_inuse_bytes{x=\"y\"} 7\n"+
			"resonance_gateway_connections 42\n")
	}))
	defer srv.Close()
	got := readMetrics(context.Background(), srv.URL, "process_resident_memory_bytes",
		"go_memstats_heap_inuse_bytes", "resonance_gateway_connections")
	want := []float64{2.5e7, -1, 42} // a labelled series is not the bare name
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("readMetrics = %v, want %v", got, want)
		}
	}
	if got := readMetrics(context.Background(), srv.URL+"/x\x00", "a"); got[0] != -1 {
		t.Fatalf("bad URL read %v", got)
	}
}

func TestMemoryMetrics_PerConnectionSinceBaseline(t *testing.T) {
	base := memSample{rssBytes: 1 << 20, heapBytes: -1, conns: 10}
	at := memSample{rssBytes: 1<<20 + 1000*2048, heapBytes: 5 << 20, conns: 1010}
	got := memoryMetrics("end", base, at, 1000)
	want := []Metric{{Name: "gateway conns at end", Value: 1010},
		{Name: "rss at end", Value: 3024, Unit: "KiB"},
		{Name: "rss per conn at end", Value: 2, Unit: "KiB"},
		{Name: "heap at end", Value: 5120, Unit: "KiB"}} // no heap baseline: no per conn
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("memoryMetrics =\n%v, want\n%v", got, want)
	}
}

func TestIdle_RejectsBadConfig(t *testing.T) {
	for _, cfg := range []IdleConfig{{Conns: 5}, {Addr: "127.0.0.1:1"}} {
		if _, err := Idle(context.Background(), cfg); !errors.Is(err, ErrBadConfig) {
			t.Fatalf("Idle(%+v): %v, want ErrBadConfig", cfg, err)
		}
	}
}

// A --users given is taken as is, and a note says when it puts more
// password logins on one account than logic's default budget takes; only
// an unset one defaults to one user per 8 connections. Idle used to raise
// a small value silently: --users 1 with 100 connections logged in as 13
// users, and the report did not say so.
func TestIdleConfig_TakesUsersAsGiven(t *testing.T) {
	tests := []struct {
		name     string
		users    int
		want     int
		wantNote string
	}{
		{name: "unset", users: 0, want: 13},
		{name: "one", users: 1, want: 1,
			wantNote: "idle: 100 connections as 1 user is up to 100 password logins per account"},
		{name: "few", users: 12, want: 12, wantNote: "give --users 13 or more"},
		{name: "enough", users: 13, want: 13},
		{name: "more", users: 50, want: 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := IdleConfig{Addr: "127.0.0.1:1", Conns: 100,
				Users: tt.users}.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Users != tt.want {
				t.Fatalf("Users = %d, want %d", cfg.Users, tt.want)
			}
			note := loginBudgetNote("idle", cfg.Conns, cfg.Users)
			if (tt.wantNote == "") != (note == "") || !strings.Contains(note, tt.wantNote) {
				t.Fatalf("note %q, want one with %q", note, tt.wantNote)
			}
		})
	}
}

// Echo takes --users as given too; unset, it is 10, or one user per 8
// connections when that is more.
func TestEchoConfig_TakesUsersAsGiven(t *testing.T) {
	tests := []struct{ conns, users, want int }{
		{conns: 64, users: 0, want: 10},
		{conns: 1000, users: 0, want: 125},
		{conns: 1000, users: 10, want: 10},
	}
	for _, tt := range tests {
		cfg, err := EchoConfig{Addr: "127.0.0.1:1", Conns: tt.conns,
			Users: tt.users}.withDefaults()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Users != tt.want {
			t.Fatalf("%d conns, --users %d: Users = %d, want %d", tt.conns, tt.users,
				cfg.Users, tt.want)
		}
	}
}
