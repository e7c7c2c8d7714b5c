package main

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// "pulse chaos" driven through its control endpoint (and, once, its keys)
// in front of a TCP echo server.

// startEchoTarget serves TCP echo on 127.0.0.1; cleanup closes it and
// joins its goroutines.
func startEchoTarget(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { io.Copy(c, c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// chaosRun is a running "pulse chaos" with its addresses.
type chaosRun struct {
	*cmdRun
	proxy, control string
}

var listeningLine = regexp.MustCompile(`msg=listening proxy=(\S+) target=\S+ control=(\S+)`)

func startChaos(t *testing.T, flags ...string) *chaosRun {
	t.Helper()
	args := append([]string{"chaos", "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", "--target", startEchoTarget(t)}, flags...)
	c := startCommand(t, args...)
	i := c.err.await(t, 0, "msg=listening")
	c.err.mu.Lock()
	m := listeningLine.FindStringSubmatch(c.err.lines[i])
	c.err.mu.Unlock()
	if m == nil {
		t.Fatalf("bad listening line: %s", c.err)
	}
	return &chaosRun{cmdRun: c, proxy: m[1], control: m[2]}
}

// post sends a command to the control endpoint and returns the status and
// body.
func (c *chaosRun) post(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Post(c.control+path, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (c *chaosRun) must(t *testing.T, path string) {
	t.Helper()
	if status, body := c.post(t, path); status != http.StatusOK {
		t.Fatalf("POST %s: %d %s", path, status, body)
	}
}

func dialProxy(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// echoes sends s and reads it back within patience, returning the time.
func echoes(t *testing.T, conn net.Conn, s string) time.Duration {
	t.Helper()
	start := time.Now()
	if _, err := io.WriteString(conn, s); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(wait))
	defer conn.SetReadDeadline(time.Time{})
	got := make([]byte, len(s))
	if _, err := io.ReadFull(conn, got); err != nil || string(got) != s {
		t.Fatalf("echo of %q: %q, %v", s, got, err)
	}
	return time.Since(start)
}

// silent checks that nothing arrives on conn for 200ms.
func silent(t *testing.T, conn net.Conn) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	defer conn.SetReadDeadline(time.Time{})
	if n, err := conn.Read(make([]byte, 64)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("during a blackhole: read %d bytes, %v", n, err)
	}
}

func TestChaosControl(t *testing.T) {
	c := startChaos(t, "--keys=false")
	conn := dialProxy(t, c.proxy)
	echoes(t, conn, "hello")

	resp, err := http.Get(c.control + "/links")
	if err != nil {
		t.Fatal(err)
	}
	var links []struct{ Client string }
	json.NewDecoder(resp.Body).Decode(&links)
	resp.Body.Close()
	if len(links) != 1 || links[0].Client != conn.LocalAddr().String() {
		t.Fatalf("links %+v, want the one from %s", links, conn.LocalAddr())
	}

	c.must(t, "/blackhole?dir=up")
	io.WriteString(conn, "held")
	silent(t, conn)
	c.must(t, "/heal")
	conn.SetReadDeadline(time.Now().Add(wait))
	got := make([]byte, 4)
	if _, err := io.ReadFull(conn, got); err != nil || string(got) != "held" {
		t.Fatalf("after heal: %q, %v", got, err)
	}
	c.err.await(t, 0, "time=", "blackhole upstream, all links")
	c.err.await(t, 0, "time=", "heal, all links")

	c.must(t, "/delay?d=100ms")
	if rt := echoes(t, conn, "slow"); rt < 200*time.Millisecond {
		t.Fatalf("round trip with 100ms each way took %v", rt)
	}
	c.must(t, "/heal")
	c.must(t, "/limit?rate=16k&dir=down&link="+conn.LocalAddr().String())
	c.err.await(t, 0, "limit downstream to 16384 B/s")
	c.must(t, "/heal")

	for path, want := range map[string]int{
		"/blackhole?dir=sideways": http.StatusBadRequest,
		"/limit?rate=fast":        http.StatusBadRequest,
		"/delay?d=soon":           http.StatusBadRequest,
		"/cut?link=1.2.3.4:5":     http.StatusNotFound,
		"/explode":                http.StatusBadRequest,
	} {
		if status, body := c.post(t, path); status != want {
			t.Errorf("POST %s: %d %s, want %d", path, status, body, want)
		}
	}

	c.must(t, "/cut")
	conn.SetReadDeadline(time.Now().Add(wait))
	if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("after /cut: %v, want a reset", err)
	}
	c.err.await(t, 0, "cut")

	other := dialProxy(t, c.proxy)
	echoes(t, other, "again")
	c.must(t, "/close")
	other.SetReadDeadline(time.Now().Add(wait))
	if _, err := other.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("after /close: %v, want EOF", err)
	}

	c.cancel()
	if err := c.exit(t); err != nil {
		t.Fatalf("run: %v", err)
	}
}

// Keys read from stdin apply the same faults; q quits.
func TestChaosKeys(t *testing.T) {
	c := startChaos(t, "--keys")
	conn := dialProxy(t, c.proxy)
	echoes(t, conn, "hi")
	c.send(t, "b")
	c.err.await(t, 0, "blackhole both, all links")
	c.send(t, "h")
	c.err.await(t, 0, "heal, all links")
	echoes(t, conn, "back")
	c.send(t, "?")
	c.out.await(t, 0, "keys (then Enter)")
	c.send(t, "q")
	if err := c.exit(t); err != nil {
		t.Fatalf("run after q: %v", err)
	}
	if !strings.Contains(c.err.String(), "msg=stopped") {
		t.Fatalf("no stopped line:\n%s", c.err)
	}
}

func TestChaosFlags(t *testing.T) {
	if _, err := parseChaosFlags([]string{"--listen", ":0"}, io.Discard); err == nil || !strings.Contains(err.Error(), "--target") {
		t.Fatalf("no target: %v", err)
	}
	for in, want := range map[string]int{"2048": 2048, "64k": 64 << 10, "1M": 1 << 20} {
		if got, err := parseRate(in); err != nil || got != want {
			t.Errorf("parseRate(%q) = %d, %v", in, got, err)
		}
	}
}
