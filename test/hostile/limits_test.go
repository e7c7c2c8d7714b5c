//go:build linux

package hostile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// One address opens 30 connections with 8 bystanders of its own already in
// and a limit of 20: 12 get in, 18 get 503 with Retry-After.
func pastAddressLimit(t *testing.T, s *server) {
	var in, refused atomic.Int64
	var conns sync.Map
	err := parallel(30, 30, func(i int) error {
		ws, resp, err := websocket.DefaultDialer.Dial("ws://"+s.addr+"/echo", nil)
		if err == nil {
			in.Add(1)
			conns.Store(i, ws)
			return nil
		}
		if resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			return fmt.Errorf("over the limit: %v, want 503 with Retry-After", err)
		}
		refused.Add(1)
		return nil
	})
	conns.Range(func(_, ws any) bool { ws.(*websocket.Conn).Close(); return true })
	if err != nil {
		t.Fatal(err)
	}
	if in.Load() != 20-numBystanders || refused.Load() != 30-(20-numBystanders) {
		t.Fatalf("%d in and %d refused, want %d and %d", in.Load(), refused.Load(), 20-numBystanders, 30-(20-numBystanders))
	}
}

// 20 clients storm the server for 2 s, each dialling again 10 ms after
// it is refused, at once when admitted (admitted ones hang up at once): no second
// admits more than the cap of 100 and its burst of 10; the refused get 503
// with a Retry-After of 1-10 s.
func upgradeStorm(t *testing.T, s *server) {
	const cap, burst, workers, storm = 100, 10, 20, 2 * time.Second
	var mu sync.Mutex
	var admitted []time.Time
	var refused atomic.Int64
	end := time.Now().Add(storm)
	err := parallel(workers, workers, func(int) error {
		for time.Now().Before(end) {
			ws, resp, err := websocket.DefaultDialer.Dial("ws://"+s.addr+"/echo", nil)
			if err == nil {
				mu.Lock()
				admitted = append(admitted, time.Now())
				mu.Unlock()
				ws.Close()
				continue
			}
			if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
				return fmt.Errorf("storm: %v, want 503", err)
			}
			if n, _ := strconv.Atoi(resp.Header.Get("Retry-After")); n < 1 || n > 10 {
				return fmt.Errorf("Retry-After %q, want 1-10 s", resp.Header.Get("Retry-After"))
			}
			refused.Add(1)
			time.Sleep(10 * time.Millisecond) // 2,000 attempts a second in all: past the cap, and easy on this machine's ports
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(admitted, time.Time.Compare)
	worst := 0
	for i, first := range admitted {
		n := 0
		for _, at := range admitted[i:] {
			if at.Sub(first) < time.Second {
				n++
			}
		}
		worst = max(worst, n)
	}
	if worst > cap+burst+5 { // the cap, its burst, and admissions this side timed late
		t.Errorf("%d upgrades admitted within one second, over the cap of %d and its burst of %d", worst, cap, burst)
	}
	t.Logf("upgrade storm: %d admitted and %d refused in %v, at most %d admitted in any second", len(admitted), refused.Load(), storm, worst)
}

// The restart storm's size: PULSE_STORM_CLIENTS clients (default 400)
// against an admission rate of PULSE_STORM_RATE (default 200/s), so that
// CI runs it in seconds and a person can run it at full size.
func stormClients() int { return envInt("PULSE_STORM_CLIENTS", 400) }
func stormRate() int    { return envInt("PULSE_STORM_RATE", 200) }

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// Every client of a server that restarted comes back at once and honours
// Retry-After (plus a random part of a second, as the Go client does): the
// storm is admitted at no more than the rate and its burst, and all are
// back.
func restartStorm(t *testing.T, s *server) {
	n, rate := stormClients(), stormRate()
	var mu sync.Mutex
	var admitted []time.Time
	var conns []*websocket.Conn
	defer func() {
		for _, ws := range conns {
			ws.Close()
		}
	}()
	start := time.Now()
	err := parallel(n, n, func(int) error {
		for time.Since(start) < time.Minute {
			ws, resp, err := websocket.DefaultDialer.Dial("ws://"+s.addr+"/echo", nil)
			if err == nil {
				mu.Lock()
				admitted = append(admitted, time.Now())
				conns = append(conns, ws)
				mu.Unlock()
				return nil
			}
			if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
				return fmt.Errorf("storm: %v, want 503", err)
			}
			after, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			time.Sleep(time.Duration(after)*time.Second + mathrand.N(time.Second)) // the client's own wait
		}
		return errors.New("a client was not back within a minute")
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(admitted, time.Time.Compare)
	worst := 0
	for i, first := range admitted {
		k, _ := slices.BinarySearchFunc(admitted[i:], first.Add(time.Second), time.Time.Compare)
		worst = max(worst, k)
	}
	// The clients see their admissions late, by a varying lag under load,
	// which bunches some of them into one second on this side: the rate is
	// checked over the whole storm, the worst second only reported.
	burst := max(1, rate/10)
	span := admitted[len(admitted)-1].Sub(admitted[0]).Seconds()
	if bound := float64(rate)*(span+0.5) + float64(burst); float64(len(admitted)) > bound {
		t.Errorf("%d upgrades admitted in %.1f s, over the rate of %d/s and its burst of %d", len(admitted), span, rate, burst)
	}
	p99 := admitted[(len(admitted)*99+99)/100-1].Sub(start)
	t.Logf("restart storm: %d clients, rate %d/s: 99%% back after %v, all after %v; at most %d admitted in any second",
		n, rate, p99.Round(time.Millisecond), admitted[len(admitted)-1].Sub(start).Round(time.Millisecond), worst)
}

// 300 TCP connections that never send a byte: each is closed once
// --handshake-timeout (1 s) has passed.
func silentTCP(t *testing.T, s *server) {
	err := parallel(300, 300, func(int) error {
		conn, err := net.Dial("tcp", s.addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		start := time.Now()
		conn.SetReadDeadline(start.Add(wait))
		if _, err := conn.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			return fmt.Errorf("a silent connection got %v, want it closed", err)
		}
		if took := time.Since(start); took < 900*time.Millisecond || took > 5*time.Second {
			return fmt.Errorf("a silent connection closed after %v, want about 1 s", took)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// 300 keep-alive HTTP connections each make one request, then hold the
// connection idle: each is closed once --idle-timeout (1 s) has passed.
func idleKeepAlive(t *testing.T, s *server) {
	err := parallel(300, 300, func(int) error {
		conn, err := net.Dial("tcp", s.addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(wait))
		io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: pulse\r\n\r\n")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return fmt.Errorf("a keep-alive request: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		answered := time.Now()
		if _, err := br.ReadByte(); err != io.EOF {
			return fmt.Errorf("an idle keep-alive connection read %v, want it closed", err)
		}
		if took := time.Since(answered); took > 5*time.Second {
			return fmt.Errorf("an idle keep-alive connection closed after %v, want about 1 s", took)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// 200 connections upgrade, then neither read nor write: each is closed
// as dead within interval + timeout (1 s) and a tick, its resources freed.
func silentUpgraded(t *testing.T, s *server) {
	err := parallel(200, 200, func(int) error {
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+s.addr+"/echo", nil)
		if err != nil {
			return err
		}
		defer ws.Close()
		start := time.Now()
		ws.SetPingHandler(func(string) error { return nil }) // silent: no pong
		if code := closeCode(ws); code != 4000 {
			return fmt.Errorf("a silent connection closed with %d, want 4000", code)
		}
		if took := time.Since(start); took > 3*time.Second {
			return fmt.Errorf("a silent connection closed after %v, want about 1 s", took)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
