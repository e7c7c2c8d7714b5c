package pulse

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// The net/http path: gorilla/websocket does the framing, one goroutine per
// connection reads, and the Conn core does everything else.

// writeBuffers is shared by every connection: an idle connection holds no
// write buffer.
var writeBuffers sync.Pool

// Handle returns an http.Handler that upgrades requests to WebSocket
// connections served by h. The heartbeat kind is chosen per connection: the
// subprotocol pulse.v1 gives HeartbeatApp; otherwise the query parameter
// heartbeat=frame|text|app; otherwise Options.Heartbeat. A bad choice is
// answered with 400, a request once the server drains with 503. The
// handler returns once the connection is open; the connection is served by
// a goroutine of its own until it ends.
func (s *Server) Handle(h Handler) http.Handler {
	upgrader := &websocket.Upgrader{
		ReadBufferSize:  1024,
		WriteBufferPool: &writeBuffers,
		Subprotocols:    []string{Subprotocol},
		CheckOrigin:     s.opts.CheckOrigin,
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.accepting() {
			http.Error(w, errNotAccepting.Error(), http.StatusServiceUnavailable)
			return
		}
		kind, err := s.heartbeatFor(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		header := http.Header{"Pulse-Heartbeat": {heartbeatHeader(kind, s.opts.Interval, s.opts.Timeout)}}
		ws, err := upgrader.Upgrade(w, r, header)
		if err != nil {
			return // the upgrader has answered with an HTTP error
		}
		s.serveWS(ws, kind, h)
	})
}

// heartbeatFor chooses the heartbeat kind of a connection request.
func (s *Server) heartbeatFor(r *http.Request) (HeartbeatKind, error) {
	param := r.URL.Query().Get("heartbeat")
	if slices.Contains(websocket.Subprotocols(r), Subprotocol) {
		if param != "" && param != HeartbeatApp.String() {
			return 0, fmt.Errorf("pulse: heartbeat=%s conflicts with subprotocol %s", param, Subprotocol)
		}
		return HeartbeatApp, nil
	}
	if param == "" {
		return s.opts.Heartbeat, nil
	}
	return ParseHeartbeatKind(param)
}

func (s *Server) serveWS(ws *websocket.Conn, kind HeartbeatKind, h Handler) {
	t := &wsTransport{ws: ws}
	c, err := s.open(t, kind, ws.Subprotocol(), h)
	if err != nil {
		payload := closePayload(newCloseError(CloseServiceRestart, withRetry("server restart", s.opts.DrainWindow)))
		ws.WriteControl(websocket.CloseMessage, payload, time.Now().Add(closeGrace))
		ws.Close()
		return
	}
	if h.OnOpen != nil {
		h.OnOpen(c)
	}
	// The HTTP handler returns now, so net/http's buffers and the request
	// are freed (some 8 KiB per idle connection); the connection's reader
	// goes on in its own goroutine, which Run's drain waits for.
	go t.readLoop(c, s.opts.MaxMessageSize)
}

// wsTransport is a transport on a gorilla/websocket connection.
type wsTransport struct {
	ws *websocket.Conn
}

func (t *wsTransport) write(op opcode, data []byte, deadline time.Time) error {
	if op == opText || op == opBinary {
		if err := t.ws.SetWriteDeadline(deadline); err != nil {
			return err
		}
		return t.ws.WriteMessage(int(op), data)
	}
	return t.ws.WriteControl(int(op), data, deadline)
}

func (t *wsTransport) endReads(d time.Duration) { t.ws.SetReadDeadline(time.Now().Add(d)) }
func (t *wsTransport) close() error             { return t.ws.Close() }
func (t *wsTransport) remoteAddr() string       { return t.ws.RemoteAddr().String() }

// abort closes the socket with SO_LINGER 0: unsent data is dropped at once
// instead of held by the kernel for a peer that does not take it.
func (t *wsTransport) abort() error {
	conn := t.ws.NetConn()
	if tlsConn, ok := conn.(interface{ NetConn() net.Conn }); ok {
		conn = tlsConn.NetConn()
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		tcp.SetLinger(0)
	}
	return t.ws.Close()
}

// readLoop feeds c every frame until the socket fails or closes. Control
// frames reach c through gorilla's handlers, which run inside NextReader;
// replacing them keeps gorilla from writing pongs and close replies itself.
// The read limit is checked against each frame's announced length as soon
// as its header is in, so an oversized message ends the connection at once;
// gorilla then writes the 1009 close frame itself (WriteControl, which is
// safe beside the writer, whose own close frame then finds it sent).
func (t *wsTransport) readLoop(c *Conn, limit int64) {
	t.ws.SetPingHandler(func(data string) error { c.onPing([]byte(data)); return nil })
	t.ws.SetPongHandler(func(string) error { c.onPong(); return nil })
	t.ws.SetCloseHandler(func(code int, text string) error {
		c.onPeerClose(CloseCode(code), text)
		return nil
	})
	t.ws.SetReadLimit(limit)
	for {
		op, r, err := t.ws.NextReader()
		var data []byte
		if err == nil {
			c.touch()
			data, err = io.ReadAll(r)
		}
		if errors.Is(err, websocket.ErrReadLimit) {
			c.onTooBig()
		}
		if err != nil {
			c.readEnded(err)
			return
		}
		c.onMessage(Message{Type: MessageType(op), Data: data})
	}
}

var _ transport = (*wsTransport)(nil)
