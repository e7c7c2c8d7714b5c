package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// On start, serve says where to point a browser and who can reach it.
func TestServePrintsURLs(t *testing.T) {
	out := newOutput()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0"}, out, io.Discard) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	i := out.await(t, 0, "open http://localhost:", "/ in a browser; demos at /chat/, /dashboard/, /game/")
	out.await(t, i, "pulse.v1 ws://localhost:", "/ws", "echo ws://localhost:")
	out.await(t, i, "listening on 127.0.0.1:", "this machine only; --addr :")
}

// A refused Origin gets a 403 naming --allow-origin, and is logged with
// the remote address.
func TestForeignOriginRefusalLogged(t *testing.T) {
	s := startServe(t)
	d := websocket.Dialer{HandshakeTimeout: wait}
	ws, resp, err := d.Dial(s.url("ws", "/ws"), http.Header{"Origin": {"https://evil.example"}})
	if err == nil {
		ws.Close()
		t.Fatal("a foreign origin connected")
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "--allow-origin https://evil.example") {
		t.Fatalf("foreign origin: %s %q, want 403 naming --allow-origin", resp.Status, body)
	}
	s.logs.await(t, "level=WARN", "request refused", "status=403", "https://evil.example", "remote=127.0.0.1:", "path=/ws")
}

// Loopback spellings are one host for a request that came to loopback.
func TestLoopbackOriginsAreSameHost(t *testing.T) {
	s := startServe(t)
	_, port, _ := net.SplitHostPort(s.addr)
	d := websocket.Dialer{HandshakeTimeout: wait}
	for origin, want := range map[string]bool{
		"http://localhost:" + port:   true,
		"http://[::1]:" + port:       true,
		"http://127.0.0.1:" + port:   true,
		"http://localhost:1":         false,
		"http://example.com:" + port: false,
	} {
		ws, resp, err := d.Dial(s.url("ws", "/echo"), http.Header{"Origin": {origin}})
		if err == nil {
			ws.Close()
		}
		if got := err == nil; got != want {
			t.Errorf("Origin %s: connected %v (%v, response %s), want %v", origin, got, err, status(resp), want)
		}
	}
}

// Bad handshakes are refused with 400 and logged by the library, at most
// refusalBurst lines per window; a wrong API key is logged too.
func TestRefusalsLoggedWithinBound(t *testing.T) {
	s := startServe(t, "--api-key", "s3cret")
	for range refusalBurst + 5 {
		code, body := get(t, s.url("http", "/echo")) // not a WebSocket handshake
		if code != http.StatusBadRequest || !strings.Contains(body, "upgrade") {
			t.Fatalf("GET /echo = %d %q, want 400 naming the missing upgrade", code, body)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, s.url("http", "/api/publish"), strings.NewReader(`{"channel":"x","data":1}`))
	req.Header.Set("Authorization", "Bearer wrong")
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// The API refusal is logged after every /echo refusal was.
	s.logs.await(t, "request refused", "status=401", "wrong API key", "remote=", "path=/api/publish")
	if n := s.logs.count("websocket request refused", "status=400", "path=/echo", "remote=127.0.0.1:"); n != refusalBurst {
		t.Fatalf("%d refusals of /echo logged, want %d (the bound)\n%s", n, refusalBurst, s.logs)
	}
}
