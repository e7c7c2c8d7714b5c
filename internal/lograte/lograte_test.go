package lograte

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the run if any test leaves a goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestAllow: a burst of 3 per second allows the first 3 lines of a
// window, refuses the rest, and the first line of the next window counts
// those refused.
func TestAllow(t *testing.T) {
	l := New(time.Second, 3)
	t0 := time.Unix(1000, 0)
	for i := range 5 {
		ok, skipped := l.Allow(t0.Add(time.Duration(i) * time.Millisecond))
		if want := i < 3; ok != want || skipped != 0 {
			t.Fatalf("line %d: Allow = %v, %d; want %v, 0", i, ok, skipped, want)
		}
	}
	if ok, _ := l.Allow(t0.Add(999 * time.Millisecond)); ok {
		t.Fatal("a line at the end of a full window allowed")
	}
	if ok, skipped := l.Allow(t0.Add(time.Second)); !ok || skipped != 3 {
		t.Fatalf("first line of the next window: Allow = %v, %d; want true, 3", ok, skipped)
	}
	if ok, skipped := l.Allow(t0.Add(time.Second + 1)); !ok || skipped != 0 {
		t.Fatalf("second line of the next window: Allow = %v, %d; want true, 0 (the count is told once)", ok, skipped)
	}
}

// TestAllowConcurrent: lines from many goroutines at once are allowed
// exactly burst times in one window (run it with -race).
func TestAllowConcurrent(t *testing.T) {
	l := New(time.Hour, 10)
	now := time.Unix(1000, 0)
	allowed := make(chan bool, 100)
	for range 100 {
		go func() {
			ok, _ := l.Allow(now)
			allowed <- ok
		}()
	}
	n := 0
	for range 100 {
		if <-allowed {
			n++
		}
	}
	if n != 10 {
		t.Fatalf("%d of 100 lines allowed, want 10", n)
	}
}
