package pulse

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulse-go/pulse/internal/stats"
)

// server_max_window_bits: what the server sends keeps its back references
// within the window negotiated, checked by a decoder that fails any
// reference beyond it (deflate_decoder_test.go).

// jsonRecords is n bytes of JSON records, the same on every call, like
// the messages of Autobahn's compression cases.
func jsonRecords(n int) []byte {
	r := rand.New(rand.NewPCG(7, 13))
	words := []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"}
	var b bytes.Buffer
	b.WriteByte('[')
	for b.Len() < n {
		rec, _ := json.Marshal(map[string]any{
			"id": r.IntN(1 << 30), "name": words[r.IntN(len(words))] + " " + words[r.IntN(len(words))],
			"active": r.IntN(2) == 1, "score": r.Float64() * 100, "tags": []string{words[r.IntN(len(words))]},
			"created": fmt.Sprintf("2026-%02d-%02dT%02d:%02d:00Z", 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60)),
		})
		b.Write(rec)
		b.WriteByte(',')
	}
	return b.Bytes()[:n]
}

// The decoder reads what compress/flate writes, and fails a reference
// beyond its window: the checks below can fail.
func TestWindowDecoder(t *testing.T) {
	msg := jsonRecords(64 << 10)
	z, _ := deflate(nil, msg, maxWindowBits)
	out, farthest, err := inflateWindowed(z, maxWindowBits)
	if err != nil || !bytes.Equal(out, msg) {
		t.Fatalf("inflating %d bytes: %d bytes out, %v", len(z), len(out), err)
	}
	if farthest <= 1<<minWindowBits {
		t.Fatalf("the farthest reference in 64 KiB of JSON is %d bytes back", farthest)
	}
	if _, _, err := inflateWindowed(z, minWindowBits); !errors.Is(err, errBeyondWindow) {
		t.Fatalf("with a window of 256 bytes: %v, want errBeyondWindow", err)
	}
	for _, bad := range [][]byte{{0xff, 0xff, 0xff}, {0x07}} {
		if _, _, err := inflateWindowed(bad, maxWindowBits); err == nil {
			t.Errorf("% x inflated", bad)
		}
	}
}

// deflate keeps to every window, at every size around it, and still
// compresses JSON.
func TestDeflateKeepsWindow(t *testing.T) {
	for bits := deflateBits(minWindowBits); bits <= maxWindowBits; bits++ {
		for _, n := range []int{16, 1<<bits - 1, 1 << bits, 1<<bits + 1, 3 << bits, 128 << 10} {
			msg := jsonRecords(n)
			z, ok := deflate(nil, msg, bits)
			out, farthest, err := inflateWindowed(z, bits)
			if err != nil || !bytes.Equal(out, msg) {
				t.Fatalf("%d bytes, window %d bits: %v (farthest %d)", n, bits, err, farthest)
			}
			if n >= 1024 && !ok {
				t.Errorf("%d bytes of JSON, window %d bits: not compressed", n, bits)
			}
		}
	}
}

// A message longer than the window is compressed in pieces of 2^bits
// bytes from 1 KiB on, Huffman-coded below; on JSON the pieces are the
// smaller, by far from 1 KiB on. The ratios are in README's note on
// compression (go test -run TestDeflateWindowRatio -v).
func TestDeflateWindowRatio(t *testing.T) {
	msg := jsonRecords(128 << 10)
	huffman := compressedWith(huffmen, msg, len(msg))
	whole := compressedWith(deflaters, msg, len(msg))
	t.Logf("%d bytes of JSON: %.0f%% whole, %.0f%% Huffman-coded", len(msg), pct(whole, msg), pct(huffman, msg))
	for bits := deflateBits(minWindowBits); bits < maxWindowBits; bits++ {
		pieces := compressedWith(deflaters, msg, 1<<bits)
		z, _ := deflate(nil, msg, bits)
		t.Logf("window %2d bits: %.0f%% in pieces, %.0f%% sent", bits, pct(pieces, msg), pct(len(z), msg))
		want := pieces
		if bits < minPieceBits {
			want = huffman
		}
		if len(z) != want {
			t.Errorf("window %d bits: %d bytes sent, want %d", bits, len(z), want)
		}
		if bits >= minPieceBits && pct(pieces, msg) > pct(huffman, msg)-15 {
			t.Errorf("window %d bits: pieces give %.0f%%, Huffman coding %.0f%%", bits, pct(pieces, msg), pct(huffman, msg))
		}
	}
}

// The cost of keeping to a window, for README's note on compression:
// go test -run '^$' -bench DeflateWindow -benchtime 50x
func BenchmarkDeflateWindow(b *testing.B) {
	msg := jsonRecords(128 << 10)
	for bits := deflateBits(minWindowBits); bits <= maxWindowBits; bits++ {
		b.Run(fmt.Sprintf("bits=%d", bits), func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			buf := make([]byte, 0, len(msg))
			for b.Loop() {
				deflate(buf, msg, bits)
			}
		})
	}
}

// compressedWith is the size of msg compressed by pool's writers in pieces
// of piece bytes, each alone.
func compressedWith(pool *sync.Pool, msg []byte, piece int) int {
	d := pool.Get().(*deflater)
	d.out = nil
	for rest := msg; len(rest) > 0; rest = rest[min(piece, len(rest)):] {
		d.fw.Reset(d)
		d.fw.Write(rest[:min(piece, len(rest))])
		d.fw.Flush()
	}
	n := len(d.out) - len(deflateTail)
	d.out = nil
	pool.Put(d)
	return n
}

func pct(n int, of []byte) float64 { return 100 * float64(n) / float64(len(of)) }

// A prepared message shares one form among every window that holds it
// whole, and makes one for each smaller window it is sent with, once.
func TestPreparedPerWindow(t *testing.T) {
	msg := jsonRecords(4 << 10) // 2^12 bytes
	p := Prepare(Message{Type: MessageText, Data: msg}).prep
	before := stats.Deflates.Load()
	forms := map[deflateBits][]byte{}
	for _, bits := range []deflateBits{15, 12, 8, 10, 8, 15, 10, 12} {
		z, ok := p.compressed(msg, bits)
		out, _, err := inflateWindowed(z, bits)
		if !ok || err != nil || !bytes.Equal(out, msg) {
			t.Fatalf("window %d bits: ok %v, %v", bits, ok, err)
		}
		if prev, seen := forms[bits]; seen && &prev[0] != &z[0] {
			t.Errorf("window %d bits: compressed again", bits)
		}
		forms[bits] = z
	}
	if &forms[15][0] != &forms[12][0] {
		t.Error("windows of 12 and 15 bits, both holding the message, got two forms")
	}
	if got := stats.Deflates.Load() - before; got != 3 {
		t.Errorf("%d compressions for windows of 8, 10, 12 and 15 bits; want 3", got)
	}
}

// A prepared message sent to connections with different windows reaches
// each within its own, on both engines: compressed once for the windows
// that hold it whole, once more for the smaller one.
func TestPreparedFanoutWindows(t *testing.T) { onEngines(t, testPreparedFanoutWindows) }

func testPreparedFanoutWindows(t *testing.T, engine Engine) {
	l := startLive(t, engine, &Options{Interval: time.Hour, Compression: &CompressionOptions{}})
	windows := []deflateBits{15, 8, 12, 8, 15}
	peers := make([]*rawPeer, len(windows))
	conns := make([]*Conn, len(windows))
	for i, bits := range windows {
		peers[i], _ = dialDeflate(t, l, fmt.Sprintf("permessage-deflate; server_max_window_bits=%d", bits))
		conns[i] = l.nextOpen(t)
	}
	msg := jsonRecords(4 << 10) // 2^12 bytes: whole for 12 and 15 bits
	m := Prepare(Message{Type: MessageText, Data: msg})
	before := stats.Deflates.Load()
	for _, c := range conns {
		c.Send(m)
	}
	for i, p := range peers {
		p.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if err := p.expectEcho(msg, windows[i]); err != nil {
			t.Fatalf("connection %d, window %d bits: %v", i, windows[i], err)
		}
		p.conn.Close()
		l.nextClose(t)
	}
	if got := stats.Deflates.Load() - before; got != 2 {
		t.Errorf("compressed %d times for windows of 8, 12 and 15 bits; want 2", got)
	}
}

// windowOffers are Autobahn's offers with server_max_window_bits (cases
// 13.3 to 13.7), and that parameter alone at every other size, with the
// window each gets.
var windowOffers = []struct {
	offer string
	bits  deflateBits
}{
	{"permessage-deflate; client_no_context_takeover; client_max_window_bits; server_max_window_bits=8", 8},
	{"permessage-deflate; client_no_context_takeover; client_max_window_bits; server_max_window_bits=15", 15},
	{"permessage-deflate; client_no_context_takeover; client_max_window_bits; server_no_context_takeover; server_max_window_bits=8", 8},
	{"permessage-deflate; client_no_context_takeover; client_max_window_bits; server_no_context_takeover; server_max_window_bits=15", 15},
	{"permessage-deflate; client_no_context_takeover; client_max_window_bits; server_no_context_takeover; server_max_window_bits=8, " +
		"permessage-deflate; client_no_context_takeover; client_max_window_bits; server_no_context_takeover, " +
		"permessage-deflate; client_no_context_takeover; client_max_window_bits", 8},
	{"permessage-deflate; server_max_window_bits=9", 9},
	{"permessage-deflate; server_max_window_bits=10", 10},
	{"permessage-deflate; server_max_window_bits=11", 11},
	{"permessage-deflate; server_max_window_bits=12", 12},
	{"permessage-deflate; server_max_window_bits=13", 13},
	{"permessage-deflate; server_max_window_bits=14", 14},
}

// Autobahn's shape on both engines: for each offer, JSON messages of 16
// bytes to 128 KiB, sent compressed in one frame, compressed in frames of
// 256 bytes (RSV1 on the first only) and uncompressed, all come back
// intact; those of 1 KiB and more compressed, within the window.
func TestDeflateWindowKept(t *testing.T) { onEngines(t, testDeflateWindowKept) }

func testDeflateWindowKept(t *testing.T, engine Engine) {
	l := startLive(t, engine, &Options{Interval: time.Hour, Compression: &CompressionOptions{}, MaxMessageSize: 1 << 20})
	var msgs [][]byte
	for _, n := range []int{16, 1 << 10, 64 << 10, 128 << 10} {
		msgs = append(msgs, jsonRecords(n))
	}
	for _, tc := range windowOffers {
		t.Run(strings.ReplaceAll(tc.offer, " ", ""), func(t *testing.T) {
			p, resp := dialDeflate(t, l, tc.offer)
			l.nextOpen(t)
			want := fmt.Sprintf("%s; server_max_window_bits=%d", deflateResponse, tc.bits)
			if got := resp.Header.Get("Sec-WebSocket-Extensions"); got != want {
				t.Fatalf("answered %q, want %q", got, want)
			}
			var send [][]byte
			for _, m := range msgs {
				send = append(send, compressedFrames(t, opText, m, 1), fragmentedDeflate(m, 256), text(string(m)))
			}
			written := make(chan error, 1)
			go func() { _, err := p.conn.Write(bytes.Join(send, nil)); written <- err }()
			p.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			for i := range send {
				m := msgs[i/3]
				if err := p.expectEcho(m, tc.bits); err != nil {
					t.Fatalf("message %d, %d bytes: %v", i, len(m), err)
				}
			}
			if err := <-written; err != nil {
				t.Fatal(err)
			}
			p.conn.Close()
			l.nextClose(t)
		})
	}
}

// fragmentedDeflate is msg compressed as a client sends it, in frames of
// size bytes, RSV1 on the first only (Autobahn's auto-fragmentation).
func fragmentedDeflate(msg []byte, size int) []byte {
	z, _ := deflate(nil, msg, maxWindowBits)
	var out []byte
	for i := 0; i < len(z); i += size {
		op, rsv := opText, byte(4)
		if i > 0 {
			op, rsv = opContinuation, 0
		}
		out = append(out, clientFrame(i+size >= len(z), op, z[i:min(i+size, len(z))], rsv)...)
	}
	return out
}

// expectEcho reads msg back: compressed within a window of 2^bits bytes
// when it is 1 KiB or more, in either form when smaller.
func (p *rawPeer) expectEcho(msg []byte, bits deflateBits) error {
	op, rsv1, payload, err := p.nextFrameRSV1()
	switch {
	case err != nil:
		return err
	case op != byte(opText):
		return fmt.Errorf("got %s", describe(op, payload))
	case !rsv1 && len(msg) >= 1024:
		return errors.New("came back uncompressed")
	case rsv1:
		payload, _, err = inflateWindowed(payload, bits)
	}
	if err == nil && !bytes.Equal(payload, msg) {
		err = fmt.Errorf("came back as %d other bytes", len(payload))
	}
	return err
}

// recordConn records what is written to it.
type recordConn struct {
	net.Conn // nil: only Write is called
	written  bytes.Buffer
}

func (c *recordConn) Write(p []byte) (int, error) { return c.written.Write(p) }

// The 101 response is kept, not written, with the answer in place of
// gorilla's extension line; later writes go through. A response without
// that line fails the upgrade, rather than answer what the server would
// not keep to.
func TestHeldResponseAnswer(t *testing.T) {
	answer := deflateResponse + "; server_max_window_bits=9"
	head := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n"
	resp := head + "Sec-WebSocket-Extensions: " + deflateResponse + "\r\nPulse-Heartbeat: frame\r\n\r\n"
	conn := &recordConn{}
	h := &heldConn{Conn: conn, answer: answer}
	if n, err := h.Write([]byte(resp)); n != len(resp) || err != nil {
		t.Fatalf("wrote %d of %d bytes: %v", n, len(resp), err)
	}
	if conn.written.Len() > 0 {
		t.Fatalf("the 101 response was written at once: %q", conn.written.String())
	}
	if got, want := string(*heldResponse(h)), strings.Replace(resp, deflateResponse, answer, 1); got != want {
		t.Fatalf("held %q, want %q", got, want)
	}
	h.Write([]byte(resp)) // a later write goes as it is
	if got := conn.written.String(); got != resp {
		t.Fatalf("wrote %q, want %q", got, resp)
	}
	for _, bad := range []string{head + "\r\n", resp + resp, strings.Replace(resp, "; client_no_context_takeover", "", 1)} {
		h := &heldConn{Conn: &recordConn{}, answer: answer}
		if _, err := h.Write([]byte(bad)); err != errGorillaAnswer || heldResponse(h) != nil {
			t.Errorf("%q: %v, response held: %v", bad, err, heldResponse(h) != nil)
		}
	}
}
