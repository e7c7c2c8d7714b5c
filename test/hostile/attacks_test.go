//go:build linux

package hostile

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

var cases = []attackCase{
	{"slow handshakes", []string{"--handshake-timeout", "1s"}, slowHandshakes, 0},
	{"silent TCP connections", []string{"--handshake-timeout", "1s"}, silentTCP, 0},
	{"idle keep-alive connections", []string{"--idle-timeout", "1s"}, idleKeepAlive, 0},
	{"upgraded, then silent", []string{"--ping-interval", "500ms", "--pong-timeout", "500ms", "--max-conns-per-addr", "1000", "--upgrade-rate", "10000"}, silentUpgraded, 0},
	{"handshake junk", nil, handshakeJunk, 0},
	{"1 GiB frame header", nil, hugeFrameHeader, 0},
	{"fragment flood", nil, fragmentFlood, 0},
	{"ping flood", nil, pingFlood, 0},
	{"publish flood", nil, func(t *testing.T, s *server) { publishFlood(t, s, false) }, 0},
	{"publish flood with keys", nil, func(t *testing.T, s *server) { publishFlood(t, s, true) }, 0},
	{"never-readers on a busy channel", nil, neverReaders, 0},
	{"subscribe churn", nil, subscribeChurn, 0},
	{"one address past its limit", []string{"--max-conns-per-addr", "20"}, pastAddressLimit, 0},
	{"upgrade storm past the admission cap", []string{"--upgrade-rate", "100"}, upgradeStorm, 0},
	{"restart storm honouring Retry-After", []string{"--upgrade-rate", strconv.Itoa(stormRate()), "--max-conns-per-addr", "30000"}, restartStorm, 0},
}

// parallel runs f(0..n-1), at most conc at once, and returns the first
// error.
func parallel(n, conc int, f func(i int) error) error {
	var wg sync.WaitGroup
	sem := make(chan struct{}, conc)
	errs := make(chan error, n)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := f(i); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func dialPulse(s *server, path string) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{Subprotocols: []string{"pulse.v1"}, HandshakeTimeout: wait}
	return d.Dial("ws://"+s.addr+path, nil)
}

// closeCode reads ws until it ends and returns the close code, or 1006.
func closeCode(ws *websocket.Conn) int {
	ws.SetReadDeadline(time.Now().Add(wait))
	for {
		_, _, err := ws.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		if err != nil {
			return 1006
		}
	}
}

// 300 connections send their headers one byte every 300 ms: each is cut
// once --handshake-timeout (1 s) has passed.
func slowHandshakes(t *testing.T, s *server) {
	const n, limit = 300, time.Second
	err := parallel(n, n, func(int) error {
		conn, err := net.Dial("tcp", s.addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		start := time.Now()
		header := "GET /ws HTTP/1.1\r\nHost: pulse\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		buf := make([]byte, 512)
		for i := 0; ; i++ {
			if time.Since(start) > limit+5*time.Second {
				return errors.New("a slow handshake still open after 6 s")
			}
			if _, err := conn.Write([]byte{header[i%len(header)]}); err != nil {
				break
			}
			conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			if _, err := conn.Read(buf); err != nil && !errors.Is(err, syscall.EAGAIN) && !isTimeout(err) {
				break // closed by the server (after a 408, or at once)
			}
		}
		if took := time.Since(start); took < limit-100*time.Millisecond {
			return fmt.Errorf("a slow handshake cut after %v, before the limit", took)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// 1,000 connections of handshake junk: each is answered 400, or closed;
// none is upgraded.
func handshakeJunk(t *testing.T, s *server) {
	err := parallel(1000, 50, func(int) error {
		conn, err := net.Dial("tcp", s.addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		junk := make([]byte, 200)
		rand.Read(junk)
		conn.Write(append(junk, "\r\n\r\n"...))
		conn.SetReadDeadline(time.Now().Add(wait))
		answer, _ := io.ReadAll(conn)
		if bytes.Contains(answer, []byte(" 101 ")) {
			return fmt.Errorf("junk was upgraded: %q", answer)
		}
		if len(answer) > 0 && !bytes.HasPrefix(answer, []byte("HTTP/1.1 400")) {
			return fmt.Errorf("junk answered %q", answer)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// maskedHeader is the header of a client frame: opcode, FIN, payload
// length, and a zero mask (which leaves the payload as it is).
func maskedHeader(opcode byte, fin bool, length uint64) []byte {
	b0 := opcode
	if fin {
		b0 |= 0x80
	}
	switch {
	case length < 126:
		return []byte{b0, 0x80 | byte(length), 0, 0, 0, 0}
	case length <= 0xffff:
		h := []byte{b0, 0x80 | 126, 0, 0, 0, 0, 0, 0}
		binary.BigEndian.PutUint16(h[2:], uint16(length))
		return h
	}
	h := []byte{b0, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint64(h[2:], length)
	return h
}

// 50 connections announce a 1 GiB message and trickle its bytes: each is
// closed with 1009 at once, before anything of it is taken.
func hugeFrameHeader(t *testing.T, s *server) {
	err := parallel(50, 50, func(int) error {
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+s.addr+"/echo", nil)
		if err != nil {
			return err
		}
		defer ws.Close()
		start := time.Now()
		ws.NetConn().Write(maskedHeader(0x1, true, 1<<30))
		ws.NetConn().Write([]byte("x"))
		if code := closeCode(ws); code != websocket.CloseMessageTooBig {
			return fmt.Errorf("closed with %d, want 1009", code)
		}
		if took := time.Since(start); took > 2*time.Second {
			return fmt.Errorf("1009 after %v, want it at once", took)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// 20 connections send a message in fragments of 125 bytes without end:
// each is closed with 1009 once the fragments pass the message limit.
func fragmentFlood(t *testing.T, s *server) {
	fragment := append(maskedHeader(0x0, false, 125), bytes.Repeat([]byte("a"), 125)...)
	err := parallel(20, 20, func(int) error {
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+s.addr+"/echo", nil)
		if err != nil {
			return err
		}
		defer ws.Close()
		conn := ws.NetConn()
		conn.Write(append(maskedHeader(0x1, false, 1), 'a'))
		codes := make(chan int, 1)
		go func() { codes <- closeCode(ws) }()
		for range 2000 { // 250 KB: past the 64 KiB limit
			conn.SetWriteDeadline(time.Now().Add(wait))
			if _, err := conn.Write(fragment); err != nil {
				break
			}
		}
		if code := <-codes; code != websocket.CloseMessageTooBig {
			return fmt.Errorf("closed with %d, want 1009", code)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// 20 connections send app pings as fast as they can: each is closed with
// 1008 once it passes the ping rate (50 a second by default), within 2 s.
func pingFlood(t *testing.T, s *server) {
	var sent atomic.Int64
	err := parallel(20, 20, func(int) error {
		ws, _, err := dialPulse(s, "/ws")
		if err != nil {
			return err
		}
		defer ws.Close()
		closed := make(chan error, 1)
		go func() {
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					closed <- err
					return
				}
			}
		}()
		ping := []byte(`{"type":"ping"}`)
		for end := time.Now().Add(2 * time.Second); time.Now().Before(end); sent.Add(1) {
			ws.SetWriteDeadline(time.Now().Add(wait))
			if ws.WriteMessage(websocket.TextMessage, ping) != nil {
				break // closed under it
			}
		}
		select {
		case err := <-closed:
			if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != 1008 {
				return fmt.Errorf("a ping flooder was closed with %v, want 1008", err)
			}
			return nil
		case <-time.After(wait):
			return fmt.Errorf("a ping flooder was not closed")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ping flood: %d pings from 20 connections before each was closed with 1008", sent.Load())
}

// 5 connections publish 2,000 times each without reading their answers in
// order: they get rate_limited errors, then a close with 1008.
func publishFlood(t *testing.T, s *server, keys bool) {
	var limited atomic.Int64
	err := parallel(5, 5, func(i int) error {
		ws, _, err := dialPulse(s, "/ws")
		if err != nil {
			return err
		}
		defer ws.Close()
		codes := make(chan int, 1)
		go func() {
			ws.SetReadDeadline(time.Now().Add(wait))
			for {
				_, data, err := ws.ReadMessage()
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					codes <- ce.Code
					return
				}
				if err != nil {
					codes <- 1006
					return
				}
				if bytes.Contains(data, []byte(`"code":"rate_limited"`)) {
					limited.Add(1)
				}
			}
		}()
		for n := range 2000 {
			key := ""
			if keys {
				key = `,"key":"` + strconv.Itoa(i) + "-" + strconv.Itoa(n) + `"`
			}
			ws.SetWriteDeadline(time.Now().Add(wait))
			if ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"publish","channel":"flood","data":{"n":`+strconv.Itoa(n)+`}`+key+`}`)) != nil {
				break
			}
		}
		if code := <-codes; code != websocket.ClosePolicyViolation {
			return fmt.Errorf("publish flooder closed with %d, want 1008", code)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if limited.Load() == 0 {
		t.Error("no publish was answered rate_limited")
	}
}

// 30 connections subscribe to a channel and never read, with small
// receive buffers, while the server publishes 8 KB messages into it: the
// server cuts each as a slow consumer (its files drop while the attackers
// still hold theirs open).
func neverReaders(t *testing.T, s *server) {
	const n = 30
	d := websocket.Dialer{Subprotocols: []string{"pulse.v1"}, HandshakeTimeout: wait, NetDial: smallBuffers}
	before := s.fds(t)
	var readers []*websocket.Conn
	for range n {
		ws, _, err := d.Dial("ws://"+s.addr+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"subscribe","id":1,"channel":"busy"}`))
		ws.SetReadDeadline(time.Now().Add(wait))
		for { // read up to the subscribed, then never again
			_, data, err := ws.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(data, []byte(`"type":"subscribed"`)) {
				break
			}
		}
		readers = append(readers, ws)
	}
	data := `{"channel":"busy","data":"` + strings.Repeat("x", 8000) + `"}`
	client := &http.Client{Timeout: wait}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(wait)
	for s.fds(t) > before+2 && time.Now().Before(deadline) {
		err := parallel(100, 4, func(int) error {
			req, _ := http.NewRequest("POST", "http://"+s.addr+"/api/publish", strings.NewReader(data))
			req.Header.Set("Authorization", "Bearer k")
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if fds := s.fds(t); fds > before+2 {
		t.Fatalf("the server holds %d files, %d before the never-readers: not cut", fds, before)
	}
	t.Logf("never-readers: %d cut while still open on the client side", len(readers))
}

// smallBuffers dials with a 4 KiB receive buffer, so a never-reader's
// backlog reaches the server's queue quickly.
func smallBuffers(network, addr string) (net.Conn, error) {
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		c.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return err
	}}
	return d.Dial(network, addr)
}

// 10 connections subscribe and unsubscribe 200 times each, waiting for
// each answer.
func subscribeChurn(t *testing.T, s *server) {
	err := parallel(10, 10, func(i int) error {
		ws, _, err := dialPulse(s, "/ws")
		if err != nil {
			return err
		}
		defer ws.Close()
		channel := "churn-" + strconv.Itoa(i%3)
		for n := range 400 {
			verb := "subscribe"
			if n%2 == 1 {
				verb = "unsubscribe"
			}
			ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"`+verb+`","id":`+strconv.Itoa(n+1)+`,"channel":"`+channel+`"}`))
			if err := awaitID(ws, n+1); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// awaitID reads until the answer to request id, which must not be an error.
func awaitID(ws *websocket.Conn, id int) error {
	field := `"id":` + strconv.Itoa(id)
	ws.SetReadDeadline(time.Now().Add(wait))
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return err
		}
		if bytes.Contains(data, []byte(field+",")) || bytes.Contains(data, []byte(field+"}")) {
			if bytes.Contains(data, []byte(`"type":"error"`)) {
				return fmt.Errorf("request %d refused: %s", id, data)
			}
			return nil
		}
	}
}
