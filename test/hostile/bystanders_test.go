//go:build linux

package hostile

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// bystanderPace is how often each bystander measures a round trip.
const bystanderPace = 20 * time.Millisecond

// bystanders are well-behaved pulse.v1 clients that measure round trips
// (an app ping answered by a pong) all the time.
type bystanders struct {
	mu     sync.Mutex
	rtts   []time.Duration // since the last take
	failed error           // the first bystander that lost its connection

	stop chan struct{}
	wg   sync.WaitGroup
}

func startBystanders(t *testing.T, s *server, n int) *bystanders {
	t.Helper()
	b := &bystanders{stop: make(chan struct{})}
	d := websocket.Dialer{Subprotocols: []string{"pulse.v1"}, HandshakeTimeout: wait}
	for range n {
		ws, _, err := d.Dial("ws://"+s.addr+"/ws", nil)
		if err != nil {
			t.Fatalf("bystander: %v", err)
		}
		b.wg.Go(func() { b.run(ws) })
	}
	t.Cleanup(b.end)
	return b
}

func (b *bystanders) end() {
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
	b.wg.Wait()
}

// run measures round trips on ws until stop; the server's own pings are
// answered on the way.
func (b *bystanders) run(ws *websocket.Conn) {
	defer ws.Close()
	tick := time.NewTicker(bystanderPace)
	defer tick.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-tick.C:
		}
		rtt, err := roundTrip(ws)
		b.mu.Lock()
		if err != nil && b.failed == nil {
			b.failed = err
		}
		if err == nil {
			b.rtts = append(b.rtts, rtt)
		}
		b.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func roundTrip(ws *websocket.Conn) (time.Duration, error) {
	start := time.Now()
	ws.SetWriteDeadline(start.Add(wait))
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping"}`)); err != nil {
		return 0, err
	}
	ws.SetReadDeadline(start.Add(wait))
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return 0, err
		}
		switch {
		case strings.Contains(string(data), `"type":"pong"`):
			return time.Since(start), nil
		case strings.Contains(string(data), `"type":"ping"`):
			ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"pong"}`))
		}
	}
}

// take returns the p99 of the round trips since the last take, and how
// many there were.
func (b *bystanders) take(t *testing.T) (time.Duration, int) {
	t.Helper()
	b.mu.Lock()
	rtts, failed := b.rtts, b.failed
	b.rtts = nil
	b.mu.Unlock()
	if failed != nil {
		t.Fatalf("a bystander lost its connection: %v", failed)
	}
	if len(rtts) == 0 {
		t.Fatal("no bystander round trip measured")
	}
	slices.Sort(rtts)
	return rtts[(len(rtts)*99)/100], len(rtts)
}
