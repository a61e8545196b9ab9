package scenario

import (
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"sync"
	"time"
)

// Histogram layout: values below 2^subBits nanoseconds get a bucket each;
// above, every power of two is split into 2^subBits equal buckets, so a
// bucket is at most 1/128 of its lower bound wide and the midpoint we report
// is within 0.4% of any value in it. maxExp caps the range at 2^maxExp ns
// (about 73 minutes); longer values are clamped into the top bucket.
const (
	subBits    = 7
	subCount   = 1 << subBits
	maxExp     = 42
	numBuckets = subCount + (maxExp-subBits+1)*subCount
)

// Histogram is a log-linear latency histogram of fixed size (about 37 KiB)
// in nanoseconds. The zero value is ready; it is not safe for concurrent
// use (Recorder adds the lock).
type Histogram struct {
	counts   [numBuckets]uint64
	count    uint64
	sum      float64
	min, max int64
}

// bucketOf returns the bucket index of v (v >= 0).
func bucketOf(v int64) int {
	if v < subCount {
		return int(v)
	}
	exp := bits.Len64(uint64(v)) - 1
	if exp > maxExp {
		return numBuckets - 1
	}
	shift := exp - subBits
	sub := int(v>>shift) - subCount
	return subCount + shift*subCount + sub
}

// bucketRange returns the lowest value of bucket i and its width.
func bucketRange(i int) (lo, width int64) {
	if i < subCount {
		return int64(i), 1
	}
	shift := (i - subCount) / subCount
	sub := (i - subCount) % subCount
	return int64(subCount+sub) << shift, int64(1) << shift
}

// Record adds one value; negative durations count as 0.
func (h *Histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	h.counts[bucketOf(v)]++
	if h.count == 0 || v < h.min {
		h.min = v
	}
	h.max = max(h.max, v)
	h.count++
	h.sum += float64(v)
}

// Count is the number of values recorded.
func (h *Histogram) Count() uint64 { return h.count }

// Max is the largest value recorded, exact.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Min is the smallest value recorded, exact.
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Mean is the exact mean of the values recorded.
func (h *Histogram) Mean() time.Duration {
	if h.count == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.count))
}

// Quantile returns the value at quantile q (0..1): the midpoint of the
// bucket holding the ceil(q*count)-th smallest value, clamped to the exact
// min and max. It is 0 on an empty histogram.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.count == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.count)))
	rank = min(max(rank, 1), h.count)
	if rank == h.count {
		return time.Duration(h.max) // exact, and right past the clamped top bucket
	}
	var seen uint64
	for i, n := range h.counts {
		seen += n
		if seen >= rank {
			lo, width := bucketRange(i)
			mid := lo + (width-1)/2
			return time.Duration(min(max(mid, h.min), h.max))
		}
	}
	return time.Duration(h.max)
}

// Merge adds every value of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.count == 0 {
		return
	}
	for i, n := range o.counts {
		h.counts[i] += n
	}
	if h.count == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.count += o.count
	h.sum += o.sum
}

// Bucket is one non-empty bucket: values in [Low, High) were seen Count times.
type Bucket struct {
	Low, High time.Duration
	Count     uint64
}

// Buckets returns the non-empty buckets in increasing order.
func (h *Histogram) Buckets() []Bucket {
	var out []Bucket
	for i, n := range h.counts {
		if n > 0 {
			lo, width := bucketRange(i)
			out = append(out, Bucket{Low: time.Duration(lo), High: time.Duration(lo + width),
				Count: n})
		}
	}
	return out
}

// Window is the latency of one second of a run.
type Window struct {
	Second int // seconds since the recorder started; windows without values are left out
	Count  uint64
	P50    time.Duration
	P99    time.Duration
	P999   time.Duration
	Max    time.Duration
}

// MarshalJSON writes w with its durations in microseconds, like Latency.
func (w Window) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Second int    `json:"second"`
		Count  uint64 `json:"count"`
		P50    Micros `json:"p50_us"`
		P99    Micros `json:"p99_us"`
		P999   Micros `json:"p999_us"`
		Max    Micros `json:"max_us"`
	}{w.Second, w.Count, Micros(w.P50), Micros(w.P99), Micros(w.P999), Micros(w.Max)})
}

// Recorder is a Histogram of a whole run plus one per second, safe for
// concurrent use. Its memory is two histograms and one Window per second.
type Recorder struct {
	start time.Time

	mu      sync.Mutex
	total   Histogram
	current Histogram
	second  int // of current
	windows []Window
}

// NewRecorder starts a recorder whose seconds count from start.
func NewRecorder(start time.Time) *Recorder {
	return &Recorder{start: start}
}

// Record adds d, observed at now, to the run and to now's second.
func (r *Recorder) Record(now time.Time, d time.Duration) {
	sec := int(now.Sub(r.start) / time.Second)
	r.mu.Lock()
	defer r.mu.Unlock()
	if sec > r.second {
		r.flushLocked()
		r.second = sec
	}
	r.total.Record(d)
	r.current.Record(d)
}

// flushLocked closes the current second's window. Values recorded late
// (now before the current second) fall into the current window, which keeps
// windows in order.
func (r *Recorder) flushLocked() {
	h := &r.current
	if h.count > 0 {
		r.windows = append(r.windows, Window{Second: r.second, Count: h.count,
			P50: h.Quantile(0.50), P99: h.Quantile(0.99), P999: h.Quantile(0.999),
			Max: h.Max()})
	}
	*h = Histogram{}
}

// Finish closes the last window and returns the run's histogram and the
// windows. Record must not be called after Finish.
func (r *Recorder) Finish() (*Histogram, []Window) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.flushLocked()
	total := r.total
	return &total, r.windows
}

// Snapshot returns the count and p99 of the run so far, for progress lines.
func (r *Recorder) Snapshot() (count uint64, p99 time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total.count, r.total.Quantile(0.99)
}

// histogramJSON is a Histogram on the wire: its non-empty buckets as
// [index, count] pairs, so that a worker process can send its histogram to
// the parent for merging without losing resolution.
type histogramJSON struct {
	Buckets [][2]uint64 `json:"buckets"`
	Count   uint64      `json:"count"`
	Sum     float64     `json:"sum"`
	Min     int64       `json:"min"`
	Max     int64       `json:"max"`
}

// MarshalJSON writes h's non-empty buckets and its exact count, sum, min
// and max.
func (h *Histogram) MarshalJSON() ([]byte, error) {
	w := histogramJSON{Buckets: [][2]uint64{}, Count: h.count, Sum: h.sum, Min: h.min,
		Max: h.max}
	for i, n := range h.counts {
		if n > 0 {
			w.Buckets = append(w.Buckets, [2]uint64{uint64(i), n})
		}
	}
	return json.Marshal(w)
}

// UnmarshalJSON replaces h with the histogram MarshalJSON wrote. A bucket
// out of range or counts that disagree with the total are an error.
func (h *Histogram) UnmarshalJSON(b []byte) error {
	var w histogramJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*h = Histogram{count: w.Count, sum: w.Sum, min: w.Min, max: w.Max}
	var total uint64
	for _, bucket := range w.Buckets {
		if bucket[0] >= numBuckets {
			return fmt.Errorf("histogram: bucket %d out of range", bucket[0])
		}
		h.counts[bucket[0]] += bucket[1]
		total += bucket[1]
	}
	if total != w.Count {
		return fmt.Errorf("histogram: buckets hold %d values, count says %d", total, w.Count)
	}
	return nil
}
