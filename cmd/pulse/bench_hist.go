package main

import (
	"math/bits"
	"sort"
	"sync/atomic"
	"time"
)

// hist is a latency histogram of bounded size: log-linear buckets with 64
// steps per power of two (each at most 1.6 % wide), so that millions of
// samples cost 30 KiB. A
// percentile is the upper edge of its bucket: never below the truth.
// Its methods may be called from any goroutine; add takes no lock, since
// thousands of readers add to one histogram.
type hist struct {
	counts [histBuckets]atomic.Int64
	n      atomic.Int64
	max    atomic.Int64 // nanoseconds
}

const (
	histSub     = 64               // buckets per power of two
	histBuckets = 58*histSub + 128 // up to bucket(1<<63 - 1)
)

func newHist() *hist { return &hist{} }

// bucket is the index of d's bucket; below histSub ns each ns is one.
func bucket(d time.Duration) int {
	v := uint64(max(d, 0))
	if v < histSub {
		return int(v)
	}
	shift := bits.Len64(v) - 7 // keep the top 7 bits: 64..127
	return shift*histSub + int(v>>shift)
}

// upper is the largest duration in bucket i.
func upper(i int) time.Duration {
	if i < histSub {
		return time.Duration(i)
	}
	shift := i/histSub - 1
	top := uint64(i%histSub + histSub)
	return time.Duration((top+1)<<shift - 1)
}

func (h *hist) add(d time.Duration) {
	h.counts[bucket(d)].Add(1)
	h.n.Add(1)
	for cur := h.max.Load(); int64(d) > cur && !h.max.CompareAndSwap(cur, int64(d)); cur = h.max.Load() {
	}
}

// histData is a histogram's non-empty buckets and its maximum.
type histData struct {
	Counts map[int]int64 `json:"counts"`
	Max    int64         `json:"max_ns"`
}

func (h *hist) data() *histData {
	c := make(map[int]int64)
	for i := range h.counts {
		if n := h.counts[i].Load(); n > 0 {
			c[i] = n
		}
	}
	return &histData{Counts: c, Max: h.max.Load()}
}

// merge adds the samples of d, another histogram's data.
func (h *hist) merge(d *histData) {
	for i, n := range d.Counts {
		if i >= 0 && i < histBuckets {
			h.counts[i].Add(n)
			h.n.Add(n)
		}
	}
	for cur := h.max.Load(); d.Max > cur && !h.max.CompareAndSwap(cur, d.Max); cur = h.max.Load() {
	}
}

// count is the number of samples.
func (h *hist) count() int64 { return h.n.Load() }

// quantile returns the q-quantile (0 < q <= 1), 0 with no samples; q=1 is
// the exact maximum. Samples added meanwhile may or may not count.
func (h *hist) quantile(q float64) time.Duration {
	n, maxD := h.n.Load(), time.Duration(h.max.Load())
	if n == 0 {
		return 0
	}
	if q >= 1 {
		return maxD
	}
	rank := int64(q*float64(n)) + 1
	var seen int64
	for i := range h.counts {
		if seen += h.counts[i].Load(); seen >= rank {
			return min(upper(i), maxD)
		}
	}
	return maxD
}

// latencyStats is a histogram's summary in a result.
type latencyStats struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
	// Buckets for the HTML histogram: upper edge in ms and count.
	Buckets [][2]float64 `json:"buckets,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (h *hist) stats() *latencyStats {
	s := &latencyStats{Count: h.count(), P50: ms(h.quantile(0.5)), P90: ms(h.quantile(0.9)),
		P99: ms(h.quantile(0.99)), P999: ms(h.quantile(0.999)), Max: ms(h.quantile(1))}
	d := h.data()
	idx := make([]int, 0, len(d.Counts))
	for i := range d.Counts {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	for _, i := range idx {
		s.Buckets = append(s.Buckets, [2]float64{ms(upper(i)), float64(d.Counts[i])})
	}
	return s
}
