package client

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestBackoffBounds(t *testing.T) {
	const base, cap = 500 * time.Millisecond, 20 * time.Second
	rng := rand.New(rand.NewPCG(1, 2))
	for attempt := range 70 {
		ceiling := cap
		if attempt < 6 {
			ceiling = base << attempt // 0.5s 1s 2s 4s 8s 16s, then the cap
		}
		if got := Backoff(attempt, base, cap, func() float64 { return 0 }); got != 0 {
			t.Errorf("attempt %d, rnd 0: %v, want 0", attempt, got)
		}
		if got := Backoff(attempt, base, cap, func() float64 { return math.Nextafter(1, 0) }); got != ceiling {
			t.Errorf("attempt %d, rnd ~1: %v, want %v", attempt, got, ceiling)
		}
		var sum time.Duration
		const n = 2000
		for range n {
			d := Backoff(attempt, base, cap, rng.Float64)
			if d < 0 || d > ceiling {
				t.Fatalf("attempt %d: %v outside [0, %v]", attempt, d, ceiling)
			}
			sum += d
		}
		// Full jitter: uniform, so the mean is near half the ceiling.
		if mean := sum / n; mean < ceiling*4/10 || mean > ceiling*6/10 {
			t.Errorf("attempt %d: mean %v, want about %v", attempt, mean, ceiling/2)
		}
	}
}

func TestBackoffDefaultRandom(t *testing.T) {
	for range 100 {
		if d := Backoff(3, time.Second, time.Minute, nil); d < 0 || d > 8*time.Second {
			t.Fatalf("Backoff(3, 1s, 1m, nil) = %v", d)
		}
	}
}
