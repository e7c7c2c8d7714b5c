package pulse

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// SendWait waits for room in half the queue instead of cutting the
// connection, leaves the other half to Send, gives up when its context
// ends, and is released by a close.
func TestSendWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newTestServer(t, &Options{QueueSize: 4, DrainWindow: time.Millisecond})
		runServer(t, s)
		release := make(chan struct{})
		ft := newFakeTransport(func(_ *Conn, op opcode, _ []byte) {
			if op == opText {
				<-release // the peer takes one message per release
			}
		})
		c, closed := fakeConn(t, s, ft, HeartbeatFrame)
		msg := Message{Type: MessageText, Data: []byte("x")}
		sent := make(chan error)
		go func() {
			for range 6 {
				if err := c.SendWait(context.Background(), msg); err != nil {
					sent <- err
					return
				}
			}
			sent <- nil
		}()
		synctest.Wait() // two in the writer's batch, two queued (half of 4), the fifth waiting
		if n := c.out.len(); n != 2 {
			t.Fatalf("queue holds %d, want 2 while SendWait waits", n)
		}
		for range 2 { // the other half is Send's
			if err := c.Send(msg); err != nil {
				t.Fatalf("Send beside a waiting SendWait: %v", err)
			}
		}
		for range 2 {
			release <- struct{}{}
		}
		for range 6 {
			release <- struct{}{}
		}
		if err := <-sent; err != nil {
			t.Fatalf("SendWait: %v", err)
		}

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c.SendWait(ctx, msg) // taken by the writer, which waits for the peer
		synctest.Wait()
		for range 2 {
			c.SendWait(ctx, msg) // half the queue
		}
		if err := c.SendWait(ctx, msg); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("SendWait on a full queue past its deadline: %v", err)
		}
		go func() { sent <- c.SendWait(context.Background(), msg) }()
		synctest.Wait()
		c.closeFor(CloseSlowConsumer, "test", DisconnectSlowConsumer)
		if err := <-sent; !errors.Is(err, ErrClosed) {
			t.Fatalf("SendWait across a close: %v, want ErrClosed", err)
		}
		close(release)
		<-closed
	})
}
