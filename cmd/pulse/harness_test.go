package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// wait bounds every wait on an event in these tests.
const wait = 10 * time.Second

// served is one "pulse serve" running in-process through run.
type served struct {
	addr   string
	cancel context.CancelFunc
	done   chan error    // receives run's result once
	logs   *logLines     // run's stderr
	once   sync.Once     // guards err
	err    error         // run's result, after stop
	logEnd chan struct{} // closed when stderr reached EOF
}

// startServe runs "pulse serve --addr 127.0.0.1:0 flags..." and returns
// once its "listening" line has been logged. The cleanup stops it and
// checks that run returned nil.
func startServe(t *testing.T, flags ...string) *served {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	// Later flags win: a test may set its own drain window.
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--log-level", "debug", "--drain-window", "100ms"}, flags...)
	pr, pw := io.Pipe()
	s := &served{cancel: cancel, done: make(chan error, 1), logs: &logLines{}, logEnd: make(chan struct{})}
	go func() {
		err := run(ctx, args, io.Discard, pw)
		pw.Close()
		s.done <- err
	}()
	addrs := make(chan string, 1)
	go func() {
		defer close(s.logEnd)
		s.logs.read(pr, addrs)
	}()
	t.Cleanup(func() {
		if err := s.stop(t); err != nil {
			t.Errorf("run: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", s.logs)
		}
	})
	select {
	case s.addr = <-addrs:
	case <-s.logEnd:
		t.Fatal("run ended without logging msg=listening")
	case <-time.After(wait):
		t.Fatal("no msg=listening line logged")
	}
	return s
}

// stop cancels run and returns its result; it may be called more than once.
func (s *served) stop(t *testing.T) error {
	t.Helper()
	s.once.Do(func() {
		s.cancel()
		select {
		case s.err = <-s.done:
		case <-time.After(wait):
			t.Fatal("run did not return after its context ended")
		}
		<-s.logEnd
	})
	return s.err
}

// url returns the address of path on the server for scheme (http or ws).
func (s *served) url(scheme, path string) string { return scheme + "://" + s.addr + path }

// logLines collects the lines a server logs.
type logLines struct {
	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced on every line; made by await
}

// await waits for a line containing every one of parts and returns it.
func (l *logLines) await(t *testing.T, parts ...string) string {
	t.Helper()
	deadline := time.After(wait)
	for {
		l.mu.Lock()
		for _, line := range l.lines {
			if containsAll(line, parts) {
				l.mu.Unlock()
				return line
			}
		}
		if l.changed == nil {
			l.changed = make(chan struct{})
		}
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no log line with %q within %v; log:\n%s", parts, wait, l)
		}
	}
}

// count returns how many lines contain every one of parts.
func (l *logLines) count(parts ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if containsAll(line, parts) {
			n++
		}
	}
	return n
}

// read collects lines from r until EOF and sends the address of the first
// "listening" line on addrs. It reads to the end so that the writer never
// blocks on the pipe.
func (l *logLines) read(r io.Reader, addrs chan<- string) {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			l.add(line)
			if addr, ok := listeningAddr(line); ok {
				select {
				case addrs <- addr:
				default:
				}
			}
		}
		if err != nil {
			return
		}
	}
}

func (l *logLines) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, strings.TrimRight(line, "\n"))
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// listeningAddr parses the address out of a "msg=listening addr=..." line.
func listeningAddr(line string) (string, bool) {
	fields := strings.Fields(line)
	var listening bool
	var addr string
	for _, f := range fields {
		switch {
		case f == "msg=listening":
			listening = true
		case strings.HasPrefix(f, "addr="):
			addr = strings.TrimPrefix(f, "addr=")
		}
	}
	return addr, listening && addr != ""
}

// dial opens a WebSocket to url; the test's cleanup closes it.
func dial(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: wait}
	ws, resp, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v (response %v)", url, err, status(resp))
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

func status(resp *http.Response) string {
	if resp == nil {
		return "none"
	}
	return resp.Status
}

// read returns the next message on ws, failing the test after wait.
func read(t *testing.T, ws *websocket.Conn) (int, []byte) {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(wait))
	kind, data, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return kind, data
}

// readClose reads until ws is closed and returns the close frame's error.
func readClose(t *testing.T, ws *websocket.Conn) *websocket.CloseError {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(wait))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("read: %v, want a close frame", err)
		}
		return ce
	}
}

// write sends one message on ws.
func write(t *testing.T, ws *websocket.Conn, kind int, data string) {
	t.Helper()
	ws.SetWriteDeadline(time.Now().Add(wait))
	if err := ws.WriteMessage(kind, []byte(data)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// get fetches url without keeping the connection alive, so that no client
// goroutine outlives the test.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: wait, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, string(body)
}
