package pulse

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Many goroutines send to one connection while heartbeats run every few
// milliseconds: every message arrives whole, each sender's in order, and
// the client's frame parser never sees an interleaved frame.
func TestConcurrentSendsWithHeartbeats(t *testing.T) { onEngines(t, testConcurrentSendsWithHeartbeats) }

func testConcurrentSendsWithHeartbeats(t *testing.T, engine Engine) {
	for _, kind := range allKinds {
		t.Run(kind.String(), func(t *testing.T) {
			l := startLive(t, engine, &Options{Interval: 20 * time.Millisecond, Timeout: time.Second, QueueSize: 1 << 16})
			p := dialPeer(t, l.url("/echo?heartbeat="+kind.String(), ""), kind)
			c := l.nextOpen(t)
			const senders, each = 16, 300
			var wg sync.WaitGroup
			for g := range senders {
				wg.Go(func() {
					for i := range each {
						body := fmt.Sprintf("%02d:%04d:", g, i) + strings.Repeat("x", 100+i%900)
						if err := c.Send(Message{Type: MessageText, Data: []byte(body)}); err != nil {
							t.Errorf("send: %v", err)
							return
						}
					}
				})
			}
			wg.Wait()
			nextIndex := make([]int, senders)
			for range senders * each {
				m := p.next(t)
				var g, i int
				if _, err := fmt.Sscanf(string(m.Data[:8]), "%02d:%04d:", &g, &i); err != nil {
					t.Fatalf("garbled message %.40q: %v", m.Data, err)
				}
				if i != nextIndex[g] || len(m.Data) != 8+100+i%900 {
					t.Fatalf("sender %d: got message %d of %d bytes, want message %d", g, i, len(m.Data), nextIndex[g])
				}
				nextIndex[g]++
			}
		})
	}
}

func TestOversizedMessageClosed(t *testing.T) { onEngines(t, testOversizedMessageClosed) }

func testOversizedMessageClosed(t *testing.T, engine Engine) {
	l := startLive(t, engine, &Options{MaxMessageSize: 1024})
	bystander := dialPeer(t, l.url("/echo", ""), HeartbeatFrame)
	p := dialPeer(t, l.url("/echo", ""), HeartbeatFrame)
	p.send(websocket.BinaryMessage, make([]byte, 1024)) // at the limit: fine
	if m := p.next(t); len(m.Data) != 1024 {
		t.Fatalf("echo of %d bytes, want 1024", len(m.Data))
	}
	p.send(websocket.BinaryMessage, make([]byte, 1025))
	if code := p.closeCode(t); code != CloseMessageTooBig {
		t.Fatalf("close code %v, want %v", code, CloseMessageTooBig)
	}
	assertEchoes(t, bystander)
}

func TestInvalidUTF8Closed(t *testing.T) { onEngines(t, testInvalidUTF8Closed) }

func testInvalidUTF8Closed(t *testing.T, engine Engine) {
	l := startLive(t, engine, nil)
	bystander := dialPeer(t, l.url("/echo", ""), HeartbeatFrame)
	p := dialPeer(t, l.url("/echo", ""), HeartbeatFrame)
	p.send(websocket.TextMessage, []byte("ok \xff\xfe"))
	if code := p.closeCode(t); code != CloseInvalidPayload {
		t.Fatalf("close code %v, want %v", code, CloseInvalidPayload)
	}
	assertEchoes(t, bystander)
}

// assertEchoes checks that p's connection still works.
func assertEchoes(t *testing.T, p *testPeer) {
	t.Helper()
	want := []byte("still here")
	if err := p.send(websocket.TextMessage, want); err != nil {
		t.Fatal(err)
	}
	if m := p.next(t); !bytes.Equal(m.Data, want) {
		t.Fatalf("echo %q, want %q", m.Data, want)
	}
}

// A peer that stops reading fills its queue and is cut as a slow consumer;
// Send never blocks while that happens.
func TestSlowConsumerClosed(t *testing.T) { onEngines(t, testSlowConsumerClosed) }

func testSlowConsumerClosed(t *testing.T, engine Engine) {
	l := startLive(t, engine, &Options{QueueSize: 8, WriteTimeout: 500 * time.Millisecond})
	d := websocket.Dialer{}
	ws, _, err := d.Dial(l.url("/echo", ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close() // never read: the kernel buffers fill, then the queue
	c := l.nextOpen(t)
	big := Message{Type: MessageBinary, Data: make([]byte, 256<<10)}
	var sendErr error
	for i := 0; sendErr == nil && i < 10000; i++ {
		sendErr = c.Send(big)
	}
	if sendErr != ErrSlowConsumer && sendErr != ErrClosed {
		t.Fatalf("Send kept succeeding or failed with %v; want ErrSlowConsumer", sendErr)
	}
	e := l.nextClose(t)
	if e.err.Code != CloseSlowConsumer {
		t.Fatalf("closed with %v, want %v", e.err, CloseSlowConsumer)
	}
}

func TestHeartbeatKindChoice(t *testing.T) { onEngines(t, testHeartbeatKindChoice) }

func testHeartbeatKindChoice(t *testing.T, engine Engine) {
	l := startLive(t, engine, &Options{Heartbeat: HeartbeatText})
	cases := []struct {
		query, subprotocol string
		status             int
		kind               HeartbeatKind
	}{
		{"", "", http.StatusSwitchingProtocols, HeartbeatText},
		{"?heartbeat=frame", "", http.StatusSwitchingProtocols, HeartbeatFrame},
		{"?heartbeat=app", "", http.StatusSwitchingProtocols, HeartbeatApp},
		{"", Subprotocol, http.StatusSwitchingProtocols, HeartbeatApp},
		{"?heartbeat=app", Subprotocol, http.StatusSwitchingProtocols, HeartbeatApp},
		{"?heartbeat=text", Subprotocol, http.StatusBadRequest, 0},
		{"?heartbeat=bogus", "", http.StatusBadRequest, 0},
	}
	for _, tc := range cases {
		t.Run(tc.query+"+"+tc.subprotocol, func(t *testing.T) {
			d := websocket.Dialer{}
			if tc.subprotocol != "" {
				d.Subprotocols = []string{tc.subprotocol}
			}
			ws, resp, err := d.Dial(l.url("/echo"+tc.query, ""), nil)
			if resp == nil || resp.StatusCode != tc.status {
				t.Fatalf("status %v (err %v), want %d", resp, err, tc.status)
			}
			if err != nil {
				return
			}
			defer ws.Close()
			c := l.nextOpen(t)
			if c.Heartbeat() != tc.kind {
				t.Fatalf("kind %v, want %v", c.Heartbeat(), tc.kind)
			}
			want := heartbeatHeader(tc.kind, DefaultInterval, DefaultTimeout)
			if got := resp.Header.Get("Pulse-Heartbeat"); got != want {
				t.Fatalf("Pulse-Heartbeat %q, want %q", got, want)
			}
		})
	}
}

// A client's own ping, of any kind, is answered.
func TestClientPingsAnswered(t *testing.T) { onEngines(t, testClientPingsAnswered) }

func testClientPingsAnswered(t *testing.T, engine Engine) {
	l := startLive(t, engine, nil)
	text := dialPeer(t, l.url("/echo?heartbeat=text", ""), 0)
	text.send(websocket.TextMessage, []byte("ping"))
	if m := text.next(t); string(m.Data) != "pong" {
		t.Fatalf("text ping answered with %q", m.Data)
	}
	app := dialPeer(t, l.url("/echo", ""), 0, Subprotocol)
	app.send(websocket.TextMessage, appPing)
	if m := app.next(t); string(m.Data) != string(appPong) {
		t.Fatalf("app ping answered with %q", m.Data)
	}
	pongs := make(chan string, 1)
	frame := dialPeer(t, l.url("/echo", ""), 0)
	frame.ws.SetPongHandler(func(data string) error { pongs <- data; return nil })
	frame.mu.Lock()
	frame.ws.WriteControl(websocket.PingMessage, []byte("hi"), time.Now().Add(time.Second))
	frame.mu.Unlock()
	select {
	case data := <-pongs:
		if data != "hi" {
			t.Fatalf("pong payload %q, want %q", data, "hi")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ping frame not answered")
	}
}

// Ending Run closes every connection with CloseServiceRestart and a retry
// window, and refuses new ones.
func TestDrainClosesWithRestart(t *testing.T) { onEngines(t, testDrainClosesWithRestart) }

func testDrainClosesWithRestart(t *testing.T, engine Engine) {
	l := startLive(t, engine, &Options{DrainWindow: 200 * time.Millisecond})
	peers := []*testPeer{dialPeer(t, l.url("/echo", ""), HeartbeatFrame), dialPeer(t, l.url("/echo", ""), HeartbeatFrame)}
	for range peers {
		l.nextOpen(t)
	}
	runDone := make(chan error, 1)
	go func() { runDone <- l.srv.drain() }()
	for _, p := range peers {
		if code := p.closeCode(t); code != CloseServiceRestart {
			t.Fatalf("close code %v, want %v", code, CloseServiceRestart)
		}
		if ce := p.err.(*websocket.CloseError); ParseRetry(ce.Text) != 200*time.Millisecond {
			t.Fatalf("close reason %q carries no 200ms retry window", ce.Text)
		}
	}
	if err := <-runDone; err != nil {
		t.Fatal(err)
	}
	_, resp, err := websocket.DefaultDialer.Dial(l.url("/echo", ""), nil)
	if err == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial while draining: %v, want 503", err)
	}
}

// The application's Close sends what was queued, then its code and reason.
func TestApplicationClose(t *testing.T) { onEngines(t, testApplicationClose) }

func testApplicationClose(t *testing.T, engine Engine) {
	l := startLive(t, engine, nil)
	p := dialPeer(t, l.url("/echo", ""), HeartbeatFrame)
	c := l.nextOpen(t)
	if err := c.Close(CloseAbnormal, "not sendable"); err == nil {
		t.Fatal("Close(1006) accepted")
	}
	c.Send(Message{Type: MessageText, Data: []byte("last words")})
	if err := c.Close(CloseNormal, "done"); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(CloseNormal, "again"); err != ErrClosed {
		t.Fatalf("second Close: %v, want ErrClosed", err)
	}
	if m := p.next(t); string(m.Data) != "last words" {
		t.Fatalf("got %q before the close, want the queued message", m.Data)
	}
	if code := p.closeCode(t); code != CloseNormal {
		t.Fatalf("close code %v, want %v", code, CloseNormal)
	}
	if e := l.nextClose(t); e.err.Code != CloseNormal || e.err.Reason != "done" {
		t.Fatalf("OnClose got %v", e.err)
	}
}
