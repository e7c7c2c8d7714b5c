package client

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// A refused upgrade's Retry-After reaches the HandshakeError.
func TestDialReadsRetryAfter(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		http.Error(w, `{"error":"busy"}`, http.StatusServiceUnavailable)
	}))
	defer ts.Close()
	_, err := DialWebSocket(t.Context(), "ws"+strings.TrimPrefix(ts.URL, "http"), time.Second)
	var he *HandshakeError
	if !errors.As(err, &he) || he.Status != 503 || he.RetryAfter != 7*time.Second {
		t.Fatalf("dial: %v, want a 503 with Retry-After 7s", err)
	}
	for v, want := range map[string]time.Duration{"": 0, "soon": 0, "-1": 0, "3": 3 * time.Second, "99999": MaxRetryWindow} {
		if got := parseRetryAfter(v); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}

// The next dial after a 503 with Retry-After waits that long, and less
// than a second more, whatever the backoff says.
func TestRetryAfterHonoured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, s := newFakeServer(), newStates()
		c := newTestClient(f, s, &Options{Backoff: func(int) time.Duration { return 0 }})
		running(t, c)
		call := f.next(t)
		call.answer <- dialAnswer{err: &HandshakeError{Status: 503, RetryAfter: 3 * time.Second}}
		refused := time.Now()
		if d := s.await(t, StateReconnecting).Delay; d < 3*time.Second || d >= 4*time.Second {
			t.Errorf("delay %v, want within [3s, 4s)", d)
		}
		if got := f.next(t).at.Sub(refused); got < 3*time.Second || got >= 4*time.Second {
			t.Errorf("dialled again after %v, want within [3s, 4s)", got)
		}
	})
}
