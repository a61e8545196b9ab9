package scenario

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
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
