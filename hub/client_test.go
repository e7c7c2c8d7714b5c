package hub

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pulse-go/pulse"
	"github.com/pulse-go/pulse/chaos"
	"github.com/pulse-go/pulse/wire"
)

// Real-socket helpers: a pulse server with a hub behind httptest, and a
// pulse.v1 test client that answers heartbeats.

type testEnv struct {
	srv    *pulse.Server
	hub    *Hub
	broker *Memory
	http   *httptest.Server
	closes chan *pulse.CloseError // every connection's end, as the server saw it
}

func startHub(t *testing.T, po *pulse.Options, mo *MemoryOptions, ho *Options) *testEnv {
	t.Helper()
	if po == nil {
		po = &pulse.Options{}
	}
	po.Logger = slog.New(slog.DiscardHandler)
	if po.Engine == 0 {
		po.Engine = testEngine(t)
	}
	po.DrainWindow = 10 * time.Millisecond
	srv, err := pulse.NewServer(po)
	if err != nil {
		t.Fatal(err)
	}
	if ho == nil {
		ho = &Options{}
	}
	env := &testEnv{srv: srv, broker: NewMemory(mo), closes: make(chan *pulse.CloseError, 1000)}
	if ho.Broker == nil {
		ho.Broker = env.broker
	}
	ho.Logger = slog.New(slog.DiscardHandler)
	env.hub = New(ho)
	mux := http.NewServeMux()
	mux.Handle("/ws", srv.Handler(recorder{env.hub, env.closes}))
	mux.Handle("/api/publish", env.hub.PublishHandler("secret"))
	env.http = httptest.NewServer(mux)
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- srv.Run(ctx) }()
	t.Cleanup(func() {
		env.http.Close()
		cancel()
		if err := <-runDone; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return env
}

// recorder is the hub as a handler whose sessions report how they ended.
type recorder struct {
	*Hub
	closes chan<- *pulse.CloseError
}

func (r recorder) Accept(req *http.Request) (pulse.Session, error) {
	s, err := r.Hub.Accept(req)
	return recordedSession{s, r.closes}, err
}

type recordedSession struct {
	pulse.Session
	closes chan<- *pulse.CloseError
}

func (s recordedSession) Closed(err *pulse.CloseError) {
	s.Session.Closed(err)
	s.closes <- err
}

// testEngine is the engine the hub's tests run on: $PULSE_TEST_ENGINE
// (std or epoll; scripts/test.sh runs the package on each), else std.
func testEngine(t *testing.T) pulse.Engine {
	var e pulse.Engine
	if name := os.Getenv("PULSE_TEST_ENGINE"); name != "" {
		if err := e.UnmarshalText([]byte(name)); err != nil {
			t.Fatalf("PULSE_TEST_ENGINE: %v", err)
		}
	}
	return e
}

// addr is the host:port of the server.
func (e *testEnv) addr() string { return strings.TrimPrefix(e.http.URL, "http://") }

// proxy starts a fault proxy in front of the server.
func (e *testEnv) proxy(t *testing.T) *chaos.Proxy {
	t.Helper()
	p, err := chaos.Listen("127.0.0.1:0", e.addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// testClient is a pulse.v1 client: its reader answers the app heartbeat and
// queues every other message.
type testClient struct {
	ws      *websocket.Conn
	welcome wire.Welcome
	in      chan wire.Msg
	done    chan struct{} // closed when the reader ends; err is then set
	err     error
	mu      sync.Mutex // serialises writes
}

// dial connects to the hub at host (the server, or a proxy in front of it)
// and reads the welcome.
func dial(t *testing.T, host string) *testClient {
	t.Helper()
	c, _ := dialWith(t, host, false)
	return c
}

// dialWith is dial, offering permessage-deflate when compress is set; it
// returns the server's handshake answer too.
func dialWith(t *testing.T, host string, compress bool) (*testClient, *http.Response) {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{pulse.Subprotocol}, HandshakeTimeout: 5 * time.Second, EnableCompression: compress}
	ws, resp, err := d.Dial("ws://"+host+"/ws", nil)
	if err != nil {
		t.Fatalf("dial %s: %v", host, err)
	}
	resp.Body.Close()
	c := &testClient{ws: ws, in: make(chan wire.Msg, 100000), done: make(chan struct{})}
	go c.read()
	t.Cleanup(func() {
		ws.Close()
		<-c.done
	})
	c.welcome = expect[wire.Welcome](t, c)
	return c, resp
}

func (c *testClient) read() {
	defer close(c.done)
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			c.err = err
			return
		}
		m, err := wire.DecodeServer(data)
		if err != nil {
			c.err = err
			return
		}
		if _, ok := m.(wire.Ping); ok {
			c.sendRaw([]byte(`{"type":"pong"}`))
			continue
		}
		c.in <- m
	}
}

func (c *testClient) sendRaw(data []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.ws.WriteMessage(websocket.TextMessage, data)
}

func (c *testClient) send(t *testing.T, m wire.Msg) {
	t.Helper()
	data, err := wire.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.sendRaw(data); err != nil {
		t.Fatalf("send: %v", err)
	}
}

// next returns the next message from the server.
func (c *testClient) next(t *testing.T) wire.Msg {
	t.Helper()
	select {
	case m := <-c.in:
		return m
	case <-c.done:
		// The reader queued everything it read before it ended; select
		// picks among ready cases at random, so look at the queue again.
		select {
		case m := <-c.in:
			return m
		default:
		}
		t.Fatalf("connection ended while waiting for a message: %v", c.err)
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10s")
	}
	return nil
}

// expect returns c's next message, which must be a T.
func expect[T wire.Msg](t *testing.T, c *testClient) T {
	t.Helper()
	m := c.next(t)
	typed, ok := m.(T)
	if !ok {
		t.Fatalf("got %T %+v, want a %q message", m, m, typed.MsgType())
	}
	return typed
}

// subscribe subscribes and returns the answer.
func (c *testClient) subscribe(t *testing.T, channel string, since *Position, presence bool) wire.Subscribed {
	t.Helper()
	c.send(t, wire.Subscribe{ID: 1, Channel: channel, Since: since, Presence: presence})
	return expect[wire.Subscribed](t, c)
}

// closeCode waits for the connection to end and returns the server's code.
func (c *testClient) closeCode(t *testing.T) int {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("connection still open after 10s")
	}
	if ce, ok := c.err.(*websocket.CloseError); ok {
		return ce.Code
	}
	return int(pulse.CloseAbnormal)
}
