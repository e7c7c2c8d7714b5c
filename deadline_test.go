package pulse

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// livePeer is a fake transport whose peer answers every heartbeat at once.
func livePeer() *fakeTransport {
	return newFakeTransport(func(c *Conn, op opcode, data []byte) {
		if isHeartbeat(HeartbeatFrame, op, data) {
			go c.onPong()
		}
	})
}

// A connection's deadline fires once, at the wheel's first tick at or after
// it: sooner than its next heartbeat or silence check, and far beyond the
// wheel's span (Interval+Timeout) alike.
func TestOnDeadlineFiresOnTime(t *testing.T) {
	for _, after := range []time.Duration{0, 300 * time.Millisecond, 1500 * time.Millisecond, 10 * time.Second, 90*time.Second + 50*time.Millisecond} {
		t.Run(after.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newTestServer(t, ruleOptions(HeartbeatFrame))
				runServer(t, s)
				c, closed := fakeConn(t, s, livePeer(), HeartbeatFrame)
				start := time.Now()
				fired := make(chan time.Duration, 2)
				c.OnDeadline(start.Add(after), func() { fired <- time.Since(start) })
				got := <-fired
				if got < after || got > after+s.Tick() {
					t.Fatalf("fired after %v, want within [%v, %v]", got, after, after+s.Tick())
				}
				time.Sleep(3 * (testInterval + testTimeout)) // virtual: heartbeats go on
				synctest.Wait()
				select {
				case d := <-fired:
					t.Fatalf("fired again after %v", d)
				case err := <-closed:
					t.Fatalf("closed: %v", err)
				default:
				}
			})
		})
	}
}

// A deadline replaced before it fires does not fire; the new one does, and
// a zero time cancels.
func TestOnDeadlineReplacedAndCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newTestServer(t, ruleOptions(HeartbeatFrame))
		runServer(t, s)
		c, _ := fakeConn(t, s, livePeer(), HeartbeatFrame)
		start := time.Now()
		fired := make(chan string, 3)
		c.OnDeadline(start.Add(500*time.Millisecond), func() { fired <- "first" })
		c.OnDeadline(start.Add(5*time.Second), func() { fired <- "second" })
		if got := <-fired; got != "second" || time.Since(start) < 5*time.Second {
			t.Fatalf("%s fired after %v, want the second after 5s", got, time.Since(start))
		}
		c.OnDeadline(time.Now().Add(time.Second), func() { fired <- "cancelled" })
		c.OnDeadline(time.Time{}, nil)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if len(fired) != 0 {
			t.Fatalf("%s fired after it was cancelled", <-fired)
		}
	})
}

// A deadline may close its connection; one set after the connection ended
// never fires.
func TestOnDeadlineCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newTestServer(t, ruleOptions(HeartbeatFrame))
		runServer(t, s)
		c, closed := fakeConn(t, s, livePeer(), HeartbeatFrame)
		start := time.Now()
		c.OnDeadline(start.Add(700*time.Millisecond), func() { c.Close(CloseTokenExpired, "token expired") })
		err := <-closed
		if err.Code != CloseTokenExpired || time.Since(start) > 700*time.Millisecond+s.Tick()+closeGrace {
			t.Fatalf("closed with %v after %v, want %v at 700ms", err, time.Since(start), CloseTokenExpired)
		}
		c.OnDeadline(time.Now(), func() { t.Error("a deadline fired on an ended connection") })
		time.Sleep(5 * time.Second)
		synctest.Wait()
	})
}

// A deadline set in the session's Open, before the connection's first turn
// is scheduled, brings that turn forward: five connections, so that a
// first heartbeat on the deadline's tick by chance cannot hide a late one.
func TestOnDeadlineSetAtOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newTestServer(t, ruleOptions(HeartbeatFrame))
		runServer(t, s)
		fired := make(chan time.Duration, 5)
		for range 5 {
			start := time.Now()
			open := func(c *Conn) { c.OnDeadline(start.Add(50*time.Millisecond), func() { fired <- time.Since(start) }) }
			ft := livePeer()
			c, err := s.open(ft, handshake{kind: HeartbeatFrame}, &funcSession{f: Funcs{Open: open}})
			if err != nil {
				t.Fatal(err)
			}
			ft.mu.Lock()
			ft.conn = c
			ft.mu.Unlock()
			go func() { // the reader: ends when the transport does, at the drain
				<-ft.ended
				c.readEnded(errors.New("fake: read failed"))
			}()
		}
		for range 5 {
			if got := <-fired; got < 50*time.Millisecond || got > 50*time.Millisecond+s.Tick() {
				t.Fatalf("fired after %v, want within [50ms, %v]", got, 50*time.Millisecond+s.Tick())
			}
		}
	})
}
