package pulse

import (
	"bufio"
	"net"
	"net/http"

	"github.com/gorilla/websocket"
)

// The upgrade. gorilla/websocket checks the request and writes the 101
// response on both engines, to the connection pulse hands it at the
// hijack: a heldConn, which keeps the response instead of writing it. The
// Conn's writer sends it in one write with the connection's first frames,
// the welcome a pulse.v1 session's Open sends, so an upgrade costs the
// server one write system call instead of two, and the client reads the
// response and the welcome together. When Open sends nothing the response
// goes out alone as Open returns.

// handshake is what an upgrade settled for a connection.
type handshake struct {
	kind        HeartbeatKind
	subprotocol string
	deflate     deflateBits // the window of permessage-deflate; 0 when not negotiated
	response    *[]byte     // the 101 response, not yet written; nil when it was
}

// upgraderFor returns the Upgrader for the request, plain or, when the
// request offers permessage-deflate in a form the server accepts,
// deflating, with the ResponseWriter to upgrade through and the window
// the server's messages keep to (0 when uncompressed). The Upgrade that
// follows runs at the deepest point of the request's goroutine, so it is
// called from the handler itself, not from a frame here: one frame more
// made the goroutine's stack outgrow its first size in most upgrades, a
// copy that cost some 4% of a plain upgrade's CPU time.
func upgraderFor(plain, deflating *websocket.Upgrader, w http.ResponseWriter, r *http.Request) (*websocket.Upgrader, *hijacker, deflateBits) {
	if deflating == nil {
		return plain, &hijacker{ResponseWriter: w}, 0
	}
	answer, window := negotiateDeflate(r.Header)
	if window == 0 {
		return plain, &hijacker{ResponseWriter: w}, 0
	}
	if answer == deflateResponse {
		answer = "" // gorilla writes this one itself
	}
	return deflating, &hijacker{ResponseWriter: w, answer: answer, guard: true}, window
}

// hijacker hands gorilla the hijacked connection inside a heldConn.
type hijacker struct {
	http.ResponseWriter
	answer string // the permessage-deflate answer to write in place of gorilla's; "" to keep gorilla's
	guard  bool   // permessage-deflate is negotiated: frame headers are read through an rsvGuard
}

// Hijack asks the ResponseWriter itself, and only a wrapper through
// http.ResponseController, whose frame would deepen the stack (see
// upgraderFor).
func (h *hijacker) Hijack() (conn net.Conn, rw *bufio.ReadWriter, err error) {
	if hj, ok := h.ResponseWriter.(http.Hijacker); ok {
		conn, rw, err = hj.Hijack()
	} else {
		conn, rw, err = hijackWrapped(h.ResponseWriter)
	}
	if err != nil {
		return nil, nil, err
	}
	if h.guard {
		conn = &rsvGuard{Conn: conn}
	}
	return &heldConn{Conn: conn, answer: h.answer}, rw, nil
}

// hijackWrapped hijacks through the wrappers around a ResponseWriter.
//
//go:noinline
func hijackWrapped(w http.ResponseWriter) (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w).Hijack()
}

// heldConn is a hijacked connection whose first write, the 101 response
// gorilla's Upgrade writes, is kept for the Conn to send (heldResponse).
// Later writes, gorilla's own close frames on EngineStd, go through.
type heldConn struct {
	net.Conn
	answer   string // see hijacker
	response []byte // the 101 response, set by the first write
	held     bool   // the first write has been kept
}

// Write keeps the first write, with h.answer put in: it reports it written
// (gorilla's Upgrade then succeeds) though none of it is yet.
func (h *heldConn) Write(p []byte) (int, error) {
	if h.held {
		return h.Conn.Write(p)
	}
	h.held = true
	resp, err := withAnswer(p, h.answer) // a copy: p is net/http's buffer
	if err != nil {
		return 0, err
	}
	h.response = resp
	return len(p), nil
}

// heldResponse returns the 101 response that conn keeps, for the Conn to
// send, or nil when conn keeps none.
func heldResponse(conn net.Conn) *[]byte {
	if h, ok := conn.(*heldConn); ok && h.response != nil {
		return &h.response
	}
	return nil
}
