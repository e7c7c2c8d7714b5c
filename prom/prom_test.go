package prom

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pulse-go/pulse"
)

// Each call lands in its series, under the documented names and help, and
// every reason and kind is exported from the start.
func TestObserverSeries(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	o := New(reg)
	o.Opened()
	o.Opened()
	o.Closed(pulse.DisconnectSlowConsumer)
	for range 3 {
		o.PingSent(pulse.HeartbeatText)
	}
	o.PingSent(pulse.HeartbeatFrame)
	o.PongReceived(pulse.HeartbeatText, 20*time.Millisecond)
	o.PongReceived(pulse.HeartbeatText, 30*time.Millisecond)
	o.PongReceived(pulse.HeartbeatKind(9), time.Second) // a kind New did not know

	want := `
# HELP pulse_connections Open WebSocket connections.
# TYPE pulse_connections gauge
pulse_connections 1
# HELP pulse_disconnects_total Ended connections by reason.
# TYPE pulse_disconnects_total counter
pulse_disconnects_total{reason="heartbeat_timeout"} 0
pulse_disconnects_total{reason="invalid_payload"} 0
pulse_disconnects_total{reason="message_too_big"} 0
pulse_disconnects_total{reason="peer_close"} 0
pulse_disconnects_total{reason="ping_flood"} 0
pulse_disconnects_total{reason="protocol_error"} 0
pulse_disconnects_total{reason="read_error"} 0
pulse_disconnects_total{reason="server_close"} 0
pulse_disconnects_total{reason="shutdown"} 0
pulse_disconnects_total{reason="slow_consumer"} 1
pulse_disconnects_total{reason="write_error"} 0
pulse_disconnects_total{reason="write_timeout"} 0
# HELP pulse_pings_sent_total Heartbeats written, by kind.
# TYPE pulse_pings_sent_total counter
pulse_pings_sent_total{kind="app"} 0
pulse_pings_sent_total{kind="frame"} 1
pulse_pings_sent_total{kind="text"} 3
# HELP pulse_pongs_received_total Heartbeat answers received, by kind.
# TYPE pulse_pongs_received_total counter
pulse_pongs_received_total{kind="HeartbeatKind(9)"} 1
pulse_pongs_received_total{kind="app"} 0
pulse_pongs_received_total{kind="frame"} 0
pulse_pongs_received_total{kind="text"} 2
`
	names := []string{"pulse_connections", "pulse_disconnects_total", "pulse_pings_sent_total", "pulse_pongs_received_total"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	if count, sum := rttSamples(t, reg); count != 3 || sum < 1.049 || sum > 1.051 {
		t.Fatalf("RTT histogram: %d samples summing to %vs, want 3 summing to 1.05s", count, sum)
	}
}

// rttSamples returns the sample count and sum of pulse_heartbeat_rtt_seconds.
func rttSamples(t *testing.T, reg prometheus.Gatherer) (uint64, float64) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, family := range families {
		if family.GetName() == "pulse_heartbeat_rtt_seconds" {
			h := family.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	t.Fatal("no pulse_heartbeat_rtt_seconds gathered")
	return 0, 0
}

// A real Server counts a real connection: opened, text heartbeats written
// and answered with their RTTs, and a read error when the client vanishes.
func TestObserverOnServer(t *testing.T) {
	reg := prometheus.NewRegistry()
	closed := make(chan struct{})
	srv := startServer(t, &pulse.Options{Interval: 20 * time.Millisecond, Timeout: time.Second, Observer: New(reg)},
		pulse.Funcs{Closed: func(*pulse.Conn, *pulse.CloseError) { close(closed) }})
	ws := dialText(t, srv.URL)
	answerPings(t, ws, 3)
	if got := value(t, reg, "pulse_connections", ""); got != 1 {
		t.Fatalf("pulse_connections %v with one client, want 1", got)
	}
	ws.Close() // no close frame: the server's read fails
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not see the client go within 10s")
	}
	// OnClose runs after the Observer has been told.
	if got := value(t, reg, "pulse_connections", ""); got != 0 {
		t.Fatalf("pulse_connections %v after the close, want 0", got)
	}
	if got := value(t, reg, "pulse_disconnects_total", "read_error"); got != 1 {
		t.Fatalf("pulse_disconnects_total{reason=read_error} %v, want 1", got)
	}
	// A pong is timed only against the latest ping; one that arrives after
	// the next ping was written leaves the next pong untimed and uncounted.
	pings := value(t, reg, "pulse_pings_sent_total", "text")
	pongs := value(t, reg, "pulse_pongs_received_total", "text")
	if pings < 3 || pongs < 1 || pongs > pings {
		t.Fatalf("%v text pings sent, %v pongs received; want at least 3 and 1, no more pongs than pings", pings, pongs)
	}
	if count, sum := rttSamples(t, reg); float64(count) != pongs || sum <= 0 {
		t.Fatalf("RTT histogram: %d samples summing to %vs, want one per pong (%v), positive", count, sum, pongs)
	}
}

// value returns the value of the gauge or counter name whose one label has
// the value label ("" for a series without labels).
func value(t *testing.T, reg prometheus.Gatherer, name, label string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, family := range families {
		if family.GetName() != name {
			continue
		}
		for _, m := range family.GetMetric() {
			if labels := m.GetLabel(); label == "" && len(labels) == 0 || len(labels) == 1 && labels[0].GetValue() == label {
				return m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no series %s{%s} gathered", name, label)
	return 0
}

// startServer runs a pulse Server with h on an httptest server until the
// test ends.
func startServer(t *testing.T, o *pulse.Options, h pulse.Handler) *httptest.Server {
	t.Helper()
	srv, err := pulse.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	hs := httptest.NewServer(srv.Handler(h))
	t.Cleanup(func() {
		hs.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return hs
}

// dialText connects to the server at url asking for text heartbeats.
func dialText(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(url, "http")+"/?heartbeat=text", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	t.Cleanup(func() { ws.Close() })
	return ws
}

// answerPings reads n "ping" messages and answers each with "pong".
func answerPings(t *testing.T, ws *websocket.Conn, n int) {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for range n {
		_, data, err := ws.ReadMessage()
		if err != nil || string(data) != "ping" {
			t.Fatalf("read %q, %v; want a ping", data, err)
		}
		if err := ws.WriteMessage(websocket.TextMessage, []byte("pong")); err != nil {
			t.Fatal(err)
		}
	}
}
