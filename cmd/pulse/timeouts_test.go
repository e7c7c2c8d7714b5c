package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The HTTP server's timeouts: idle keep-alive connections are closed, and
// WebSockets outlive the bounds of plain requests.

// startDaemon runs a daemon configured by flags, after shorten has changed
// its http.Server (nothing runs yet), and returns its address. The cleanup
// stops it and checks that run returned nil.
func startDaemon(t *testing.T, shorten func(*http.Server), flags ...string) string {
	t.Helper()
	cfg, err := parseServeFlags(flags, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	d, err := newDaemon(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	shorten(d.http)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := goResult(func() error { return d.run(ctx, ln) })
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return ln.Addr().String()
}

// A keep-alive connection that stays idle after a request is closed by the
// server once IdleTimeout has passed.
func TestIdleKeepAliveClosed(t *testing.T) {
	const idle = 100 * time.Millisecond
	addr := startDaemon(t, func(s *http.Server) {
		if s.IdleTimeout <= 0 {
			t.Fatal("the HTTP server has no IdleTimeout: idle keep-alive connections are held forever")
		}
		s.IdleTimeout = idle // the same rule, fast
	})
	conn, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(wait))
	io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: pulse\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("GET /healthz = %s %q, close %v; want 200 on a kept-alive connection", resp.Status, body, resp.Close)
	}
	answered := time.Now()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: read %v, want EOF from the server's close", err)
	}
	if since := time.Since(answered); since < idle/2 {
		t.Fatalf("closed %v after the answer, before the idle timeout %v", since, idle)
	}
	t.Logf("idle keep-alive connection closed %v after its answer (IdleTimeout %v)", time.Since(answered).Round(time.Millisecond), idle)
}

// A WebSocket lives on past ReadTimeout, WriteTimeout and IdleTimeout: the
// upgrade clears the deadlines the HTTP server set on the connection.
func TestWebSocketOutlivesHTTPTimeouts(t *testing.T) {
	const bound = 50 * time.Millisecond
	addr := startDaemon(t, func(s *http.Server) {
		s.ReadTimeout, s.WriteTimeout, s.IdleTimeout = bound, bound, bound
	}, "--drain-window", "10ms")
	ws := dial(t, "ws://"+addr+"/echo")
	opened := time.Now()
	echoes := 0
	for time.Since(opened) < 5*bound { // each round trip is an event; no sleep
		write(t, ws, websocket.TextMessage, "still here")
		if _, data := read(t, ws); string(data) != "still here" {
			t.Fatalf("echo %q", data)
		}
		echoes++
	}
	t.Logf("%d echoes over %v with HTTP timeouts of %v", echoes, time.Since(opened).Round(time.Millisecond), bound)
}
