package pulse

import (
	"testing"
	"testing/synctest"
	"time"
)

// Frames queued while a write is under way go out together, in order, in
// the next write: answers to the peer, the heartbeat, then the messages.
func TestQueuedFramesFlushTogether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newTestServer(t, &Options{DrainWindow: time.Millisecond})
		runServer(t, s)
		release := make(chan struct{})
		ft := newFakeTransport(func(_ *Conn, op opcode, data []byte) {
			if string(data) == "first" {
				<-release
			}
		})
		c, closed := fakeConn(t, s, ft, HeartbeatFrame)
		c.Send(Message{Type: MessageText, Data: []byte("first")})
		synctest.Wait() // the writer waits inside the first write
		for _, m := range []string{"a", "b", "c"} {
			c.Send(Message{Type: MessageText, Data: []byte(m)})
		}
		c.onPing([]byte("p1"))
		c.onPing([]byte("p2"))
		c.queue(func(o *outbox) { o.ping = true })
		close(release)
		synctest.Wait()
		batches := ft.batches()
		want := []string{"10:p1", "10:p2", "9:", "1:a", "1:b", "1:c"}
		if len(batches) != 2 || !equalFrames(batches[1], want) {
			t.Fatalf("writes %v, want [first] then %v in one write", batches, want)
		}
		c.Close(CloseNormal, "")
		ft.end()
		<-closed
	})
}

func equalFrames(got []sentFrame, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i, f := range got {
		if f.String() != want[i] {
			return false
		}
	}
	return true
}

// Pings beyond maxPendingPongs drop the oldest owed pong, not the newest.
func TestPendingPongsBounded(t *testing.T) {
	var o outbox
	for i := range maxPendingPongs + 3 {
		o.owePong([]byte{byte(i)})
	}
	if len(o.pongs) != maxPendingPongs || o.pongs[0][0] != 3 || o.pongs[maxPendingPongs-1][0] != maxPendingPongs+2 {
		t.Fatalf("pongs %v, want the last %d in order", o.pongs, maxPendingPongs)
	}
}
