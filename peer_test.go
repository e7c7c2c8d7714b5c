package pulse

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Real-socket test helpers: a pulse server on httptest, and a gorilla
// client that answers heartbeats of its kind, as a well-behaved peer does.

// closeEvent is a connection's end as the server's OnClose saw it.
type closeEvent struct {
	conn *Conn
	err  *CloseError
	at   time.Time
}

// liveServer is a running Server behind an httptest server: /echo echoes,
// and every close is reported on closes.
type liveServer struct {
	srv    *Server
	http   *httptest.Server
	opens  chan *Conn
	closes chan closeEvent
}

// onEngines runs test on each engine, as a subtest named after it.
func onEngines(t *testing.T, test func(t *testing.T, e Engine)) {
	for _, e := range engines {
		t.Run(e.String(), func(t *testing.T) { test(t, e) })
	}
}

// startLive starts a live server on engine e with options o (nil: defaults).
func startLive(t *testing.T, e Engine, o *Options) *liveServer {
	t.Helper()
	opts := Options{}
	if o != nil {
		opts = *o
	}
	opts.Engine = e
	l := &liveServer{srv: newTestServer(t, &opts), opens: make(chan *Conn, 1000), closes: make(chan closeEvent, 1000)}
	echo := Funcs{
		Open:    func(c *Conn) { l.opens <- c },
		Receive: func(c *Conn, m Message) { c.Send(m) },
		Closed:  func(c *Conn, err *CloseError) { l.closes <- closeEvent{c, err, time.Now()} },
	}
	mux := http.NewServeMux()
	mux.Handle("/echo", l.srv.Handler(speaker{echo})) // speaks pulse.v1 to those who ask
	l.http = httptest.NewServer(mux)
	runServer(t, l.srv)
	t.Cleanup(l.http.Close) // runs before Run's cleanup: drain sees no listener
	return l
}

// url is the WebSocket URL of path on the server, or through proxyAddr.
func (l *liveServer) url(path, proxyAddr string) string {
	host := strings.TrimPrefix(l.http.URL, "http://")
	if proxyAddr != "" {
		host = proxyAddr
	}
	return "ws://" + host + path
}

// testPeer is a client connection whose reader answers the heartbeats of
// its kind and hands every other message to msgs.
type testPeer struct {
	ws    *websocket.Conn
	kind  HeartbeatKind
	msgs  chan Message
	beats chan struct{} // one per heartbeat answered
	done  chan struct{} // closed when the reader has ended; err is then set
	err   error

	mu sync.Mutex // serialises writes, as gorilla requires
}

func dialPeer(t *testing.T, url string, kind HeartbeatKind, subprotocols ...string) *testPeer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := websocket.Dialer{Subprotocols: subprotocols}
	ws, resp, err := d.DialContext(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	resp.Body.Close()
	p := &testPeer{ws: ws, kind: kind, msgs: make(chan Message, 10000), beats: make(chan struct{}, 1000), done: make(chan struct{})}
	ws.SetPingHandler(func(data string) error {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.beat()
		return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(5*time.Second))
	})
	go p.read()
	t.Cleanup(func() {
		ws.Close()
		<-p.done
	})
	return p
}

func (p *testPeer) read() {
	defer close(p.done)
	for {
		op, data, err := p.ws.ReadMessage()
		if err != nil {
			p.err = err
			return
		}
		switch {
		case p.kind == HeartbeatText && string(data) == "ping":
			p.send(websocket.TextMessage, textPong)
			p.beat()
		case p.kind == HeartbeatApp && appHeartbeat(data) == "ping":
			p.send(websocket.TextMessage, appPong)
			p.beat()
		default:
			p.msgs <- Message{Type: MessageType(op), Data: data}
		}
	}
}

func (p *testPeer) beat() {
	select {
	case p.beats <- struct{}{}:
	default:
	}
}

// awaitBeats waits until p has answered n heartbeats.
func (p *testPeer) awaitBeats(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-p.beats:
		case <-p.done:
			t.Fatalf("connection ended while waiting for heartbeats: %v", p.err)
		case <-time.After(10 * time.Second):
			t.Fatal("no heartbeat within 10s")
		}
	}
}

func (p *testPeer) send(op int, data []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return p.ws.WriteMessage(op, data)
}

// next returns the next data message, failing the test after a while.
func (p *testPeer) next(t *testing.T) Message {
	t.Helper()
	select {
	case m := <-p.msgs:
		return m
	case <-p.done:
		// The reader queued everything it read before it ended; select
		// picks among ready cases at random, so look at the queue again.
		select {
		case m := <-p.msgs:
			return m
		default:
		}
		t.Fatalf("connection ended while waiting for a message: %v", p.err)
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10s")
	}
	return Message{}
}

// closeCode waits for the reader to end and returns the close code the
// server sent, or CloseAbnormal if it sent none.
func (p *testPeer) closeCode(t *testing.T) CloseCode {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("connection still open after 10s")
	}
	if ce, ok := p.err.(*websocket.CloseError); ok {
		return CloseCode(ce.Code)
	}
	return CloseAbnormal
}

// nextClose waits for the server to report a closed connection.
func (l *liveServer) nextClose(t *testing.T) closeEvent {
	t.Helper()
	select {
	case e := <-l.closes:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no connection closed within 10s")
	}
	return closeEvent{}
}

// nextOpen waits for the server to report an opened connection.
func (l *liveServer) nextOpen(t *testing.T) *Conn {
	t.Helper()
	select {
	case c := <-l.opens:
		if got := engineOf(c); got != l.srv.opts.Engine {
			t.Fatalf("connection on engine %v, want %v", got, l.srv.opts.Engine)
		}
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no connection opened within 10s")
	}
	return nil
}
