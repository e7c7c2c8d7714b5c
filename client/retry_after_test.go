package client

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pulse-go/pulse/wire"
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

// A publish refused as rate_limited is sent again, with its key, once
// retry_after_ms has passed, and a later publish does not overtake it.
func TestRateLimitedPublishRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, s := newFakeServer(), newStates()
		c := newTestClient(f, s, nil)
		running(t, c)
		conn := f.accept(t, time.Hour, time.Hour)
		first, err := c.Send("room", json.RawMessage(`1`), nil)
		if err != nil {
			t.Fatal(err)
		}
		p := recv[wire.Publish](t, conn)
		conn.sendJSON(map[string]any{"type": "error", "id": p.ID, "code": "rate_limited", "message": "slow down", "retry_after_ms": 500})
		refused := time.Now()
		time.Sleep(100 * time.Millisecond)
		if _, err := c.Send("room", json.RawMessage(`2`), nil); err != nil {
			t.Fatal(err)
		}
		again := recv[wire.Publish](t, conn)
		if waited := time.Since(refused); waited != 500*time.Millisecond || again.Key != p.Key || string(again.Data) != "1" {
			t.Fatalf("resent %+v after %v; want the first publish, same key, after 500ms", again, waited)
		}
		if next := recv[wire.Publish](t, conn); string(next.Data) != "2" {
			t.Fatalf("then %+v, want the second publish", next)
		}
		conn.sendJSON(map[string]any{"type": "ack", "id": again.ID, "pos": map[string]any{"epoch": "e", "offset": 1}})
		if res, err := first.Wait(t.Context()); err != nil || res.Pos.Offset != 1 {
			t.Fatalf("first publish: %+v, %v", res, err)
		}
	})
}

// Publishes refused together come back paced retry_after_ms apart.
func TestRateLimitedPublishesPaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, s := newFakeServer(), newStates()
		c := newTestClient(f, s, nil)
		running(t, c)
		conn := f.accept(t, time.Hour, time.Hour)
		for n := range 3 {
			if _, err := c.Send("room", json.RawMessage(strconv.Itoa(n)), nil); err != nil {
				t.Fatal(err)
			}
		}
		for range 3 {
			p := recv[wire.Publish](t, conn)
			conn.sendJSON(map[string]any{"type": "error", "id": p.ID, "code": "rate_limited", "message": "slow down", "retry_after_ms": 200})
		}
		refused := time.Now()
		for n := range 3 {
			p := recv[wire.Publish](t, conn)
			if waited, want := time.Since(refused), time.Duration(n+1)*200*time.Millisecond; string(p.Data) != strconv.Itoa(n) || waited != want {
				t.Fatalf("resent %s after %v, want %d after %v", p.Data, waited, n, want)
			}
		}
	})
}
