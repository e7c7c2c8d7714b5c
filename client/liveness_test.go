package client

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pulse-go/pulse"
)

// The client's timing logic in virtual time: a fake server in a synctest
// bubble, so every duration below is exact.

func newTestClient(f *fakeServer, s *states, opts *Options) *Client {
	if opts == nil {
		opts = &Options{}
	}
	opts.Dial = f.dial
	opts.OnState = s.record
	return New("ws://fake/ws", opts)
}

// A silent server makes the client degraded after Interval plus a tick,
// probe with a ping, recover on the pong, and give up after
// Interval+Timeout of silence.
func TestStateMachine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval, timeout = time.Second, time.Second
		f, s := newFakeServer(), newStates()
		c := newTestClient(f, s, &Options{Backoff: func(int) time.Duration { return time.Hour }})
		running(t, c)
		s.await(t, StateConnecting)
		conn := f.accept(t, interval, timeout)
		open := s.await(t, StateOpen)
		start := time.Now()
		if open.Generation != 1 || c.Generation() != 1 {
			t.Fatalf("generation %d/%d after the first welcome, want 1", open.Generation, c.Generation())
		}

		s.await(t, StateDegraded)
		if got, want := time.Since(start), interval+interval/10; got != want {
			t.Fatalf("degraded after %v of silence, want %v", got, want)
		}
		if r := conn.recv(t); r.MsgType() != "ping" {
			t.Fatalf("degraded client sent %+v, want a ping probe", r)
		}
		time.Sleep(30 * time.Millisecond)
		conn.sendJSON(map[string]string{"type": "pong"})
		s.await(t, StateOpen)
		if rtt := c.RTT(); rtt != 30*time.Millisecond {
			t.Fatalf("RTT %v from the probe, want 30ms", rtt)
		}

		heard := time.Now()
		s.await(t, StateDegraded)
		lost := s.await(t, StateReconnecting)
		if got, want := time.Since(heard), interval+timeout; got != want {
			t.Fatalf("lost after %v of silence, want exactly %v", got, want)
		}
		var ce *pulse.CloseError
		if !errors.As(lost.Err, &ce) || ce.Code != pulse.CloseHeartbeatTimeout {
			t.Fatalf("lost with %v, want a heartbeat timeout", lost.Err)
		}
	})
}

// Server pings are answered with pongs, and any frame counts as life: a
// server that only sends its heartbeat keeps the client open for ever.
func TestServerHeartbeatKeepsOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval, timeout = time.Second, 500 * time.Millisecond
		f, s := newFakeServer(), newStates()
		c := newTestClient(f, s, nil)
		running(t, c)
		conn := f.accept(t, interval, timeout)
		s.await(t, StateOpen)
		for range 100 {
			time.Sleep(interval)
			conn.sendJSON(map[string]string{"type": "ping"})
			if r := conn.recv(t); r.MsgType() != "pong" {
				t.Fatalf("answer to ping: %+v", r)
			}
		}
		synctest.Wait()
		if st := c.State(); st != StateOpen {
			t.Fatalf("state %v after 100 heartbeats, want open", st)
		}
		select {
		case ch := <-s.ch:
			t.Fatalf("state changed to %v", ch.State)
		default:
		}
	})
}

// Ping measures the round trip to the server's pong.
func TestPing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, s := newFakeServer(), newStates()
		c := newTestClient(f, s, nil)
		if _, err := c.Ping(t.Context()); !errors.Is(err, ErrNotOpen) {
			t.Fatalf("Ping before Run: %v, want ErrNotOpen", err)
		}
		running(t, c)
		conn := f.accept(t, time.Minute, time.Minute)
		s.await(t, StateOpen)
		go func() {
			conn.recv(t)
			time.Sleep(42 * time.Millisecond)
			conn.sendJSON(map[string]string{"type": "pong"})
		}()
		rtt, err := c.Ping(t.Context())
		if err != nil || rtt != 42*time.Millisecond {
			t.Fatalf("Ping: %v, %v; want 42ms", rtt, err)
		}
	})
}

// The attempt counter grows while dials fail and while connections die
// young, and resets only after a connection stayed open StableAfter.
func TestBackoffResetRule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		attempts := make(chan int, 100)
		backoff := func(n int) time.Duration {
			attempts <- n
			return time.Duration(n+1) * time.Second
		}
		f, s := newFakeServer(), newStates()
		c := newTestClient(f, s, &Options{Backoff: backoff, StableAfter: 10 * time.Second})
		running(t, c)
		prev := f.refuse(t)
		for n := range 3 {
			at := f.refuse(t)
			if got, want := at.Sub(prev), time.Duration(n+1)*time.Second; got != want {
				t.Fatalf("dial %d came %v after the one before, want %v", n+1, got, want)
			}
			prev = at
		}
		// A connection that dies young does not reset the counter...
		conn := f.accept(t, time.Hour, time.Hour)
		time.Sleep(5 * time.Second)
		conn.end(errors.New("reset by peer"))
		// ...one that stayed up StableAfter does.
		conn = f.accept(t, time.Hour, time.Hour)
		time.Sleep(10 * time.Second)
		conn.closeWith(pulse.CloseGoingAway, "bye")
		f.accept(t, time.Hour, time.Hour)
		want := []int{0, 1, 2, 3, 4, 0}
		for i, w := range want {
			if got := <-attempts; got != w {
				t.Fatalf("backoff call %d: attempt %d, want %d (sequence %v)", i, got, w, want)
			}
		}
		synctest.Wait()
		if g := c.Generation(); g != 3 {
			t.Fatalf("Generation %d after three connections, want 3", g)
		}
	})
}

// A close with retry=<ms> replaces the backoff by a delay in [0, window].
func TestRetryWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, s := newFakeServer(), newStates()
		c := newTestClient(f, s, &Options{Backoff: func(int) time.Duration { return time.Hour }})
		running(t, c)
		conn := f.accept(t, time.Hour, time.Hour)
		var longest time.Duration
		for range 20 {
			s.await(t, StateOpen)
			closed := time.Now()
			conn.closeWith(pulse.CloseServiceRestart, "server restart retry=5000")
			lost := s.await(t, StateReconnecting)
			if lost.Delay > 5*time.Second {
				t.Fatalf("delay %v, want within the 5s retry window", lost.Delay)
			}
			call := f.next(t)
			if got := call.at.Sub(closed); got != lost.Delay {
				t.Fatalf("redialed after %v, announced %v", got, lost.Delay)
			}
			longest = max(longest, lost.Delay)
			conn = f.welcome(call, time.Hour, time.Hour)
		}
		if longest < time.Second {
			t.Fatalf("20 delays all under %v: not spread over the window", longest)
		}
	})
}

// A terminal close code ends Run with the code; no dial follows.
func TestTerminalCloseCode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, s := newFakeServer(), newStates()
		c := newTestClient(f, s, nil)
		r := running(t, c)
		conn := f.accept(t, time.Hour, time.Hour)
		s.await(t, StateOpen)
		conn.closeWith(4100, "banned")
		<-r.done
		var ce *pulse.CloseError
		if !errors.As(r.err, &ce) || ce.Code != 4100 {
			t.Fatalf("Run returned %v, want the close 4100", r.err)
		}
		if st := s.await(t, StateClosed); st.Err == nil {
			t.Fatal("closed state without the error")
		}
		synctest.Wait()
		select {
		case <-f.dials:
			t.Fatal("dialed again after a terminal close code")
		default:
		}
	})
}

// A server that accepts but never welcomes is given up on after the
// handshake timeout.
func TestNoWelcome(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, s := newFakeServer(), newStates()
		c := newTestClient(f, s, &Options{HandshakeTimeout: 3 * time.Second, Backoff: func(int) time.Duration { return time.Hour }})
		running(t, c)
		f.next(t).answer <- dialAnswer{conn: newFakeConn()}
		start := time.Now()
		lost := s.await(t, StateReconnecting)
		if got := time.Since(start); got != 3*time.Second {
			t.Fatalf("gave up after %v, want the 3s handshake timeout", got)
		}
		var ce *pulse.CloseError
		if !errors.As(lost.Err, &ce) || !ce.Code.Retryable() {
			t.Fatalf("lost with %v, want a retryable error", lost.Err)
		}
		if c.Generation() != 0 {
			t.Fatalf("Generation %d without a welcome", c.Generation())
		}
	})
}

// A callback that holds the loop up longer than Interval+Timeout does not
// make frames that arrived meanwhile count as silence: the reader stamps
// each frame as it reads it.
func TestSlowCallbackIsNotSilence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval, timeout = time.Second, time.Second
		f, s := newFakeServer(), newStates()
		opts := &Options{OnPresence: func(string, Member, bool) { time.Sleep(3 * time.Second) }}
		c := newTestClient(f, s, opts)
		running(t, c)
		conn := f.accept(t, interval, timeout)
		s.await(t, StateOpen)
		conn.sendJSON(map[string]any{"type": "join", "channel": "room", "member": Member{ID: "x"}})
		time.Sleep(2500 * time.Millisecond)
		conn.sendJSON(map[string]string{"type": "ping"})
		if r := conn.recv(t); r.MsgType() != "pong" {
			t.Fatalf("answer to ping: %+v", r)
		}
		synctest.Wait()
		for {
			select {
			case ch := <-s.ch:
				if ch.State == StateReconnecting {
					t.Fatalf("gave up on a live server: %v", ch.Err)
				}
				continue
			default:
			}
			break
		}
		if c.Generation() != 1 {
			t.Fatalf("Generation %d, want 1", c.Generation())
		}
	})
}
