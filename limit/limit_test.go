package limit

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pulse-go/pulse"
)

// env is a pulse server with an echo behind a Limiter.
type env struct {
	lim     *Limiter
	url     string
	closed  chan struct{} // a connection's session has closed
	mu      sync.Mutex
	refused map[string]int
}

func start(t *testing.T, o Options) *env {
	t.Helper()
	e := &env{closed: make(chan struct{}, 100), refused: map[string]int{}}
	o.Refused = func(reason string) {
		e.mu.Lock()
		e.refused[reason]++
		e.mu.Unlock()
	}
	e.lim = New(&o)
	srv, err := pulse.NewServer(&pulse.Options{Logger: slog.New(slog.DiscardHandler), DrainWindow: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	echo := pulse.Funcs{Closed: func(*pulse.Conn, *pulse.CloseError) { e.closed <- struct{}{} }}
	hs := httptest.NewServer(srv.Handler(e.lim.Handler(echo)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		hs.Close()
		cancel()
		<-done
	})
	e.url = "ws" + strings.TrimPrefix(hs.URL, "http")
	return e
}

func (e *env) refusals(reason string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.refused[reason]
}

// dial connects, or returns the refusal's status, Retry-After and reason.
func (e *env) dial(t *testing.T) (*websocket.Conn, int, string, string) {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(e.url, nil)
	if err == nil {
		t.Cleanup(func() { ws.Close() })
		return ws, 101, "", ""
	}
	if resp == nil {
		t.Fatalf("dial: %v", err)
	}
	defer resp.Body.Close()
	var body struct{ Error string }
	json.NewDecoder(resp.Body).Decode(&body)
	return nil, resp.StatusCode, resp.Header.Get("Retry-After"), body.Error
}

// awaitOpen waits until the limiter counts total connections.
func (e *env) awaitOpen(t *testing.T, total int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if got, _ := e.lim.Count("127.0.0.1"); got == total {
			return
		}
		if time.Now().After(deadline) {
			got, _ := e.lim.Count("127.0.0.1")
			t.Fatalf("limiter counts %d connections, want %d", got, total)
		}
		time.Sleep(time.Millisecond) // the count is given back by the request's end, on its own goroutine
	}
}

func TestPerAddress(t *testing.T) {
	e := start(t, Options{PerAddress: 2})
	first, _, _, _ := e.dial(t)
	e.dial(t)
	ws, status, retry, reason := e.dial(t)
	if ws != nil || status != http.StatusServiceUnavailable || retry != "10" || !strings.Contains(reason, "from your address") {
		t.Fatalf("third connection: %d, Retry-After %q, %q; want 503 after 10 s, naming the address", status, retry, reason)
	}
	if n := e.refusals(ReasonPerAddress); n != 1 {
		t.Errorf("%d refusals counted, want 1", n)
	}
	first.Close()
	<-e.closed
	if ws, status, _, _ := e.dial(t); ws == nil {
		t.Errorf("after one closed: %d, want a connection", status)
	}
}

func TestTotal(t *testing.T) {
	e := start(t, Options{Total: 1})
	e.dial(t)
	if ws, status, _, reason := e.dial(t); ws != nil || status != 503 || !strings.Contains(reason, "all the connections") {
		t.Fatalf("second connection: %d %q, want 503", status, reason)
	}
	if n := e.refusals(ReasonTotal); n != 1 {
		t.Errorf("%d refusals counted, want 1", n)
	}
}

// Upgrades beyond the rate are refused with a jittered Retry-After.
func TestUpgradeRate(t *testing.T) {
	e := start(t, Options{UpgradeRate: 1, RetryWindow: 5 * time.Second})
	e.dial(t)
	for range 20 {
		ws, status, retry, _ := e.dial(t)
		n, _ := strconv.Atoi(retry)
		if ws != nil || status != 503 || n < 1 || n > 5 {
			t.Fatalf("upgrade past the rate: %d, Retry-After %q; want 503 within [1, 5] s", status, retry)
		}
	}
	if n := e.refusals(ReasonUpgradeRate); n != 20 {
		t.Errorf("%d refusals counted, want 20", n)
	}
}

// A request that fails to upgrade after Accept gives its place back.
func TestFailedUpgradeReleases(t *testing.T) {
	e := start(t, Options{PerAddress: 1})
	for range 3 {
		resp, err := http.Get("http" + strings.TrimPrefix(e.url, "ws")) // not a WebSocket handshake
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain GET: %d, want 400", resp.StatusCode)
		}
		e.awaitOpen(t, 0)
	}
	e.dial(t)
	e.awaitOpen(t, 1)
	if ws, status, _, _ := e.dial(t); ws != nil || status != 503 {
		t.Errorf("second connection of one address: %d, want 503", status)
	}
}

// Few refusals ask for a short wait: Retry-After spreads the refused over
// the time the rate needs to take them, not over the whole window.
func TestRetryAfterFollowsDemand(t *testing.T) {
	e := start(t, Options{UpgradeRate: 100, PerAddress: 1000})
	refused := 0
	for range 30 { // the burst is 10: some 20 are refused, 0.2 s of the rate
		ws, status, retry, _ := e.dial(t)
		if ws != nil {
			continue
		}
		refused++
		if status != 503 || retry != "1" {
			t.Fatalf("refused with %d, Retry-After %q; want 503 after 1 s", status, retry)
		}
	}
	if refused == 0 {
		t.Fatal("nothing refused past the burst")
	}
}

// Admission never lets through more than the rate and its burst in any
// second, and Admitted counts exactly what it let through. Virtual time:
// requests arrive every millisecond, five times the rate, for 3 s.
func TestAdmittedWithinRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rate, burst = 200, 20
		l := New(&Options{UpgradeRate: rate, PerAddress: 1 << 20, Total: 1 << 20})
		var at []time.Time // admissions
		for range 3000 {
			if l.admit("127.0.0.1") == nil {
				at = append(at, time.Now())
			}
			time.Sleep(time.Millisecond)
		}
		if got := l.Admitted(); got != int64(len(at)) || got < 2*rate {
			t.Fatalf("Admitted() = %d; %d requests were admitted, at %d a second over 3 s", got, len(at), rate)
		}
		for i, j := 0, 0; i < len(at); i++ {
			for at[i].Sub(at[j]) >= time.Second {
				j++
			}
			if n := i - j + 1; n > rate+burst {
				t.Fatalf("%d upgrades admitted within one second ending at %v; the rate is %d with a burst of %d", n, at[i], rate, burst)
			}
		}
	})
}
