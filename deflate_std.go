package pulse

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"slices"

	"github.com/gorilla/websocket"
)

// permessage-deflate through gorilla/websocket, which upgrades on both
// engines and reads on EngineStd. gorilla's Upgrader with
// EnableCompression accepts any permessage-deflate offer, whatever its
// parameters, and refuses an answer written by the application; so a
// Handler keeps a second Upgrader that compresses, and uses it only for a
// request whose offer negotiateDeflate accepts. gorilla's answer is
// deflateResponse; where negotiateDeflate's differs (it has
// server_max_window_bits), the hijacked connection replaces gorilla's
// line as it takes the 101 response (heldConn.Write). gorilla inflates
// what it reads (readMessage bounds the result); pulse's writer
// compresses itself (flush.compress), as it encodes every frame.

// deflatingUpgrader returns a copy of up that negotiates compression, or
// nil when the server does not offer it.
func deflatingUpgrader(up *websocket.Upgrader, o *CompressionOptions) *websocket.Upgrader {
	if o == nil {
		return nil
	}
	d := *up
	d.EnableCompression = true
	return &d
}

// gorillaAnswer is the extension line of gorilla's 101 response on a
// compressed connection (gorilla/websocket v1.5.3, server.go), written
// in one call with the rest of the response.
const gorillaAnswer = "\r\nSec-WebSocket-Extensions: " + deflateResponse + "\r\n"

// errGorillaAnswer fails an upgrade whose 101 response lacks gorilla's
// extension line, rather than answer what the server would not keep to.
var errGorillaAnswer = errors.New("pulse: the 101 response has no permessage-deflate line to replace")

// withAnswer returns a copy of gorilla's 101 response resp with answer in
// place of gorilla's extension line; with answer "", resp as it is.
func withAnswer(resp []byte, answer string) ([]byte, error) {
	if answer == "" {
		return slices.Clone(resp), nil
	}
	i := bytes.Index(resp, []byte(gorillaAnswer))
	if i < 0 || bytes.Count(resp, []byte(gorillaAnswer)) != 1 {
		return nil, errGorillaAnswer
	}
	return slices.Concat(resp[:i], []byte("\r\nSec-WebSocket-Extensions: "+answer+"\r\n"), resp[i+len(gorillaAnswer):]), nil
}

// unguarded returns the socket inside the wrappers the upgrade put around
// it (heldConn, rsvGuard): pulse's writes and the epoll engine's handover
// use the socket directly.
func unguarded(conn net.Conn) net.Conn {
	if h, ok := conn.(*heldConn); ok {
		conn = h.Conn
	}
	if g, ok := conn.(*rsvGuard); ok {
		conn = g.Conn
	}
	return conn
}

// rsvGuard watches the frame headers that gorilla reads on a compressed
// connection. gorilla takes RSV1 on any frame once compression is
// negotiated, while RFC 7692 6.1 allows it only on a message's first
// frame: the guard fails the read at a control or continuation frame
// with RSV1, with a frameError for 1002. It keeps only the bytes of a
// header cut by a read; owned by the reading goroutine.
type rsvGuard struct {
	net.Conn
	hdr  [10]byte // the header, up to its length; the mask key is skipped with the payload
	hdrN int
	skip int64 // bytes before the next header
	err  error // the fault found: every later read fails with it
}

func (g *rsvGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.Conn.Read(p)
	if k, ferr := g.scan(p[:n]); ferr != nil {
		g.err = ferr
		if k == 0 {
			return 0, ferr
		}
		return k, nil // the frames before the bad one; the next read fails
	}
	return n, err
}

// scan follows the headers in b. At a bad one it returns the error and
// where in b that header began (0 when it began in an earlier read).
func (g *rsvGuard) scan(b []byte) (int, error) {
	start := 0
	for i := 0; i < len(b); {
		if g.skip > 0 {
			k := int(min(g.skip, int64(len(b)-i)))
			g.skip -= int64(k)
			i += k
			continue
		}
		if g.hdrN == 0 {
			start = i
		}
		g.hdr[g.hdrN] = b[i]
		g.hdrN++
		i++
		if g.hdrN < 2 || g.hdrN < guardHeaderLen(g.hdr[1]) {
			continue
		}
		if g.hdr[0]&rsv1Bit != 0 && opcode(g.hdr[0]&0x0f) != opText && opcode(g.hdr[0]&0x0f) != opBinary {
			return start, protocolError("RSV1 set on a control or continuation frame")
		}
		g.skip = guardPayloadLen(g.hdr[:g.hdrN])
		g.hdrN = 0
	}
	return 0, nil
}

// guardHeaderLen is the length of a frame header up to the mask key.
func guardHeaderLen(b1 byte) int {
	switch b1 & 0x7f {
	case 126:
		return 4
	case 127:
		return 10
	}
	return 2
}

// guardPayloadLen is what follows a header: the mask key and the payload.
// A length gorilla refuses (top bit set) only needs to stop the guard.
func guardPayloadLen(h []byte) int64 {
	n := int64(h[1] & 0x7f)
	switch len(h) {
	case 4:
		n = int64(binary.BigEndian.Uint16(h[2:]))
	case 10:
		n = int64(binary.BigEndian.Uint64(h[2:]) & (1<<63 - 1))
	}
	if h[1]&0x80 != 0 {
		n += 4
	}
	return n
}
