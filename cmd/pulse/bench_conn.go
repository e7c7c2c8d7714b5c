package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pulse-go/pulse"
	"github.com/pulse-go/pulse/wire"
)

// The connections of the scenarios idle, upgrades, latency and fanout: a
// lean WebSocket each, one goroutine reading, so that one process holds
// tens of thousands. (storm uses the real Go client instead.)

// Heartbeat messages of pulse.v1 (app kind) and of the text kind.
var (
	appPing  = []byte(`{"type":"ping"}`)
	appPong  = []byte(`{"type":"pong"}`)
	textPing = []byte("ping")
	textPong = []byte("pong")
)

// benchDialer opens the connections of one process.
type benchDialer struct {
	url   string
	raw   bool     // plain WebSocket; otherwise the subprotocol pulse.v1 and its welcome
	local net.Addr // source address, or nil for the system's choice
}

// counters are the figures every connection adds to. Each field is
// atomic: connections update them from their own goroutines.
type counters struct {
	open       atomic.Int64 // connections open now
	opened     atomic.Int64 // connections that completed the handshake
	failures   atomic.Int64 // dials that failed
	dropped    atomic.Int64 // connections that ended before the scenario closed them
	heartbeats atomic.Int64 // server heartbeats answered
	received   atomic.Int64 // other messages received
}

// benchConn is one connection. Writes take wmu: the reader answers
// heartbeats while a scenario's goroutine may send.
type benchConn struct {
	ws      *websocket.Conn
	wmu     sync.Mutex
	closing atomic.Bool // the scenario is closing it: its end is no drop
}

// dial opens one connection within timeout and returns it once it is
// usable: upgraded, and for pulse.v1 welcomed.
func (d *benchDialer) dial(ctx context.Context, timeout time.Duration) (*benchConn, error) {
	nd := &net.Dialer{LocalAddr: d.local, Timeout: timeout}
	wd := websocket.Dialer{NetDialContext: nd.DialContext, HandshakeTimeout: timeout, ReadBufferSize: 1024, WriteBufferSize: 1024}
	if !d.raw {
		wd.Subprotocols = []string{pulse.Subprotocol}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ws, resp, err := wd.DialContext(ctx, d.url, nil)
	if err != nil {
		return nil, explainDial(d.url, err, response(resp))
	}
	if d.raw {
		return &benchConn{ws: ws}, nil
	}
	if ws.Subprotocol() != pulse.Subprotocol {
		ws.Close()
		return nil, errNotPulse
	}
	return awaitWelcome(ws, timeout)
}

// response keeps what a refused upgrade's answer says: its status, the
// reason a pulse server writes as JSON, and Retry-After.
func response(resp *http.Response) *websocketResponse {
	if resp == nil {
		return nil
	}
	r := &websocketResponse{status: resp.Status, code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	if resp.Body != nil {
		var body struct{ Error string }
		json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&body)
		r.reason = body.Error
		resp.Body.Close()
	}
	return r
}

// awaitWelcome reads until pulse.v1's welcome. PROTOCOL.md has it first,
// but a server under load has been seen to send its first heartbeat
// before it: heartbeats are answered and skipped; anything else means the
// server is not speaking pulse.v1.
func awaitWelcome(ws *websocket.Conn, timeout time.Duration) (*benchConn, error) {
	c := &benchConn{ws: ws}
	ws.SetReadDeadline(time.Now().Add(timeout))
	for {
		_, data, err := ws.ReadMessage()
		if err == nil && bytes.Equal(data, appPing) {
			err = c.write(appPong)
			continue
		}
		var m wire.Msg
		if err == nil {
			m, err = wire.DecodeServer(data)
		}
		if _, ok := m.(wire.Welcome); err == nil && !ok {
			err = fmt.Errorf("%w: its first message was %.100s", errNotPulse, data)
		}
		if err != nil {
			ws.Close()
			return nil, err
		}
		ws.SetReadDeadline(time.Time{})
		return c, nil
	}
}

// write sends one text message.
func (c *benchConn) write(data []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.ws.WriteMessage(websocket.TextMessage, data)
}

// read reads until the connection ends, answering the server's heartbeats
// (ping frames, app and text pings) and passing every other message to
// onMessage with the time it arrived.
func (c *benchConn) read(cnt *counters, onMessage func(data []byte, at time.Time)) {
	c.ws.SetPingHandler(func(payload string) error {
		cnt.heartbeats.Add(1)
		err := c.ws.WriteControl(websocket.PongMessage, []byte(payload), time.Now().Add(10*time.Second))
		if err == websocket.ErrCloseSent {
			return nil
		}
		return err
	})
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		at := time.Now()
		switch {
		case bytes.Equal(data, appPing):
			cnt.heartbeats.Add(1)
			c.write(appPong)
		case bytes.Equal(data, textPing):
			cnt.heartbeats.Add(1)
			c.write(textPong)
		default:
			cnt.received.Add(1)
			if onMessage != nil {
				onMessage(data, at)
			}
		}
	}
}

// close sends a normal close frame and closes the socket.
func (c *benchConn) close() {
	c.closing.Store(true)
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	c.ws.Close()
}

// group is a set of open connections and their readers.
type group struct {
	cnt      *counters
	firstErr error      // the first failed dial of dialAll, if some worked
	mu       sync.Mutex // guards conns
	conns    []*benchConn
	readers  sync.WaitGroup
}

func newGroup() *group { return &group{cnt: &counters{}} }

// add starts c's reader; onMessage may be nil.
func (g *group) add(c *benchConn, onMessage func([]byte, time.Time)) {
	g.mu.Lock()
	g.conns = append(g.conns, c)
	g.mu.Unlock()
	g.cnt.open.Add(1)
	g.cnt.opened.Add(1)
	g.readers.Go(func() {
		c.read(g.cnt, onMessage)
		g.cnt.open.Add(-1)
		if !c.closing.Load() {
			g.cnt.dropped.Add(1)
		}
	})
}

// close closes every connection and waits for their readers.
func (g *group) close() {
	g.mu.Lock()
	conns := g.conns
	g.conns = nil
	g.mu.Unlock()
	var wg sync.WaitGroup
	for i := 0; i < len(conns); i += 256 {
		part := conns[i:min(i+256, len(conns))]
		wg.Go(func() {
			for _, c := range part {
				c.close()
			}
		})
	}
	wg.Wait()
	g.readers.Wait()
}

// dialAll dials n connections, concurrency at a time, adding each to g
// with the handler onMessage(i, conn) returns, until ctx ends. It returns the first error when no
// connection at all could be opened: a server that is not there or does
// not speak the protocol, said once rather than n times.
func (g *group) dialAll(ctx context.Context, d *benchDialer, n, concurrency int, onMessage func(i int, c *benchConn) func([]byte, time.Time)) error {
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range min(concurrency, n) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				c, err := d.dial(ctx, 10*time.Second)
				if err != nil {
					if !ended(ctx) {
						g.cnt.failures.Add(1)
						once.Do(func() { firstErr = err })
					}
					if g.cnt.opened.Load() == 0 {
						next.Store(int64(n)) // nothing works: say so once
					}
					continue
				}
				var on func([]byte, time.Time)
				if onMessage != nil {
					on = onMessage(i, c)
				}
				g.add(c, on)
			}
		})
	}
	wg.Wait()
	if g.cnt.opened.Load() == 0 && firstErr != nil {
		return firstErr
	}
	g.firstErr = firstErr
	return nil
}

// ended reports whether ctx is over or past its deadline: a dial's own
// timer may fire a moment before the context's.
func ended(ctx context.Context) bool {
	deadline, ok := ctx.Deadline()
	return ctx.Err() != nil || ok && !time.Now().Before(deadline)
}
