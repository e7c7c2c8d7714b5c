package browser

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulse-go/pulse"
)

// Chromium, which always offers permessage-deflate, against a server with
// compression on, on each engine: the page sees the extension negotiated
// and its large text and binary messages echoed intact (the server
// inflates what Chromium compressed and compresses the echo, which
// Chromium inflates). On the std engine the test also counts the bytes
// on the wire, each way, through the listener.
func TestCompressionWithChromium(t *testing.T) {
	b := startBrowser(t)
	for _, engine := range []pulse.Engine{pulse.EngineStd, pulse.EngineEpoll} {
		t.Run(engine.String(), func(t *testing.T) {
			s, wire := startCompressingEcho(t, engine)
			tb := b.open(t, "compression-"+engine.String(), s.url("/"))
			tb.waitFor("the echoes", `window.result !== null`, loadTimeout)
			r := eval[compressionResult](tb, `window.result`)
			if r.Error != "" || !strings.HasPrefix(r.Extensions, "permessage-deflate") || !r.Text || !r.Binary || !r.Small {
				t.Fatalf("page reports %+v", r)
			}
			tb.noConsoleErrors()
			if wire == nil {
				return // the epoll engine takes over the socket itself
			}
			sent := int64(r.Bytes)
			up, down := wire.read.Load(), wire.written.Load()
			t.Logf("%d bytes of messages each way; on the wire %d up, %d down", sent, up, down)
			if up > sent/3 || down > sent/3 {
				t.Fatalf("%d bytes of messages each way; on the wire %d up, %d down: not compressed", sent, up, down)
			}
		})
	}
}

// compressionResult is what the page found.
type compressionResult struct {
	Extensions string `json:"extensions"`
	Text       bool   `json:"text"`
	Binary     bool   `json:"binary"`
	Small      bool   `json:"small"`
	Bytes      int    `json:"bytes"` // of messages sent, and echoed
	Error      string `json:"error"`
}

// compressionPage sends a large JSON text, a large binary message and a
// small text to /echo and compares what comes back.
const compressionPage = `<!doctype html><title>compression</title><link rel="icon" href="data:,"><script type="module">
window.result = null;
const text = JSON.stringify(Array.from({length: 3000}, (_, i) => ({t: 1700000000 + i, cpu: (i * 7) % 100, name: 'node-' + (i % 17)})));
const bin = new Uint8Array(64 << 10).map((_, i) => (i % 251 < 200 ? 7 : i % 13));
const got = [];
const ws = new WebSocket('ws://' + location.host + '/echo');
ws.binaryType = 'arraybuffer';
ws.onopen = () => { ws.send(text); ws.send(bin); ws.send('small'); };
ws.onerror = () => { window.result = {error: 'websocket error'}; };
ws.onmessage = (e) => {
  got.push(e.data);
  if (got.length < 3) return;
  const b = new Uint8Array(got[1]);
  window.result = {
    extensions: ws.extensions,
    text: got[0] === text,
    binary: b.length === bin.length && b.every((v, i) => v === bin[i]),
    small: got[2] === 'small',
    bytes: text.length + bin.length + 5,
  };
};
</script>`

// startCompressingEcho serves the page at / and an echo at /echo on a
// pulse server with compression on, until the test ends. On the std
// engine it returns the counts of the bytes its sockets read and wrote.
func startCompressingEcho(t *testing.T, engine pulse.Engine) (*server, *byteCount) {
	t.Helper()
	srv, err := pulse.NewServer(&pulse.Options{
		Engine: engine, Compression: &pulse.CompressionOptions{}, MaxMessageSize: 1 << 20,
		DrainWindow: 50 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /echo", srv.Handler(pulse.Funcs{Receive: func(c *pulse.Conn, m pulse.Message) { c.Send(m) }}))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, compressionPage) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wire *byteCount
	if engine == pulse.EngineStd {
		wire = &byteCount{}
		ln = &countingListener{Listener: ln, n: wire}
	}
	ctx, cancel := context.WithCancel(context.Background())
	httpSrv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 2)
	go func() { done <- srv.Run(ctx) }()
	go func() { done <- ignoreClosed(httpSrv.Serve(ln)) }()
	t.Cleanup(func() {
		cancel()
		errs := []error{<-done}
		httpSrv.Shutdown(context.Background())
		if err := errors.Join(append(errs, <-done)...); err != nil {
			t.Errorf("server: %v", err)
		}
	})
	return &server{addr: ln.Addr().String()}, wire
}

// byteCount is what a countingListener's connections read and wrote,
// after their HTTP request: the WebSocket's frames, with the upgrade.
type byteCount struct{ read, written atomic.Int64 }

type countingListener struct {
	net.Listener
	n *byteCount
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, n: l.n}, nil
}

// countingConn counts only sockets that upgrade: the page's own request
// goes on another connection, whose bytes are left out by the reset
// below when the WebSocket's request arrives.
type countingConn struct {
	net.Conn
	n *byteCount
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if strings.HasPrefix(string(p[:n]), "GET /echo ") {
		c.n.read.Store(0)
		c.n.written.Store(0)
	}
	c.n.read.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.n.written.Add(int64(n))
	return n, err
}
