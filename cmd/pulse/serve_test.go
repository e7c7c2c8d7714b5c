package main

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestHealthz(t *testing.T) {
	s := startServe(t)
	code, body := get(t, s.url("http", "/healthz"))
	if code != http.StatusOK || body != "ok" {
		t.Fatalf("GET /healthz = %d %q, want 200 \"ok\"", code, body)
	}
}

func TestMetrics(t *testing.T) {
	s := startServe(t)
	ws := dial(t, s.url("ws", "/echo"))
	write(t, ws, websocket.TextMessage, "hi")
	read(t, ws) // the connection is open and counted
	code, body := get(t, s.url("http", "/metrics"))
	if code != http.StatusOK {
		t.Fatalf("GET /metrics = %d", code)
	}
	for _, want := range []string{
		"pulse_connections 1",
		"pulse_disconnects_total{",
		"pulse_heartbeat_rtt_seconds_bucket{",
		`pulse_pings_sent_total{kind="frame"}`,
		`pulse_pongs_received_total{kind="frame"}`,
		"go_goroutines ",
		"process_cpu_seconds_total ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestEcho(t *testing.T) {
	s := startServe(t)
	ws := dial(t, s.url("ws", "/echo"))
	for _, m := range []struct {
		kind int
		data string
	}{
		{websocket.TextMessage, "hello"},
		{websocket.BinaryMessage, "\x00\x01\xfe\xff"},
		{websocket.TextMessage, "ping"}, // a frame-heartbeat connection echoes it too
	} {
		write(t, ws, m.kind, m.data)
		kind, data := read(t, ws)
		if kind != m.kind || string(data) != m.data {
			t.Errorf("echo of %d %q = %d %q", m.kind, m.data, kind, data)
		}
	}
}

// /ws speaks pulse.v1: a publish reaches a subscriber, and channels
// starting with $ are the server's to publish.
func TestHubChannels(t *testing.T) {
	s := startServe(t)
	sub := dial(t, s.url("ws", "/ws"))
	readUntil(t, sub, `"type":"welcome"`)
	write(t, sub, websocket.TextMessage, `{"type":"subscribe","id":1,"channel":"room"}`)
	readUntil(t, sub, `"type":"subscribed"`)
	pub := dial(t, s.url("ws", "/ws"))
	write(t, pub, websocket.TextMessage, `{"type":"publish","id":2,"channel":"room","key":"k1","data":{"text":"hi"}}`)
	readUntil(t, pub, `"type":"ack","id":2`)
	readUntil(t, sub, `"data":{"text":"hi"}`)
	write(t, pub, websocket.TextMessage, `{"type":"publish","id":3,"channel":"$news","data":1}`)
	readUntil(t, pub, `"code":"forbidden"`)
}

// The publish API takes the --api-key bearer key.
func TestPublishAPI(t *testing.T) {
	s := startServe(t, "--api-key", "s3cret")
	sub := dial(t, s.url("ws", "/ws"))
	write(t, sub, websocket.TextMessage, `{"type":"subscribe","id":1,"channel":"$news"}`)
	readUntil(t, sub, `"type":"subscribed"`)
	for key, want := range map[string]int{"wrong": http.StatusUnauthorized, "s3cret": http.StatusOK} {
		req, _ := http.NewRequest(http.MethodPost, s.url("http", "/api/publish"), strings.NewReader(`{"channel":"$news","data":"extra"}`))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("key %q: status %d, want %d", key, resp.StatusCode, want)
		}
	}
	readUntil(t, sub, `"data":"extra"`)
}

// readUntil reads ws until a message containing want arrives.
func readUntil(t *testing.T, ws *websocket.Conn, want string) {
	t.Helper()
	for {
		if _, data := read(t, ws); strings.Contains(string(data), want) {
			return
		}
	}
}

func TestBadHeartbeatParam(t *testing.T) {
	s := startServe(t)
	d := websocket.Dialer{HandshakeTimeout: wait}
	ws, resp, err := d.Dial(s.url("ws", "/ws?heartbeat=bogus"), nil)
	if err == nil {
		ws.Close()
		t.Fatal("dial with heartbeat=bogus succeeded")
	}
	if resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("dial with heartbeat=bogus: %v, response %s, want 400", err, status(resp))
	}
}

func TestTextHeartbeat(t *testing.T) {
	s := startServe(t, "--heartbeat", "text", "--ping-interval", "20ms", "--pong-timeout", "200ms")
	ws := dial(t, s.url("ws", "/echo"))
	// Reading without answering: the pings come, then the server gives up.
	ws.SetReadDeadline(time.Now().Add(wait))
	pings := 0
	for {
		kind, data, err := ws.ReadMessage()
		if err != nil {
			if !websocket.IsCloseError(err, 4000) {
				t.Fatalf("read after %d pings: %v, want close 4000 (heartbeat timeout)", pings, err)
			}
			break
		}
		if kind != websocket.TextMessage || string(data) != "ping" {
			t.Fatalf("heartbeat = %d %q, want text \"ping\"", kind, data)
		}
		pings++
	}
	if pings < 2 {
		t.Fatalf("closed after %d pings, want a ping every 20ms for 220ms", pings)
	}
}

func TestForeignOrigin(t *testing.T) {
	origin := http.Header{"Origin": {"https://elsewhere.example"}}
	d := websocket.Dialer{HandshakeTimeout: wait}
	s := startServe(t)
	if ws, resp, err := d.Dial(s.url("ws", "/echo"), origin); err == nil {
		ws.Close()
		t.Fatal("a foreign origin connected by default")
	} else if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: %v, response %s, want 403", err, status(resp))
	}
	allowed := startServe(t, "--allow-origin", "https://app.example, https://elsewhere.example")
	ws := dial(t, allowed.url("ws", "/echo")) // no Origin: not a browser
	ws.Close()
	ws, resp, err := d.Dial(allowed.url("ws", "/echo"), origin)
	if err != nil {
		t.Fatalf("allowed origin: %v, response %s", err, status(resp))
	}
	ws.Close()
}

func TestCancelDrains(t *testing.T) {
	s := startServe(t, "--drain-window", "50ms")
	ws := dial(t, s.url("ws", "/ws"))
	write(t, ws, websocket.TextMessage, "hi")
	read(t, ws) // the connection is open on the server
	s.cancel()
	ce := readClose(t, ws)
	if ce.Code != websocket.CloseServiceRestart {
		t.Fatalf("close = %v, want 1012 (service restart)", ce)
	}
	if !strings.Contains(ce.Text, "retry=50") {
		t.Errorf("close reason %q lacks the retry window", ce.Text)
	}
	if err := s.stop(t); err != nil {
		t.Fatalf("run = %v, want nil", err)
	}
}

func TestHealthzWhileDraining(t *testing.T) {
	cfg, err := parseServeFlags(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := newDaemon(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	d.draining.Store(true)
	rec := httptest.NewRecorder()
	d.healthz(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("healthz while draining = %d, want 503", rec.Code)
	}
}

func TestListenError(t *testing.T) {
	s := startServe(t)
	err := run(t.Context(), []string{"serve", "--addr", s.addr}, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("serve on a taken address = %v", err)
	}
}
