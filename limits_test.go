package pulse

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Clients that break the rules, spoken over raw TCP after a real handshake.

// rawPeer is a WebSocket client connection written byte by byte.
type rawPeer struct {
	conn net.Conn
	r    *bufio.Reader
}

// dialRaw opens a TCP connection to l, with a receive buffer of rcvbuf
// bytes if rcvbuf > 0 (set before connecting, so the window stays small),
// and completes the WebSocket handshake on /echo.
func dialRaw(t *testing.T, l *liveServer, rcvbuf int) *rawPeer {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var err error
			rc.Control(func(fd uintptr) {
				err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			})
			return err
		}
	}
	conn, err := d.Dial("tcp", l.http.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "GET /echo HTTP/1.1\r\nHost: pulse\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	p := &rawPeer{conn: conn, r: bufio.NewReader(conn)}
	resp, err := http.ReadResponse(p.r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake answered %s", resp.Status)
	}
	conn.SetDeadline(time.Time{})
	return p
}

// nextFrame reads one unfragmented server frame (servers do not mask).
func (p *rawPeer) nextFrame() (op byte, payload []byte, err error) {
	op, _, payload, err = p.nextFrameRSV1()
	return op, payload, err
}

// nextFrameRSV1 reads one server frame, and whether it has RSV1.
func (p *rawPeer) nextFrameRSV1() (op byte, rsv1 bool, payload []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(p.r, h[:]); err != nil {
		return 0, false, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		_, err = io.ReadFull(p.r, b[:])
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		_, err = io.ReadFull(p.r, b[:])
		n = binary.BigEndian.Uint64(b[:])
	}
	if err != nil {
		return 0, false, nil, err
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(p.r, payload)
	return h[0] & 0x0f, h[0]&rsv1Bit != 0, payload, err
}

// A frame header announcing 1 GiB is refused as soon as it is read, with
// 1009, not after MaxMessageSize bytes trickle in or the heartbeat bound.
func TestOversizedFrameHeaderClosedAtOnce(t *testing.T) {
	onEngines(t, testOversizedFrameHeaderClosedAtOnce)
}

func testOversizedFrameHeaderClosedAtOnce(t *testing.T, engine Engine) {
	o := &countingObserver{}
	l := startLive(t, engine, &Options{Observer: o}) // defaults: 64 KiB limit, a 35 s heartbeat bound
	bystander := dialPeer(t, l.url("/echo", ""), HeartbeatFrame)
	l.nextOpen(t)
	p := dialRaw(t, l, 0)
	l.nextOpen(t)

	start := time.Now()
	header := []byte{0x82, 0x80 | 127}                    // FIN, binary; masked, 64-bit length
	header = binary.BigEndian.AppendUint64(header, 1<<30) // 1 GiB announced
	header = append(header, 1, 2, 3, 4)                   // mask key
	p.conn.Write(append(header, "only a few bytes"...))
	p.conn.SetReadDeadline(time.Now().Add(5 * time.Second)) // well under the 35 s bound
	for {
		op, payload, err := p.nextFrame()
		if err != nil {
			t.Fatalf("no close frame within %v: %v", time.Since(start), err)
		}
		if op != byte(opClose) {
			continue // a heartbeat that happened to fall now
		}
		if len(payload) < 2 || CloseCode(binary.BigEndian.Uint16(payload)) != CloseMessageTooBig {
			t.Fatalf("close frame %q, want code %v", payload, CloseMessageTooBig)
		}
		break
	}
	e := l.nextClose(t)
	if e.err.Code != CloseMessageTooBig {
		t.Fatalf("OnClose got %v, want %v", e.err, CloseMessageTooBig)
	}
	if got := o.closes(DisconnectMessageTooBig); got != 1 {
		t.Fatalf("Closed(message_too_big) called %d times, want 1", got)
	}
	t.Logf("1 GiB frame header: closed with 1009 after %v", e.at.Sub(start).Round(time.Microsecond))
	assertEchoes(t, bystander)
}

// A peer that never reads is let go as soon as its queue overflows: the
// server does not wait WriteTimeout for writes that peer will not take,
// and the socket is reset, so the kernel frees its send buffer too.
func TestNeverReaderReleasedAtOnce(t *testing.T) { onEngines(t, testNeverReaderReleasedAtOnce) }

func testNeverReaderReleasedAtOnce(t *testing.T, engine Engine) {
	const writeTimeout = 30 * time.Second
	l := startLive(t, engine, &Options{QueueSize: 8, WriteTimeout: writeTimeout})
	p := dialRaw(t, l, 4096)
	c := l.nextOpen(t)
	big := Message{Type: MessageBinary, Data: make([]byte, 64<<10)}
	var err error
	for err == nil { // until the kernel buffers are full and the writer is stuck
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err = c.SendWait(ctx, big)
		cancel()
	}
	if err != context.DeadlineExceeded {
		t.Fatalf("SendWait: %v, want it to time out once the writer is stuck", err)
	}
	for err == context.DeadlineExceeded || err == nil {
		err = c.Send(big)
	}
	full := time.Now()
	if err != ErrSlowConsumer {
		t.Fatalf("Send: %v, want ErrSlowConsumer", err)
	}
	e := l.nextClose(t)
	if e.err.Code != CloseSlowConsumer {
		t.Fatalf("OnClose got %v, want %v", e.err, CloseSlowConsumer)
	}
	if waited := e.at.Sub(full); waited > 2*time.Second {
		t.Fatalf("closed %v after the queue filled; want at once, not after WriteTimeout %v", waited, writeTimeout)
	}
	t.Logf("never-reader: OnClose %v after its queue filled (WriteTimeout %v)", e.at.Sub(full).Round(time.Microsecond), writeTimeout)

	// The peer, reading now, finds the connection reset: the server dropped
	// what its kernel still held instead of trickling it out.
	p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.Copy(io.Discard, p.r)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("reading the rest: %v, want a connection reset", err)
	}
}

// A peer that reads but fell behind a burst still gets the close frame with
// CloseSlowConsumer, which tells it to reconnect and resume.
func TestBurstOverflowSendsCloseFrame(t *testing.T) { onEngines(t, testBurstOverflowSendsCloseFrame) }

func testBurstOverflowSendsCloseFrame(t *testing.T, engine Engine) {
	l := startLive(t, engine, &Options{QueueSize: 4})
	p := dialPeer(t, l.url("/echo", ""), HeartbeatFrame)
	c := l.nextOpen(t)
	var err error
	for err == nil {
		err = c.Send(Message{Type: MessageText, Data: []byte("burst")})
	}
	if code := p.closeCode(t); code != CloseSlowConsumer {
		t.Fatalf("peer saw %v, want %v", code, CloseSlowConsumer)
	}
}

// A peer flooding pings is closed with 1008 once it passes MaxPingRate in
// a second, ping frames and pulse.v1 pings alike; a peer pinging within
// the rate is answered every time, and bystanders are not disturbed.
func TestPingFloodClosed(t *testing.T) { onEngines(t, testPingFloodClosed) }

func testPingFloodClosed(t *testing.T, engine Engine) {
	o := &countingObserver{}
	l := startLive(t, engine, &Options{Observer: o, MaxPingRate: 20})
	bystander := dialPeer(t, l.url("/echo", ""), HeartbeatFrame)
	l.nextOpen(t)

	calm := dialPeer(t, l.url("/echo", ""), HeartbeatFrame)
	l.nextOpen(t)
	pongs := make(chan struct{}, 100)
	calm.ws.SetPongHandler(func(string) error { pongs <- struct{}{}; return nil })
	for range 10 {
		calm.mu.Lock()
		calm.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second))
		calm.mu.Unlock()
		<-pongs // within the rate: every ping answered
	}

	for _, flood := range []struct {
		kind    HeartbeatKind
		proto   string
		message []byte // nil: ping frames
	}{
		{HeartbeatFrame, "", nil},
		{HeartbeatApp, Subprotocol, appPing},
	} {
		var subprotocols []string
		if flood.proto != "" {
			subprotocols = []string{flood.proto}
		}
		p := dialPeer(t, l.url("/echo", ""), flood.kind, subprotocols...)
		l.nextOpen(t)
		for range 200 {
			p.mu.Lock()
			if flood.message == nil {
				p.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second))
			} else {
				p.ws.WriteMessage(websocket.TextMessage, flood.message)
			}
			p.mu.Unlock()
		}
		if e := l.nextClose(t); e.err.Code != ClosePolicyViolation {
			t.Fatalf("%v flood: closed with %v, want %v", flood.kind, e.err, ClosePolicyViolation)
		}
	}
	if got := o.closes(DisconnectPingFlood); got != 2 {
		t.Fatalf("Closed(ping_flood) called %d times, want 2", got)
	}
	assertEchoes(t, bystander)
	assertEchoes(t, calm)
}
