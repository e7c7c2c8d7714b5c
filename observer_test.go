package pulse

import (
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingObserver counts what a Server tells its Observer, with atomic
// additions on the heartbeat path as a production Observer does.
type countingObserver struct {
	opened atomic.Int64
	pings  [HeartbeatText + 1]atomic.Int64
	pongs  [HeartbeatText + 1]atomic.Int64
	rtt    atomic.Int64 // the sum of every PongReceived's rtt

	mu     sync.Mutex // guards closed
	closed map[DisconnectReason]int
}

var _ Observer = (*countingObserver)(nil)

func (o *countingObserver) Opened()                  { o.opened.Add(1) }
func (o *countingObserver) PingSent(k HeartbeatKind) { o.pings[k].Add(1) }

func (o *countingObserver) PongReceived(k HeartbeatKind, rtt time.Duration) {
	o.pongs[k].Add(1)
	o.rtt.Add(int64(rtt))
}

func (o *countingObserver) Closed(reason DisconnectReason) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed == nil {
		o.closed = make(map[DisconnectReason]int)
	}
	o.closed[reason]++
}

func (o *countingObserver) closes(reason DisconnectReason) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.closed[reason]
}

// allPongs counts the heartbeat answers of every kind.
func (o *countingObserver) allPongs() int64 {
	var n int64
	for i := range o.pongs {
		n += o.pongs[i].Load()
	}
	return n
}

// The Observer follows the connections: opened, heartbeats each way with
// their RTTs, and the reason each one ended.
func TestObserverCounts(t *testing.T) { onEngines(t, testObserverCounts) }

func testObserverCounts(t *testing.T, engine Engine) {
	o := &countingObserver{}
	l := startLive(t, engine, &Options{Interval: 50 * time.Millisecond, Timeout: time.Second, Observer: o})
	p := dialPeer(t, l.url("/echo?heartbeat=text", ""), HeartbeatText)
	l.nextOpen(t)
	p.awaitBeats(t, 3)
	if got := o.opened.Load(); got != 1 {
		t.Fatalf("Opened called %d times, want 1", got)
	}
	p.ws.Close()
	l.nextClose(t) // OnClose runs after Observer.Closed
	if got := o.closes(DisconnectReadError); got != 1 {
		t.Fatalf("Closed(read_error) called %d times, want 1", got)
	}
	pings, pongs := o.pings[HeartbeatText].Load(), o.pongs[HeartbeatText].Load()
	if pings < 3 || pongs < 1 || pongs > pings {
		t.Fatalf("%d text pings sent, %d pongs received; want at least 3 and 1, no more pongs than pings", pings, pongs)
	}
	if other := o.pings[HeartbeatFrame].Load() + o.pings[HeartbeatApp].Load(); other != 0 {
		t.Fatalf("%d heartbeats of other kinds sent, want 0", other)
	}
	if o.rtt.Load() <= 0 {
		t.Fatalf("RTT sum %v over %d pongs, want positive", time.Duration(o.rtt.Load()), pongs)
	}
}

// The core's dependencies stay small: neither package pulse nor the Go
// client may import Prometheus, which lives in package prom.
func TestCoreImportsNoPrometheus(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go tool on PATH to list dependencies with: %v", err)
	}
	for _, pkg := range []string{"github.com/pulse-go/pulse", "github.com/pulse-go/pulse/client"} {
		out, err := exec.CommandContext(t.Context(), goTool, "list", "-deps", "-f", "{{.ImportPath}}", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		deps := strings.Fields(string(out))
		if !slices.Contains(deps, "github.com/gorilla/websocket") {
			t.Fatalf("go list -deps %s lists no gorilla/websocket; the listing is wrong:\n%s", pkg, out)
		}
		for _, dep := range deps {
			if strings.HasPrefix(dep, "github.com/prometheus/") {
				t.Errorf("%s depends on %s", pkg, dep)
			}
		}
	}
}
