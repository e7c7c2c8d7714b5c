// Package lograte bounds log lines that an attacker could otherwise turn
// into a flood: at most a burst of lines per window, the first line of a
// later window counting those left out.
package lograte

import (
	"sync"
	"time"
)

// Limiter allows at most burst lines per window. Its methods may be called
// concurrently.
type Limiter struct {
	// Set by New, never change.
	window time.Duration
	burst  int

	mu      sync.Mutex // guards the fields below
	start   time.Time  // of the current window
	logged  int        // lines allowed in the current window
	skipped int        // lines refused since the last one allowed
}

// New returns a Limiter of burst lines per window.
func New(window time.Duration, burst int) *Limiter {
	return &Limiter{window: window, burst: burst}
}

// Allow reports whether a line at now may be logged and, if it may, how
// many were left out before it.
func (l *Limiter) Allow(now time.Time) (ok bool, skipped int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.start) >= l.window {
		l.start, l.logged = now, 0
	}
	if l.logged >= l.burst {
		l.skipped++
		return false, 0
	}
	l.logged++
	skipped, l.skipped = l.skipped, 0
	return true, skipped
}
