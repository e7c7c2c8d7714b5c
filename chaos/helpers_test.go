package chaos_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/pulse-go/pulse/chaos"
)

// silence is how long a read must stay empty to count as "nothing arrived".
const silence = 200 * time.Millisecond

// patience bounds every wait for something that should happen.
const patience = 5 * time.Second

// startTarget starts a TCP server on 127.0.0.1:0 that runs handle in its
// own goroutine for each accepted connection. Cleanup closes the listener
// and every connection and joins every goroutine.
func startTarget(t *testing.T, handle func(*net.TCPConn)) string {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		conns  []*net.TCPConn
		closed bool
	)
	wg.Go(func() {
		for {
			c, err := ln.AcceptTCP()
			if err != nil {
				return
			}
			mu.Lock()
			if closed {
				mu.Unlock()
				c.Close()
				return
			}
			conns = append(conns, c)
			wg.Go(func() { handle(c) })
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		closed = true
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// echo writes back everything it reads, then half-closes.
func echo(c *net.TCPConn) {
	io.Copy(c, c)
	c.CloseWrite()
}

// startSink starts a target that hands each accepted connection to the test.
func startSink(t *testing.T) (string, <-chan *net.TCPConn) {
	conns := make(chan *net.TCPConn, 16)
	return startTarget(t, func(c *net.TCPConn) { conns <- c }), conns
}

// startProxy starts a proxy to target, closed at cleanup.
func startProxy(t *testing.T, target string) *chaos.Proxy {
	t.Helper()
	p, err := chaos.Listen("127.0.0.1:0", target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// dial connects to the proxy; cleanup closes the connection.
func dial(t *testing.T, p *chaos.Proxy) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// waitLink waits until the proxy has accepted c and returns its link.
func waitLink(t *testing.T, p *chaos.Proxy, c net.Conn) *chaos.Link {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), patience)
	defer cancel()
	for n := 1; ; n++ {
		if _, err := p.WaitLinks(ctx, n); err != nil {
			t.Fatalf("wait for link of %s: %v", c.LocalAddr(), err)
		}
		if l := p.Link(c.LocalAddr().String()); l != nil {
			return l
		}
	}
}

// connect dials a sink through the proxy and returns the client socket,
// the target's socket and the link between them.
func connect(t *testing.T, p *chaos.Proxy, sink <-chan *net.TCPConn) (client, server *net.TCPConn, l *chaos.Link) {
	t.Helper()
	client = dial(t, p)
	select {
	case server = <-sink:
	case <-time.After(patience):
		t.Fatal("target never accepted")
	}
	return client, server, waitLink(t, p, client)
}

// send writes s to c.
func send(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := c.Write([]byte(s)); err != nil {
		t.Fatalf("write %q: %v", s, err)
	}
}

// expect reads exactly len(want) bytes from c and compares them to want.
func expect(t *testing.T, c net.Conn, want string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(patience))
	defer c.SetReadDeadline(time.Time{})
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read %q: got %q, %v", want, got, err)
	}
	if string(got) != want {
		t.Fatalf("read %q, want %q", got, want)
	}
}

// expectSilence checks that nothing, not even EOF or a reset, arrives on c
// for a while: the read must time out.
func expectSilence(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(silence))
	defer c.SetReadDeadline(time.Time{})
	n, err := c.Read(make([]byte, 64))
	if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("during blackhole: read %d bytes, %v; want a timeout", n, err)
	}
}

// readErr reads from c until it fails and returns the error.
func readErr(t *testing.T, c net.Conn) error {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(patience))
	_, err := io.Copy(io.Discard, c)
	if err == nil {
		return io.EOF // io.Copy reports EOF as nil
	}
	return err
}

// waitDone waits for the link to end.
func waitDone(t *testing.T, l *chaos.Link) {
	t.Helper()
	select {
	case <-l.Done():
	case <-time.After(patience):
		t.Fatalf("link %s did not end", l.ClientAddr())
	}
}
