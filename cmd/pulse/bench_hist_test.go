package main

import (
	"testing"
	"time"
)

// TestHistQuantiles checks percentiles against samples whose true
// quantiles are known: never below the truth, at most one bucket (1.6 %)
// above it, and the maximum exact.
func TestHistQuantiles(t *testing.T) {
	h := newHist()
	for i := 1; i <= 10000; i++ {
		h.add(time.Duration(i) * time.Microsecond)
	}
	h.add(3 * time.Second) // one outlier: the maximum
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 5001 * time.Microsecond}, {0.9, 9001 * time.Microsecond}, {0.99, 9902 * time.Microsecond}} {
		got := h.quantile(tt.q)
		if got < tt.want || float64(got) > float64(tt.want)*1.016 {
			t.Errorf("quantile(%v) = %v, want %v within 1.6 %% above", tt.q, got, tt.want)
		}
	}
	if got := h.quantile(1); got != 3*time.Second {
		t.Errorf("max %v, want 3s", got)
	}
	if got := h.count(); got != 10001 {
		t.Errorf("count %d, want 10001", got)
	}
	for _, d := range []time.Duration{0, 1, 63, 64, 127, 128, 1000, time.Hour, 1<<63 - 1} {
		if i := bucket(d); i >= histBuckets || upper(i) < d || (i > 0 && upper(i-1) >= d) {
			t.Errorf("%v is in bucket %d, [%v, %v]", d, i, upper(i-1)+1, upper(i))
		}
	}
}
