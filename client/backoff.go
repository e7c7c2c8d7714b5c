package client

import (
	"errors"
	"math/rand/v2"
	"time"

	"github.com/pulse-go/pulse"
)

// Defaults of the reconnect backoff.
const (
	DefaultBackoffBase = 500 * time.Millisecond
	DefaultBackoffCap  = 20 * time.Second
	// DefaultStableAfter is how long a connection must stay open before
	// the attempt counter of the backoff resets.
	DefaultStableAfter = 10 * time.Second
	// MaxRetryWindow bounds the retry=<ms> window a server may ask for: a
	// longer one is cut to it, so a wrong server cannot park its clients
	// for days.
	MaxRetryWindow = 2 * time.Minute
)

// Backoff returns the full-jitter delay before reconnect attempt number
// attempt (0 for the first after a loss): random in
// [0, min(cap, base*2^attempt)]. rnd returns a number in [0, 1); nil means
// math/rand/v2.Float64.
func Backoff(attempt int, base, cap time.Duration, rnd func() float64) time.Duration {
	if rnd == nil {
		rnd = rand.Float64
	}
	ceiling := cap
	if attempt < 62 && base < cap>>min(attempt, 62) {
		ceiling = base << attempt
	}
	return time.Duration(rnd() * float64(ceiling+1))
}

// retryWindow returns the window err's close frame asked the reconnect to
// be spread over, at most MaxRetryWindow; zero if none (retry=0 is none).
func retryWindow(err error) time.Duration {
	var ce *pulse.CloseError
	if !errors.As(err, &ce) {
		return 0
	}
	return min(ce.Retry, MaxRetryWindow)
}

// jitter returns a random delay in [0, window], the spread a server asks
// for with retry=.
func jitter(window time.Duration, rnd func() float64) time.Duration {
	return time.Duration(rnd() * float64(window+1))
}
