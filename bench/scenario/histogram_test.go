package scenario

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogram_QuantilesWithinOnePercent(t *testing.T) {
	tests := []struct {
		name string
		gen  func(r *rand.Rand) time.Duration
	}{
		{name: "uniform microseconds", gen: func(r *rand.Rand) time.Duration {
			return time.Duration(r.Int64N(int64(time.Millisecond)))
		}},
		{name: "log-uniform ns to s", gen: func(r *rand.Rand) time.Duration {
			return time.Duration(math.Pow(10, r.Float64()*9))
		}},
		{name: "exponential around 1ms", gen: func(r *rand.Rand) time.Duration {
			return time.Duration(r.ExpFloat64() * float64(time.Millisecond))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			var h Histogram
			exact := make([]time.Duration, 100000)
			for i := range exact {
				exact[i] = tt.gen(r)
				h.Record(exact[i])
			}
			slices.Sort(exact)
			for _, q := range []float64{0, 0.5, 0.9, 0.99, 0.999, 1} {
				rank := max(int(math.Ceil(q*float64(len(exact)))), 1)
				want, got := exact[rank-1], h.Quantile(q)
				if diff := math.Abs(float64(got - want)); diff > 0.01*float64(want)+1 {
					t.Errorf("q%.3f = %v, exact %v", q, got, want)
				}
			}
			if h.Count() != uint64(len(exact)) || h.Max() != exact[len(exact)-1] ||
				h.Min() != exact[0] {
				t.Errorf("count %d min %v max %v", h.Count(), h.Min(), h.Max())
			}
		})
	}
}

func TestHistogram_EdgeCases(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Mean() != 0 || len(h.Buckets()) != 0 {
		t.Fatal("empty histogram reports values")
	}
	h.Record(-time.Second) // counts as 0
	h.Record(100 * time.Hour)
	if h.Quantile(0) != 0 || h.Max() != 100*time.Hour || h.Quantile(1) != 100*time.Hour {
		t.Fatalf("q0 %v max %v q1 %v", h.Quantile(0), h.Max(), h.Quantile(1))
	}
	var o Histogram
	o.Record(time.Millisecond)
	h.Merge(&o)
	if h.Count() != 3 || h.Quantile(0.5) < 990*time.Microsecond ||
		h.Quantile(0.5) > 1010*time.Microsecond {
		t.Fatalf("after merge: count %d p50 %v", h.Count(), h.Quantile(0.5))
	}
}

func TestBucketLayout_ContiguousAndNarrow(t *testing.T) {
	var next int64
	for i := range numBuckets {
		lo, width := bucketRange(i)
		if lo != next {
			t.Fatalf("bucket %d starts at %d, want %d", i, lo, next)
		}
		if lo >= subCount && float64(width)/float64(lo) > 1.0/subCount {
			t.Fatalf("bucket %d is %d wide at %d", i, width, lo)
		}
		if bucketOf(lo) != i || bucketOf(lo+width-1) != i {
			t.Fatalf("bucketOf disagrees with bucketRange at %d", i)
		}
		next = lo + width
	}
}

func TestRecorder_WindowsPerSecond(t *testing.T) {
	start := time.Now()
	r := NewRecorder(start)
	r.Record(start.Add(100*time.Millisecond), time.Millisecond)
	r.Record(start.Add(900*time.Millisecond), 3*time.Millisecond)
	r.Record(start.Add(2500*time.Millisecond), 2*time.Millisecond) // second 1 is empty
	total, windows := r.Finish()
	if total.Count() != 3 || len(windows) != 2 {
		t.Fatalf("count %d, windows %+v", total.Count(), windows)
	}
	if windows[0].Second != 0 || windows[0].Count != 2 || windows[0].Max != 3*time.Millisecond ||
		windows[1].Second != 2 || windows[1].Count != 1 {
		t.Fatalf("windows %+v", windows)
	}
	// In a report's JSON the windows read like its totals: microseconds.
	b, err := json.Marshal(latencyOf("e2e", r))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		OverTime []map[string]float64 `json:"over_time"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if len(got.OverTime) != 2 || got.OverTime[0]["max_us"] != 3000 ||
		got.OverTime[1]["second"] != 2 || got.OverTime[1]["count"] != 1 {
		t.Fatalf("over_time %s", b)
	}
}

func TestHistogram_JSONRoundTripMerges(t *testing.T) {
	var a, b Histogram
	for i := range 1000 {
		a.Record(time.Duration(i) * time.Microsecond)
		b.Record(time.Duration(i) * time.Millisecond)
	}
	var want Histogram
	want.Merge(&a)
	want.Merge(&b)

	// As the parent gets them: each through JSON, then merged.
	var got Histogram
	for _, h := range []*Histogram{&a, &b} {
		raw, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		var back Histogram
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatal(err)
		}
		got.Merge(&back)
	}
	if got != want {
		t.Fatalf("merged after JSON: count %d p50 %v p99 %v; want count %d p50 %v p99 %v",
			got.Count(), got.Quantile(0.5), got.Quantile(0.99), want.Count(),
			want.Quantile(0.5), want.Quantile(0.99))
	}
}

func TestHistogram_UnmarshalRejectsBadBuckets(t *testing.T) {
	for _, raw := range []string{
		`{"buckets":[[999999,1]],"count":1}`,
		`{"buckets":[[3,2]],"count":1}`,
		`{"buckets":"no"}`,
	} {
		var h Histogram
		if err := json.Unmarshal([]byte(raw), &h); err == nil {
			t.Errorf("%s: accepted", raw)
		}
	}
}
