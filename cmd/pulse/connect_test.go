package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pulse-go/pulse"
	"github.com/pulse-go/pulse/hub"
)

// "pulse connect" driven through stdin and stdout against a real server,
// in-process. The command reads the package variable commandStdin, which these
// tests replace; they do not run in parallel.

// output collects what a command writes, line by line, and lets a test
// wait for a line.
type output struct {
	mu      sync.Mutex
	lines   []string
	partial string
	changed chan struct{} // closed and replaced on every write
}

func newOutput() *output { return &output{changed: make(chan struct{})} }

func (o *output) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	text := o.partial + string(b)
	parts := strings.Split(text, "\n")
	o.lines = append(o.lines, parts[:len(parts)-1]...)
	o.partial = parts[len(parts)-1]
	close(o.changed)
	o.changed = make(chan struct{})
	return len(b), nil
}

// await waits for a line containing every one of parts, at or after line
// from, and returns its index.
func (o *output) await(t *testing.T, from int, parts ...string) int {
	t.Helper()
	deadline := time.After(wait)
	for {
		o.mu.Lock()
		for i := from; i < len(o.lines); i++ {
			if containsAll(o.lines[i], parts) {
				o.mu.Unlock()
				return i
			}
		}
		changed := o.changed
		o.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no line with %q within %v; output:\n%s", parts, wait, o)
		}
	}
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.lines, "\n") + o.partial
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// cmdRun is one run of the binary's run in the background.
type cmdRun struct {
	in       *io.PipeWriter
	out, err *output
	cancel   context.CancelFunc
	done     chan struct{} // closed when run returned; result is then set
	result   error
}

// startCommand runs "pulse args..." with stdin a pipe the test writes to.
// The cleanup closes stdin, cancels and joins run.
func startCommand(t *testing.T, args ...string) *cmdRun {
	t.Helper()
	pr, pw := io.Pipe()
	return startCommandReading(t, pr, pw, args...)
}

func startCommandReading(t *testing.T, r io.Reader, pw *io.PipeWriter, args ...string) *cmdRun {
	t.Helper()
	saved := commandStdin
	commandStdin = r
	ctx, cancel := context.WithCancel(context.Background())
	c := &cmdRun{in: pw, out: newOutput(), err: newOutput(), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		c.result = run(ctx, args, c.out, c.err)
	}()
	t.Cleanup(func() {
		if pw != nil {
			pw.Close()
		}
		cancel()
		<-c.done
		commandStdin = saved
		if t.Failed() {
			t.Logf("stdout:\n%s\nstderr:\n%s", c.out, c.err)
		}
	})
	return c
}

func (c *cmdRun) send(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(c.in, line+"\n"); err != nil {
		t.Fatalf("write %q to stdin: %v", line, err)
	}
}

// exit waits for run to return and gives its result.
func (c *cmdRun) exit(t *testing.T) error {
	t.Helper()
	select {
	case <-c.done:
		return c.result
	case <-time.After(wait):
		t.Fatal("run did not return")
	}
	return nil
}

// hubServer is a pulse.Server with a hub behind httptest.
type hubServer struct {
	url    string
	hub    *hub.Hub
	broker *hub.Memory
	opens  chan *pulse.Conn // every connection opened
}

func startHubServer(t *testing.T) *hubServer {
	t.Helper()
	srv, err := pulse.NewServer(&pulse.Options{Logger: slog.New(slog.DiscardHandler), DrainWindow: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s := &hubServer{broker: hub.NewMemory(nil), opens: make(chan *pulse.Conn, 100)}
	s.hub = hub.New(&hub.Options{Broker: s.broker, Logger: slog.New(slog.DiscardHandler)})
	s.url = startPulseHTTP(t, srv, srv.Handler(openRecorder{s.hub, s.opens}))
	return s
}

// openRecorder is the hub as a handler whose sessions report their
// connection once it is open.
type openRecorder struct {
	*hub.Hub
	opens chan<- *pulse.Conn
}

func (r openRecorder) Accept(req *http.Request) (pulse.Session, error) {
	s, err := r.Hub.Accept(req)
	return openedSession{s, r.opens}, err
}

type openedSession struct {
	pulse.Session
	opens chan<- *pulse.Conn
}

func (s openedSession) Open(c *pulse.Conn) {
	s.Session.Open(c)
	s.opens <- c
}

// startPulseHTTP serves handler with srv running; it returns the ws URL.
func startPulseHTTP(t *testing.T, srv *pulse.Server, handler http.Handler) string {
	t.Helper()
	ts := httptest.NewServer(handler)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Run(ctx)
	}()
	t.Cleanup(func() {
		ts.Close()
		cancel()
		<-done
	})
	return "ws" + strings.TrimPrefix(ts.URL, "http")
}

func (s *hubServer) publish(t *testing.T, channel, data string) {
	t.Helper()
	if _, err := s.hub.Publish(context.Background(), channel, []byte(data), hub.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestConnectInteractive(t *testing.T) {
	s := startHubServer(t)
	c := startCommand(t, "connect", "--channel", "room", s.url)
	c.err.await(t, 0, "open (generation 1)")
	c.err.await(t, 0, "subscribed room")
	s.publish(t, "room", `{"n":1}`)
	c.out.await(t, 0, `room {"n":1}`)

	c.send(t, `{"text":"hi"}`)
	c.out.await(t, 0, `room {"text":"hi"}`)
	c.err.await(t, 0, "ack room")
	c.send(t, "plain words")
	c.out.await(t, 0, `room "plain words"`)
	c.send(t, "/ping")
	c.err.await(t, 0, "rtt ")
	c.send(t, "/sub other")
	c.err.await(t, 0, "subscribed other")
	c.send(t, "/pub other {\"n\":2}")
	c.out.await(t, 0, `other {"n":2}`)
	c.send(t, "/state")
	c.err.await(t, 0, "open, generation 1")
	c.in.Close()
	if err := c.exit(t); err != nil {
		t.Fatalf("run after EOF: %v", err)
	}
}

// Piped: every line is published, acknowledged, then the command exits 0.
func TestConnectPiped(t *testing.T) {
	s := startHubServer(t)
	c := startCommandReading(t, strings.NewReader("one\n{\"n\":2}\nthree\n"), nil, "connect", "--publish", "news", s.url)
	if err := c.exit(t); err != nil {
		t.Fatalf("run: %v\n%s", err, c.err)
	}
	var got []string
	_, top, _ := s.broker.History(context.Background(), "news", hub.Position{})
	pubs, _, err := s.broker.History(context.Background(), "news", hub.Position{Epoch: top.Epoch})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pubs {
		got = append(got, string(p.Data))
	}
	if want := `"one" {"n":2} "three"`; strings.Join(got, " ") != want {
		t.Fatalf("published %v, want %s", got, want)
	}
	if n := strings.Count(c.err.String(), "ack news"); n != 3 {
		t.Fatalf("%d acks printed, want 3", n)
	}
}

// The server cuts the connection: the cmdRun shows the loss, reconnects
// and says the subscription resumed with nothing lost.
func TestConnectReconnects(t *testing.T) {
	s := startHubServer(t)
	c := startCommand(t, "connect", "--channel", "room", s.url)
	c.err.await(t, 0, "subscribed room")
	conn := <-s.opens
	conn.Close(pulse.CloseSlowConsumer, "test cut retry=50")
	lost := c.err.await(t, 0, "lost:", "4001", "reconnecting in")
	c.err.await(t, lost, "open (generation 2)")
	c.err.await(t, lost, "resumed room: missed messages replayed, nothing lost")
}

// A terminal close code ends the cmdRun with an error naming it.
func TestConnectTerminal(t *testing.T) {
	srv, err := pulse.NewServer(&pulse.Options{Logger: slog.New(slog.DiscardHandler), DrainWindow: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	url := startPulseHTTP(t, srv, srv.Handler(speaksPulse{pulse.Funcs{Open: func(c *pulse.Conn) { c.Close(4100, "banned") }}}))
	c := startCommand(t, "connect", url)
	err = c.exit(t)
	if err == nil || !strings.Contains(err.Error(), "4100") || !strings.Contains(err.Error(), "do not reconnect") {
		t.Fatalf("run: %v, want the terminal code 4100", err)
	}
}

// A plain WebSocket endpoint: lines go out as text, what comes back is
// printed, /ping measures the round trip with a ping frame.
func TestConnectRaw(t *testing.T) {
	srv, err := pulse.NewServer(&pulse.Options{Logger: slog.New(slog.DiscardHandler), DrainWindow: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	url := startPulseHTTP(t, srv, srv.Handler(pulse.Funcs{Receive: func(c *pulse.Conn, m pulse.Message) { c.Send(m) }}))
	c := startCommand(t, "connect", "--raw", url)
	c.err.await(t, 0, "open (plain WebSocket)")
	c.send(t, "hello there")
	c.out.await(t, 0, "hello there")
	c.send(t, "/ping")
	c.err.await(t, 0, "rtt ")
	c.in.Close()
	if err := c.exit(t); err != nil {
		t.Fatalf("run after EOF: %v", err)
	}
}

func TestConnectFlags(t *testing.T) {
	if _, err := parseConnectFlags([]string{"--channel", "a"}, io.Discard); err == nil || !strings.Contains(err.Error(), "missing URL") {
		t.Fatalf("no URL: %v", err)
	}
	cfg, err := parseConnectFlags([]string{"ws://x/ws", "--channel", "a", "--channel", "b"}, io.Discard)
	if err != nil || cfg.url != "ws://x/ws" || cfg.publishTo != "a" || len(cfg.channels) != 2 {
		t.Fatalf("%+v, %v", cfg, err)
	}
	if got := string(payload("hi")); got != `"hi"` {
		t.Fatalf("payload(hi) = %s", got)
	}
	if got := payload(`{"a":1}`); !json.Valid(got) || string(got) != `{"a":1}` {
		t.Fatalf("payload(JSON) = %s", got)
	}
}

// A server that does not accept pulse.v1 gets the plain WebSocket mode
// without --raw.
func TestConnectFallsBackToRaw(t *testing.T) {
	var upgrader websocket.Upgrader
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for {
			kind, data, err := ws.ReadMessage()
			if err != nil || ws.WriteMessage(kind, append([]byte("echo: "), data...)) != nil {
				return
			}
		}
	}))
	defer ts.Close()
	c := startCommand(t, "connect", "ws"+strings.TrimPrefix(ts.URL, "http"))
	c.err.await(t, 0, "does not speak pulse.v1")
	c.send(t, "hi")
	c.out.await(t, 0, "echo: hi")
	c.in.Close()
	if err := c.exit(t); err != nil {
		t.Fatalf("run after EOF: %v", err)
	}
}

// Piped lines that cannot be published make the command fail.
func TestConnectPipedFailureExitsNonZero(t *testing.T) {
	s := startHubServer(t)
	long := strings.Repeat("x", 201) // over the 200 bytes of a channel name
	c := startCommandReading(t, strings.NewReader("ok\n/pub "+long+" nope\n"), nil, "connect", "--publish", "news", s.url)
	err := c.exit(t)
	if err == nil || !strings.Contains(err.Error(), "connect: 1 publish failed") {
		t.Fatalf("run: %v, want one failed publish\n%s", err, c.err)
	}
	c.err.await(t, 0, "publish to "+long+" failed", "bad_request")
}
