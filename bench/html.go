package main

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"time"

	"github.com/resonance-im/resonance/bench/scenario"
)

// Chart geometry in SVG user units.
const (
	chartW, chartH = 720, 280
	padL, padR     = 70, 20
	padT, padB     = 20, 40
	histBins       = 60
)

// renderHTML returns a self-contained page for rep: its tables, and per
// latency an SVG chart of p50/p99/p999/max per second and an SVG histogram.
// No script, no external asset.
func renderHTML(rep scenario.Report) []byte {
	var b bytes.Buffer
	title := html.EscapeString("bench " + rep.Scenario)
	fmt.Fprintf(&b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>%s</title>\n"+
		"<style>body{font:14px sans-serif;margin:2em}table{border-collapse:collapse}"+
		"td,th{padding:2px 10px;text-align:right}th{border-bottom:1px solid #999}"+
		"pre{background:#f6f6f6;padding:1em}</style></head><body>\n<h1>%s</h1>\n", title, title)
	var table bytes.Buffer
	writeTable(&table, rep)
	fmt.Fprintf(&b, "<pre>%s</pre>\n", html.EscapeString(table.String()))
	for _, l := range rep.Latencies {
		fmt.Fprintf(&b, "<h2>%s latency per second</h2>\n", html.EscapeString(l.Name))
		writeTimeChart(&b, l.Windows)
		fmt.Fprintf(&b, "<h2>%s latency histogram</h2>\n", html.EscapeString(l.Name))
		writeHistogram(&b, l.Histogram)
	}
	b.WriteString("</body></html>\n")
	return b.Bytes()
}

// logScale maps durations onto [0, 1] between the decades around lo and hi.
type logScale struct{ lo, hi float64 } // log10 of nanoseconds

func newLogScale(lo, hi time.Duration) logScale {
	l := math.Floor(math.Log10(math.Max(float64(lo), 1)))
	h := math.Ceil(math.Log10(math.Max(float64(hi), 10)))
	if h <= l {
		h = l + 1
	}
	return logScale{lo: l, hi: h}
}

func (s logScale) at(d time.Duration) float64 {
	v := math.Log10(math.Max(float64(d), 1))
	return math.Min(math.Max((v-s.lo)/(s.hi-s.lo), 0), 1)
}

// decades calls f for each power of ten in the scale.
func (s logScale) decades(f func(d time.Duration)) {
	for e := s.lo; e <= s.hi; e++ {
		f(time.Duration(math.Pow(10, e)))
	}
}

func svgOpen(b *bytes.Buffer) {
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" `+
		`viewBox="0 0 %d %d" font-size="11">`+"\n", chartW, chartH, chartW, chartH)
}

// writeTimeChart draws one polyline per percentile over the run's seconds,
// on a logarithmic latency axis.
func writeTimeChart(b *bytes.Buffer, windows []scenario.Window) {
	if len(windows) == 0 {
		b.WriteString("<p>no values</p>\n")
		return
	}
	lo, hi := windows[0].P50, windows[0].Max
	for _, w := range windows {
		lo, hi = min(lo, w.P50), max(hi, w.Max)
	}
	ys := newLogScale(lo, hi)
	last := max(windows[len(windows)-1].Second, 1)
	x := func(sec int) float64 {
		return padL + float64(sec)/float64(last)*(chartW-padL-padR)
	}
	y := func(d time.Duration) float64 { return chartH - padB - ys.at(d)*(chartH-padT-padB) }
	svgOpen(b)
	ys.decades(func(d time.Duration) {
		fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+
			`<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n",
			padL, chartW-padR, y(d), y(d), padL-6, y(d)+4, scenario.FormatDuration(d))
	})
	for _, sec := range []int{0, last / 2, last} {
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%ds</text>`+"\n",
			x(sec), chartH-padB+16, sec)
	}
	series := []struct {
		name, color string
		get         func(scenario.Window) time.Duration
	}{
		{"p50", "#1b7837", func(w scenario.Window) time.Duration { return w.P50 }},
		{"p99", "#e08214", func(w scenario.Window) time.Duration { return w.P99 }},
		{"p999", "#b2182b", func(w scenario.Window) time.Duration { return w.P999 }},
		{"max", "#777", func(w scenario.Window) time.Duration { return w.Max }},
	}
	for i, s := range series {
		b.WriteString(`<polyline fill="none" stroke-width="1.5" stroke="` + s.color + `" points="`)
		for _, w := range windows {
			fmt.Fprintf(b, "%.1f,%.1f ", x(w.Second), y(s.get(w)))
		}
		b.WriteString("\"/>\n")
		fmt.Fprintf(b, `<text x="%d" y="%d" fill="%s">%s</text>`+"\n",
			padL+10+i*60, chartH-8, s.color, s.name)
	}
	b.WriteString("</svg>\n")
}

// writeHistogram draws the distribution as bars over histBins bins of
// equal width on a logarithmic latency axis.
func writeHistogram(b *bytes.Buffer, h *scenario.Histogram) {
	if h == nil || h.Count() == 0 {
		b.WriteString("<p>no values</p>\n")
		return
	}
	xs := newLogScale(h.Min(), h.Max())
	bins := make([]uint64, histBins)
	var peak uint64
	for _, bk := range h.Buckets() {
		i := min(int(xs.at(bk.Low)*histBins), histBins-1)
		bins[i] += bk.Count
		peak = max(peak, bins[i])
	}
	plotW, plotH := float64(chartW-padL-padR), float64(chartH-padT-padB)
	svgOpen(b)
	xs.decades(func(d time.Duration) {
		x := padL + xs.at(d)*plotW
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#ddd"/>`+
			`<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n",
			x, x, padT, chartH-padB, x, chartH-padB+16, scenario.FormatDuration(d))
	})
	barW := plotW / histBins
	for i, n := range bins {
		if n == 0 {
			continue
		}
		hgt := float64(n) / float64(peak) * plotH
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#4575b4">`+
			`<title>%d</title></rect>`+"\n", padL+float64(i)*barW, chartH-padB-hgt,
			barW-1, hgt, n)
	}
	fmt.Fprintf(b, `<text x="%d" y="%d">count (peak %d)</text>`+"\n", padL, padT-6, peak)
	b.WriteString("</svg>\n")
}
