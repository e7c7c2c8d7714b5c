package pulse

import (
	"bytes"
	"fmt"
	"net"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// The 101 response that the upgrade holds goes out in the connection's
// first write: with what Open sends, alone when Open sends nothing, and
// before the close frame when Open closes.
func TestResponseGoesWithFirstFrames(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(c *Conn)
		want string
	}{
		{"welcome", func(c *Conn) { c.Send(Message{Type: MessageText, Data: []byte("welcome")}) }, "[-1:101 1:welcome]"},
		{"nothing", func(c *Conn) {}, "[-1:101]"},
		{"close", func(c *Conn) { c.Close(4100, "no") }, "[-1:101 8:\x10\x04no]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := newTestServer(t, &Options{Interval: time.Hour})
				ft := newFakeTransport(nil)
				response := []byte("101")
				c, err := srv.open(ft, handshake{kind: HeartbeatFrame, response: &response}, &funcSession{f: Funcs{Open: tc.open}})
				if err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				if b := ft.batches(); len(b) == 0 || fmt.Sprint(b[0]) != tc.want {
					t.Fatalf("writes %q, want the first %q", b, tc.want)
				}
				c.closeFor(CloseNormal, "", DisconnectServerClose)
				ft.end()
				c.readEnded(net.ErrClosed)
			})
		})
	}
}

// Over a socket, the client reads the 101 response and the welcome in one
// read: the server wrote them in one call. (Before the response was held,
// a read that came after both writes could see both too, so this can pass
// by chance without the hold, but not fail with it.)
func TestResponseAndWelcomeInOneWrite(t *testing.T) { onEngines(t, testResponseAndWelcomeInOneWrite) }

func testResponseAndWelcomeInOneWrite(t *testing.T, e Engine) {
	srv := newTestServer(t, &Options{Engine: e, Interval: time.Hour})
	h := Funcs{Open: func(c *Conn) { c.Send(Message{Type: MessageText, Data: []byte("welcome")}) }}
	hs := httptest.NewServer(srv.Handler(h))
	defer hs.Close()
	runServer(t, srv)
	for range 20 {
		conn, err := net.Dial("tcp", strings.TrimPrefix(hs.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		req := "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
		if _, err := conn.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		head, rest, ok := bytes.Cut(buf[:n], []byte("\r\n\r\n"))
		if !ok || !bytes.HasPrefix(head, []byte("HTTP/1.1 101 ")) {
			t.Fatalf("first read %q: no whole 101 response", buf[:n])
		}
		if want := []byte("\x81\x07welcome"); !slices.Equal(rest, want) {
			t.Fatalf("after the response, the first read has %q, want the welcome %q", rest, want)
		}
		conn.Close()
	}
}
