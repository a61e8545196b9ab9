package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/resonance-im/resonance/bench/scenario"
)

// sampleReport is a report as a scenario would return it, with two seconds
// of latency windows.
func sampleReport() scenario.Report {
	start := time.Now()
	rec := scenario.NewRecorder(start)
	for i := range 1000 {
		rec.Record(start.Add(time.Duration(i)*2*time.Millisecond),
			time.Duration(100+i)*time.Microsecond)
	}
	h, windows := rec.Finish()
	return scenario.Report{Scenario: "echo", OK: true,
		Params:  []scenario.Metric{{Name: "conns", Value: 4}},
		Metrics: []scenario.Metric{{Name: "rate", Value: 1234.5, Unit: "frames/s"}},
		Latencies: []scenario.Latency{{Name: "round trip", Count: h.Count(),
			P50: scenario.Micros(h.Quantile(0.5)), Histogram: h, Windows: windows}},
		ServerCPU: &scenario.CPUUsage{PID: 1, Seconds: 1, Wall: 2, Cores: 0.5}}
}

func TestWriteTable_AlignsAndShowsCPUNextToRates(t *testing.T) {
	var out strings.Builder
	writeTable(&out, sampleReport())
	text := out.String()
	for _, want := range []string{"echo: conns=4", "rate    1234.5  frames/s         50%",
		"round trip   1000", "server cpu: 1.00s over 2.00s = 50% of one core", "result: ok"} {
		if !strings.Contains(text, want) {
			t.Errorf("table lacks %q:\n%s", want, text)
		}
	}
}

func TestFinish_JSONAndHTML(t *testing.T) {
	dir := t.TempDir()
	o := outputFlags{json: true, html: filepath.Join(dir, "r.html")}
	var out, errOut strings.Builder
	if code := o.finish(sampleReport(), nil, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out.String()), &got); err != nil {
		t.Fatalf("json: %v\n%s", err, out.String())
	}
	if got["scenario"] != "echo" || got["ok"] != true || got["server_cpu"] == nil {
		t.Fatalf("json %v", got)
	}
	page, err := os.ReadFile(o.html)
	if err != nil {
		t.Fatal(err)
	}
	html := string(page)
	if strings.Count(html, "<svg") != 2 || !strings.Contains(html, "<polyline") ||
		!strings.Contains(html, "<rect") {
		t.Fatalf("html lacks its charts:\n%s", html)
	}
	for _, banned := range []string{"<script", "src=", "href=", "@import"} {
		if strings.Contains(html, banned) {
			t.Errorf("html is not self-contained: has %q", banned)
		}
	}
}

func TestDispatch_MeasuringScenariosBadUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "chat odd users", args: []string{"chat", "--users", "3"}, want: "even"},
		{name: "push without metrics", args: []string{"push", "--push-addr", "127.0.0.1:17998",
			"--metrics-url", ""},
			want: "metrics-url"},
		{name: "echo bad flag", args: []string{"echo", "--nope"}, want: "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut strings.Builder
			if code := dispatch(context.Background(), tt.args, &out, &errOut); code != 2 ||
				!strings.Contains(errOut.String(), tt.want) {
				t.Fatalf("exit %d, stderr %q", code, errOut.String())
			}
		})
	}
}
