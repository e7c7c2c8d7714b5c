package pulse

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pulse-go/pulse/internal/lograte"
)

// The net/http path: gorilla/websocket does the upgrade on both engines;
// on EngineStd it reads the frames too, one goroutine per connection, and
// the Conn core does everything else (the epoll engine: engine_epoll.go).

// writeBuffers is shared by every connection: an idle connection holds no
// write buffer.
var writeBuffers sync.Pool

// Handler returns an http.Handler that upgrades requests to WebSocket
// connections owned by h's sessions. It answers a request once the server
// drains with 503, a bad heartbeat choice or handshake with 400, an Origin
// that Options.CheckOrigin refuses with 403, and a request that h.Accept
// refuses as its error says; refusals are logged with their reason and
// remote address, rate-limited (see refusalLog). The heartbeat kind is
// chosen per connection: the subprotocol pulse.v1, when h speaks it (see
// SubprotocolHandler), gives HeartbeatApp; otherwise the query parameter
// heartbeat=frame|text|app; otherwise Options.Heartbeat. The handler
// returns once the connection is open; a goroutine of its own reads it
// until it ends.
func (s *Server) Handler(h Handler) http.Handler {
	refusals := &refusalLog{log: s.opts.Logger, limit: lograte.New(refusalWindow, refusalBurst)}
	upgrader := &websocket.Upgrader{
		ReadBufferSize:  1024,
		WriteBufferPool: &writeBuffers,
		CheckOrigin:     s.opts.CheckOrigin,
		Error:           refusals.refuse,
	}
	heartbeats := s.heartbeatHeaders()
	var speaks string
	if sh, ok := h.(SubprotocolHandler); ok {
		speaks = sh.Subprotocol()
		upgrader.Subprotocols = []string{speaks}
	}
	deflating := deflatingUpgrader(upgrader, s.opts.Compression)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.accepting() {
			http.Error(w, errNotAccepting.Error(), http.StatusServiceUnavailable)
			return
		}
		kind, err := s.heartbeatFor(r, speaks == Subprotocol)
		if err != nil {
			refusals.refuse(w, r, http.StatusBadRequest, err)
			return
		}
		session, err := h.Accept(r)
		if err != nil {
			refusals.refused(w, r, refusal(err))
			return
		}
		up, hj, deflate := upgraderFor(upgrader, deflating, w, r)
		ws, err := up.Upgrade(hj, r, heartbeats.upgradeHeader(kind))
		if err != nil {
			return // the upgrader has answered with an HTTP error
		}
		s.serveWS(ws, kind, deflate, session)
	})
}

// heartbeatFor chooses the heartbeat kind of a connection request; pulse
// says whether the handler speaks pulse.v1.
func (s *Server) heartbeatFor(r *http.Request, pulse bool) (HeartbeatKind, error) {
	param := r.URL.Query().Get("heartbeat")
	if pulse && slices.Contains(websocket.Subprotocols(r), Subprotocol) {
		if param != "" && param != HeartbeatApp.String() {
			return 0, fmt.Errorf("pulse: heartbeat=%s conflicts with subprotocol %s", param, Subprotocol)
		}
		return HeartbeatApp, nil
	}
	if param == "" {
		return s.opts.Heartbeat, nil
	}
	return parseHeartbeatKind(param)
}

// serveWS serves an upgraded connection on the server's engine.
func (s *Server) serveWS(ws *websocket.Conn, kind HeartbeatKind, deflate deflateBits, session Session) {
	hs := handshake{kind: kind, subprotocol: ws.Subprotocol(), deflate: deflate, response: heldResponse(ws.NetConn())}
	if s.opts.Engine == EngineEpoll && s.serveEpoll(unguarded(ws.NetConn()), hs, session) {
		return
	}
	t := &wsTransport{ws: ws}
	c, err := s.open(t, hs, session)
	if err != nil {
		conn := unguarded(ws.NetConn())
		conn.SetWriteDeadline(time.Now().Add(closeGrace))
		conn.Write(s.restartClose(hs.response))
		ws.Close()
		return
	}
	// The HTTP handler returns now, so net/http's buffers and the request
	// are freed (some 8 KiB per idle connection); the connection's reader
	// goes on in its own goroutine, which Run's drain waits for.
	go t.readLoop(c, s.opts.MaxMessageSize)
}

// restartClose is what a connection gets that was upgraded as the server
// began to drain: the 101 response, if held, then a close frame with
// CloseServiceRestart and the drain window.
func (s *Server) restartClose(response *[]byte) []byte {
	var b []byte
	if response != nil {
		b = append(b, *response...)
	}
	payload := closePayload(newCloseError(CloseServiceRestart, withRetry("server restart", s.opts.DrainWindow)))
	b = appendHeader(b, opClose, len(payload))
	return append(b, payload...)
}

// wsTransport is a transport on a gorilla/websocket connection. gorilla
// reads; the Conn's writer encodes its batches itself and writes each in
// one call on the socket (writev for large payloads), so several queued
// frames cost one syscall. gorilla writes only on its own error paths,
// a close frame for an oversized or malformed frame, in one call of its
// own: a socket write is whole with respect to another on TCP, so the two
// never interleave (over TLS each batch is one record for the same reason).
type wsTransport struct {
	ws        *websocket.Conn
	closeSent atomic.Bool // gorilla has written a close frame itself
}

func (t *wsTransport) writeFrames(fs []frame, deadline time.Time) error {
	if t.closeSent.Load() && fs[len(fs)-1].op == opClose {
		fs = fs[:len(fs)-1] // the peer has its close frame already
	}
	if len(fs) == 0 {
		return nil
	}
	conn := unguarded(t.ws.NetConn())
	if err := conn.SetWriteDeadline(deadline); err != nil {
		return err
	}
	f := encodeFrames(fs)
	defer f.release()
	if _, tcp := conn.(*net.TCPConn); tcp && len(f.vec) > 1 {
		_, err := f.vec.WriteTo(conn)
		return err
	}
	_, err := conn.Write(f.bytes())
	return err
}

func (t *wsTransport) endReads(d time.Duration) { t.ws.SetReadDeadline(time.Now().Add(d)) }
func (t *wsTransport) close() error             { return t.ws.Close() }
func (t *wsTransport) remoteAddr() string       { return t.ws.RemoteAddr().String() }

// abort closes the socket with SO_LINGER 0: unsent data is dropped at once
// instead of held by the kernel for a peer that does not take it.
func (t *wsTransport) abort() error {
	conn := unguarded(t.ws.NetConn())
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
// safe beside the writer, whose own close frame then finds it sent). A
// compressed message is held to the limit as it inflates (readMessage).
// A fault found by pulse (a frameError) closes with its own code: after
// a message, reads go on until the close frame is out; a fault in a frame
// header (rsvGuard) fails gorilla's reader for good, so the loop waits for
// the close frame to be written and ends.
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
		inHeader := err != nil
		if err == nil {
			c.touch()
			data, err = readMessage(op, r, limit)
		}
		if errors.Is(err, websocket.ErrReadLimit) {
			t.closeSent.Store(true)
			c.onTooBig()
		}
		var fe *frameError
		if errors.As(err, &fe) {
			c.closeFor(fe.code, fe.reason, fe.label())
			if !inHeader {
				continue // reads end once the close frame is out
			}
			c.writers.Wait() // no writer starts once closing: this one writes the close frame
		}
		if err != nil {
			c.readEnded(err)
			return
		}
		c.onMessage(Message{Type: MessageType(op), Data: data})
	}
}

// readMessage reads a message as gorilla hands it over, piece by piece. A
// text message is checked for UTF-8 as it comes, so that invalid bytes
// fail it at once with errInvalidUTF8, not once its last frame is in. A
// message inflated past limit fails with errTooBig as soon as it does, its
// buffer never grown beyond limit+1 bytes; corrupt compressed data fails
// with errBadDeflate.
func readMessage(op int, r io.Reader, limit int64) ([]byte, error) {
	data := make([]byte, 0, min(512, limit+1))
	checked := 0
	for {
		if len(data) == cap(data) {
			if int64(len(data)) > limit {
				return nil, errTooBig
			}
			data = growTo(data, min(2*int64(cap(data)), limit+1))
		}
		n, err := r.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if int64(len(data)) > limit {
			return nil, errTooBig
		}
		if op == websocket.TextMessage {
			k, ok := validPrefix(data[checked:])
			if !ok {
				return nil, errInvalidUTF8
			}
			checked += k
		}
		switch {
		case err == io.EOF && op == websocket.TextMessage && checked != len(data):
			return nil, errInvalidUTF8 // it ends inside a character
		case err == io.EOF:
			return data, nil
		case err != nil:
			return nil, deflateError(err)
		}
	}
}

var _ transport = (*wsTransport)(nil)

// Bounds of the log of refused upgrade requests: an attack must not turn
// into a log flood.
const (
	refusalWindow = 10 * time.Second
	refusalBurst  = 10 // lines per window; the first line of a later window counts those left out
)

// refusalLog answers and logs the upgrade requests a handler refuses: 403
// for an Origin that CheckOrigin refused (at warn), 400 for a bad
// handshake or heartbeat choice (at info), each with the reason and the
// remote address, at most refusalBurst lines per refusalWindow.
type refusalLog struct {
	// Set at creation, never change.
	log   *slog.Logger
	limit *lograte.Limiter // safe for concurrent use
}

// refuse is the Upgrader's Error callback.
func (l *refusalLog) refuse(w http.ResponseWriter, r *http.Request, status int, reason error) {
	text := strings.TrimPrefix(reason.Error(), "websocket: ")
	level := slog.LevelInfo
	if status == http.StatusForbidden {
		level = slog.LevelWarn
		text = fmt.Sprintf("origin %s is not allowed to connect", r.Header.Get("Origin"))
	}
	if ok, skipped := l.limit.Allow(time.Now()); ok {
		l.log.Log(r.Context(), level, "websocket request refused", "status", status, "reason", text,
			"remote", r.RemoteAddr, "path", r.URL.Path, "not_logged_before", skipped)
	}
	w.Header().Set("Sec-Websocket-Version", "13")
	http.Error(w, text, status)
}

// refused answers and logs, at info, a request that a Handler refused.
func (l *refusalLog) refused(w http.ResponseWriter, r *http.Request, e *HTTPError) {
	if ok, skipped := l.limit.Allow(time.Now()); ok {
		l.log.Info("websocket request refused", "status", e.Status, "reason", e.Reason,
			"remote", r.RemoteAddr, "path", r.URL.Path, "not_logged_before", skipped)
	}
	e.write(w)
}
