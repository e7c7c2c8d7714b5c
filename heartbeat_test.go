package pulse

import (
	"testing"
	"testing/synctest"
	"time"
)

// The heartbeat rule in virtual time: every test here runs in a synctest
// bubble, so durations are exact and nothing sleeps for real.

const (
	testInterval = time.Second
	testTimeout  = time.Second
)

func ruleOptions(kind HeartbeatKind) *Options {
	return &Options{Interval: testInterval, Timeout: testTimeout, Heartbeat: kind, DrainWindow: 10 * time.Millisecond}
}

var allKinds = []HeartbeatKind{HeartbeatFrame, HeartbeatApp, HeartbeatText}

// isHeartbeat reports whether a frame the server wrote is its heartbeat.
func isHeartbeat(kind HeartbeatKind, op opcode, data []byte) bool {
	switch kind {
	case HeartbeatApp:
		return op == opText && string(data) == string(appPing)
	case HeartbeatText:
		return op == opText && string(data) == "ping"
	}
	return op == opPing
}

// answerHeartbeat is the peer's answer to a heartbeat of kind, fed to c.
func answerHeartbeat(c *Conn, kind HeartbeatKind) {
	switch kind {
	case HeartbeatApp:
		c.onMessage(Message{Type: MessageText, Data: appPong})
	case HeartbeatText:
		c.onMessage(Message{Type: MessageText, Data: []byte("pong")})
	default:
		c.onPong()
	}
}

func TestSilentPeerDetectedAtBound(t *testing.T) {
	for _, kind := range allKinds {
		t.Run(kind.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newTestServer(t, ruleOptions(kind))
				runServer(t, s)
				start := time.Now()
				_, closed := fakeConn(t, s, newFakeTransport(nil), kind)
				err := <-closed
				silent := time.Since(start)
				bound := testInterval + testTimeout
				if err.Code != CloseHeartbeatTimeout {
					t.Fatalf("close code %v, want %v", err.Code, CloseHeartbeatTimeout)
				}
				if silent < bound || silent > bound+s.Tick() {
					t.Fatalf("detected after %v of silence, want within [%v, %v]", silent, bound, bound+s.Tick())
				}
			})
		})
	}
}

// A peer that answers for a while and then goes silent is detected within
// the bound of its last answer.
func TestPeerGoingSilentDetectedAtBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newTestServer(t, ruleOptions(HeartbeatFrame))
		runServer(t, s)
		answers, lastAnswer := 0, time.Time{}
		ft := newFakeTransport(func(c *Conn, op opcode, data []byte) {
			if op == opPing && answers < 5 {
				answers++
				lastAnswer = time.Now()
				go c.onPong()
			}
		})
		_, closed := fakeConn(t, s, ft, HeartbeatFrame)
		err := <-closed
		silent := time.Since(lastAnswer)
		if answers != 5 || err.Code != CloseHeartbeatTimeout {
			t.Fatalf("answers %d, close %v; want 5 answers then %v", answers, err, CloseHeartbeatTimeout)
		}
		bound := testInterval + testTimeout
		if silent < bound || silent > bound+s.Tick() {
			t.Fatalf("detected %v after the last answer, want within [%v, %v]", silent, bound, bound+s.Tick())
		}
	})
}

// A peer whose answers take anywhere up to just under Timeout is never
// dropped, even when a fast answer is followed by the slowest one, which is
// when the silence between answers is longest.
func TestPeerAnsweringInsideTimeoutStays(t *testing.T) {
	for _, kind := range allKinds {
		t.Run(kind.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newTestServer(t, ruleOptions(kind))
				runServer(t, s)
				slow := false
				heartbeats := make(chan struct{}, 100)
				ft := newFakeTransport(func(c *Conn, op opcode, data []byte) {
					if !isHeartbeat(kind, op, data) {
						return
					}
					delay := time.Duration(0)
					if slow = !slow; slow {
						delay = testTimeout - time.Millisecond
					}
					time.AfterFunc(delay, func() { answerHeartbeat(c, kind); heartbeats <- struct{}{} })
				})
				c, closed := fakeConn(t, s, ft, kind)
				for range 30 {
					select {
					case <-heartbeats:
					case err := <-closed:
						t.Fatalf("live peer dropped: %v", err)
					}
				}
				last, smoothed := c.RTT()
				if last != 0 && last != testTimeout-time.Millisecond || smoothed <= 0 {
					t.Fatalf("RTT last %v smoothed %v, want last in {0, %v} and smoothed > 0", last, smoothed, testTimeout-time.Millisecond)
				}
			})
		})
	}
}

// Heartbeats of one connection are exactly Interval apart.
func TestHeartbeatsAreIntervalApart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newTestServer(t, ruleOptions(HeartbeatFrame))
		runServer(t, s)
		ft := newFakeTransport(func(c *Conn, op opcode, _ []byte) {
			if op == opPing {
				go c.onPong()
			}
		})
		fakeConn(t, s, ft, HeartbeatFrame)
		time.Sleep(10*testInterval + testInterval/2)
		synctest.Wait()
		var times []time.Time
		for _, f := range ft.sent() {
			if f.op == opPing {
				times = append(times, f.at)
			}
		}
		if len(times) < 10 {
			t.Fatalf("%d heartbeats in 10.5 intervals, want at least 10", len(times))
		}
		for i := 1; i < len(times); i++ {
			if gap := times[i].Sub(times[i-1]); gap != testInterval {
				t.Fatalf("heartbeat %d came %v after the previous, want %v", i, gap, testInterval)
			}
		}
	})
}

// The first heartbeats of connections accepted together spread over the
// interval, so that a mass reconnect does not ping in lockstep.
func TestFirstHeartbeatJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newTestServer(t, ruleOptions(HeartbeatFrame))
		runServer(t, s)
		start := time.Now()
		const conns = 200
		firsts := make(chan time.Duration, conns)
		for range conns {
			var once bool
			ft := newFakeTransport(func(_ *Conn, op opcode, _ []byte) {
				if op == opPing && !once {
					once = true
					firsts <- time.Since(start)
				}
			})
			fakeConn(t, s, ft, HeartbeatFrame)
		}
		perTick := map[time.Duration]int{}
		for range conns {
			at := <-firsts
			if at <= 0 || at > testInterval {
				t.Fatalf("first heartbeat at %v, want within (0, %v]", at, testInterval)
			}
			perTick[at]++
		}
		steps := int(testInterval / s.Tick())
		if len(perTick) != steps {
			t.Fatalf("first heartbeats fell on %d distinct ticks, want all %d: %v", len(perTick), steps, perTick)
		}
		for at, n := range perTick {
			if n > conns/steps*3 {
				t.Fatalf("%d of %d first heartbeats at %v: not spread", n, conns, at)
			}
		}
	})
}
