// Package baseline is the server pulse measures itself against: the gorilla
// chat pattern, which is what most Go WebSocket applications do (modelled on
// the description of gorilla/websocket's examples/chat/client.go, written
// afresh). Every connection has two goroutines for its whole life. The
// reader sets a read deadline of Interval+Timeout (the example's pongWait)
// that only a pong extends, as its PongHandler does. The writer owns a
// time.Ticker that writes a ping frame every Interval (pingPeriod) and
// drains a buffered send channel. Messages read are echoed back.
//
// Server counts the pongs it receives, so that a benchmark can count
// heartbeat round trips; it has nothing else of pulse.
package baseline

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// The chat pattern's other constants, as the example sets them (its message
// limit raised to pulse's default).
const (
	writeWait      = 10 * time.Second // deadline of every write
	maxMessageSize = 64 << 10
	sendBuffer     = 256  // the buffered send channel; full means the client is dropped
	bufferSize     = 1024 // the upgrader's read and write buffers: one each per connection
)

// Server is an http.Handler serving WebSocket connections in the gorilla
// chat pattern. Its methods may be called from any goroutine.
type Server struct {
	// Set by New, never changes.
	interval time.Duration // pingPeriod
	pongWait time.Duration // Interval+Timeout
	upgrader websocket.Upgrader
	changed  func() // set by tests before serving: told of every pong, join and leave

	pongs   atomic.Int64
	pumps   sync.WaitGroup // every connection's two goroutines
	mu      sync.Mutex     // guards the fields below
	clients map[*client]struct{}
	closed  bool
}

// client is one connection: its reader and writer goroutines share it.
type client struct {
	ws   *websocket.Conn
	send chan []byte // written by the reader (echo), closed by it when it ends
}

// New returns a Server that pings every interval and drops a connection
// that sends no pong for interval+timeout.
func New(interval, timeout time.Duration) *Server {
	return &Server{
		interval: interval,
		pongWait: interval + timeout,
		upgrader: websocket.Upgrader{ReadBufferSize: bufferSize, WriteBufferSize: bufferSize},
		clients:  make(map[*client]struct{}),
	}
}

// ServeHTTP upgrades the request and starts the connection's two goroutines.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered with an HTTP error
	}
	c := &client{ws: ws, send: make(chan []byte, sendBuffer)}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ws.Close()
		return
	}
	s.clients[c] = struct{}{}
	s.pumps.Add(2)
	s.mu.Unlock()
	s.notify()
	go s.writePump(c)
	go s.readPump(c)
}

// readPump reads until the socket fails or the pong deadline passes.
func (s *Server) readPump(c *client) {
	defer s.pumps.Done()
	defer func() {
		s.mu.Lock()
		delete(s.clients, c)
		s.mu.Unlock()
		close(c.send) // the writer sends a close frame and ends
		c.ws.Close()
		s.notify()
	}()
	c.ws.SetReadLimit(maxMessageSize)
	c.ws.SetReadDeadline(time.Now().Add(s.pongWait))
	c.ws.SetPongHandler(func(string) error {
		s.pongs.Add(1)
		s.notify()
		return c.ws.SetReadDeadline(time.Now().Add(s.pongWait))
	})
	for {
		_, msg, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		select {
		case c.send <- msg:
		default:
			return // send buffer full: drop the slow client
		}
	}
}

// writePump is the connection's only writer: queued messages and pings.
func (s *Server) writePump(c *client) {
	defer s.pumps.Done()
	ticker := time.NewTicker(s.interval)
	defer func() {
		ticker.Stop()
		c.ws.Close()
	}()
	for {
		select {
		case msg, ok := <-c.send:
			c.ws.SetWriteDeadline(time.Now().Add(writeWait))
			if !ok {
				c.ws.WriteMessage(websocket.CloseMessage, nil)
				return
			}
			if err := c.ws.WriteMessage(websocket.TextMessage, msg); err != nil {
				return
			}
		case <-ticker.C:
			c.ws.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.ws.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}

// notify tells a test that the counts may have changed.
func (s *Server) notify() {
	if s.changed != nil {
		s.changed()
	}
}

// Len returns the number of open connections.
func (s *Server) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clients)
}

// Pongs returns the number of pongs received so far: completed heartbeat
// round trips.
func (s *Server) Pongs() int64 { return s.pongs.Load() }

// Close closes every connection, refuses new ones, and returns once every
// connection's goroutines have ended.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.clients {
		c.ws.Close()
	}
	s.mu.Unlock()
	s.pumps.Wait()
}
