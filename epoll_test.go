//go:build linux

// Tests of what only the epoll engine promises.

package pulse

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sys/unix"
)

// idleConns is how many connections TestIdleConnectionsHoldNoGoroutine
// holds: their clients run in a child process, so the server's process
// holds one socket each, well under its 20,000 open files.
const idleConns = 10000

// On the epoll engine, 10,000 idle connections with heartbeats on hold no
// goroutine: the server's goroutine count stays flat while they connect
// and answer their heartbeats. (Heartbeat writers live for one write; a
// few may be caught in flight, well under maxIdleGoroutines.)
func TestIdleConnectionsHoldNoGoroutine(t *testing.T) {
	const maxIdleGoroutines = 100 // 1% of the connections
	srv := startPulseBench(t, EngineEpoll, time.Second, 10*time.Second)
	before := runtime.NumGoroutine()
	clients := startFleet(t, srv.url, idleConns)
	awaitConns(t, srv, idleConns)
	clients.await(2)
	after := runtime.NumGoroutine()
	if n := srv.conns(); n != idleConns {
		t.Fatalf("%d connections open, want %d", n, idleConns)
	}
	if after-before > maxIdleGoroutines {
		t.Fatalf("goroutines went from %d to %d with %d idle connections; want at most %d more", before, after, idleConns, maxIdleGoroutines)
	}
	t.Logf("goroutines: %d before, %d with %d idle connections answering heartbeats", before, after, idleConns)
}

// On the epoll engine a session that does not keep up stops its socket
// being read: received messages wait for it up to maxInbox, plus those
// of the one read that filled it; the rest stay in the kernel, and none
// is lost once the session catches up.
func TestSlowSessionBoundsInbox(t *testing.T) {
	const sent = 20000 // some 300 KB: several reads
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	received := make(chan struct{}, sent)
	srv := newTestServer(t, &Options{Interval: time.Hour, Engine: EngineEpoll})
	runServer(t, srv)
	opened := make(chan *Conn, 1)
	hs := httptest.NewServer(srv.Handler(Funcs{
		Open: func(c *Conn) { opened <- c },
		Receive: func(*Conn, Message) {
			<-release
			received <- struct{}{}
		},
	}))
	t.Cleanup(hs.Close)
	p := dialRaw(t, &liveServer{srv: srv, http: hs}, 0)
	var burst []byte
	for i := range sent {
		burst = append(burst, text(fmt.Sprintf("%010d", i))...)
	}
	paused := make(chan *pollConn, 16)
	tell := func(pc *pollConn) {
		select {
		case paused <- pc:
		default:
		}
	}
	pauseHook.Store(&tell)
	t.Cleanup(func() { pauseHook.Store(nil) })
	go p.conn.Write(burst)
	var pc *pollConn
	select {
	case c := <-opened:
		pc = c.t.(*pollConn)
	case <-time.After(10 * time.Second):
		t.Fatal("no connection opened within 10s")
	}
	for waiting := true; waiting; {
		select {
		case q := <-paused:
			waiting = q != pc
		case <-time.After(10 * time.Second):
			n, _ := pc.inboxLen()
			t.Fatalf("inbox holds %d and reading goes on", n)
		}
	}
	const bound = maxInbox + pollReadBuffer/16 // a read holds at most this many 16-byte frames
	if n, _ := pc.inboxLen(); n > bound || n >= sent-1 {
		t.Fatalf("inbox holds %d of %d messages, want at most %d", n, sent, bound)
	}
	once.Do(func() { close(release) })
	for i := range sent {
		select {
		case <-received:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d messages received after the session caught up", i, sent)
		}
	}
}

// A connection over TLS, which the epoll engine cannot read itself, stays
// on the std engine and works.
func TestEpollLeavesTLSToStd(t *testing.T) {
	srv := newTestServer(t, &Options{Interval: time.Hour, Engine: EngineEpoll})
	runServer(t, srv)
	opened := make(chan *Conn, 1)
	hs := httptest.NewTLSServer(srv.Handler(Funcs{
		Open:    func(c *Conn) { opened <- c },
		Receive: func(c *Conn, m Message) { c.Send(m) },
	}))
	t.Cleanup(hs.Close)
	d := websocket.Dialer{TLSClientConfig: hs.Client().Transport.(*http.Transport).TLSClientConfig}
	ws, _, err := d.Dial("wss"+strings.TrimPrefix(hs.URL, "https"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if c := <-opened; engineOf(c) != EngineStd {
		t.Fatalf("a TLS connection on %v, want %v", engineOf(c), EngineStd)
	}
	ws.WriteMessage(websocket.TextMessage, []byte("over TLS"))
	if _, data, err := ws.ReadMessage(); err != nil || string(data) != "over TLS" {
		t.Fatalf("echo %q, %v", data, err)
	}
}

// The descriptor takeSocket hands the loop is non-blocking without being
// made so: the flag is the socket's, shared with Go's descriptor. A
// blocking one would stall the loop at its first read.
func TestTakenSocketIsNonBlocking(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	fd, err := takeSocket(conn.(*net.TCPConn))
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if flags&unix.O_NONBLOCK == 0 {
		t.Fatalf("flags %#x: the taken socket blocks", flags)
	}
	if _, err := unix.Read(fd, make([]byte, 1)); err != unix.EAGAIN {
		t.Fatalf("read of an empty socket: %v, want EAGAIN", err)
	}
}
