package pulse

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// A client library that is not gorilla, coder/websocket, in both its
// compression modes: large compressible messages echo intact, and the
// bytes on the wire, each way, are a fraction of the payload.
func TestDeflateCoderClient(t *testing.T) { onEngines(t, testDeflateCoderClient) }

func testDeflateCoderClient(t *testing.T, engine Engine) {
	const limit = 1 << 20
	l := startLive(t, engine, &Options{Interval: time.Hour, Compression: &CompressionOptions{}, MaxMessageSize: limit})
	for name, mode := range map[string]websocket.CompressionMode{
		"no context takeover": websocket.CompressionNoContextTakeover,
		"context takeover":    websocket.CompressionContextTakeover,
	} {
		t.Run(name, func(t *testing.T) {
			var wire countingConn
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			transport := &http.Transport{DialContext: wire.dial}
			defer transport.CloseIdleConnections()
			ws, resp, err := websocket.Dial(ctx, l.url("/echo", ""), &websocket.DialOptions{
				CompressionMode: mode,
				HTTPClient:      &http.Client{Transport: transport},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer ws.CloseNow()
			l.nextOpen(t)
			if got := resp.Header.Get("Sec-WebSocket-Extensions"); got != deflateResponse {
				t.Fatalf("extension answered %q", got)
			}
			ws.SetReadLimit(limit)
			wire.read.Store(0)
			wire.written.Store(0)
			sent := 0
			for i := range 10 {
				msg := dashboardJSON(i, 64<<10)
				sent += len(msg)
				if err := ws.Write(ctx, websocket.MessageText, msg); err != nil {
					t.Fatal(err)
				}
				typ, got, err := ws.Read(ctx)
				if err != nil || typ != websocket.MessageText || !bytes.Equal(got, msg) {
					t.Fatalf("echo %d: %v, %d bytes of type %v, want the %d sent", i, err, len(got), typ, len(msg))
				}
			}
			up, down := wire.written.Load(), wire.read.Load()
			t.Logf("%d bytes of messages each way; on the wire %d up, %d down", sent, up, down)
			if up > int64(sent/4) || down > int64(sent/4) {
				t.Fatalf("on the wire %d up and %d down for %d bytes each way: not compressed", up, down, sent)
			}
			ws.Close(websocket.StatusNormalClosure, "")
			l.nextClose(t)
		})
	}
}

// dashboardJSON is n bytes of JSON like a dashboard's updates: compressible, not trivially.
func dashboardJSON(seed, n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"series":[`)
	for i := 0; b.Len() < n-40; i++ {
		fmt.Fprintf(&b, `{"t":%d,"cpu":%d.%02d,"name":"node-%d"},`, 1700000000+i, (i*seed+7)%100, (i*31)%100, i%17)
	}
	b.Truncate(b.Len() - 1)
	b.WriteString(`]}`)
	return b.Bytes()
}

// countingConn counts the bytes a client's connections read and write.
type countingConn struct {
	read, written atomic.Int64
}

func (w *countingConn) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &counted{Conn: c, w: w}, nil
}

type counted struct {
	net.Conn
	w *countingConn
}

func (c *counted) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.w.read.Add(int64(n))
	return n, err
}

func (c *counted) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.w.written.Add(int64(n))
	return n, err
}
