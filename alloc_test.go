//go:build !race

package pulse

import (
	"errors"
	"testing"
	"time"
)

// Allocation counts, checked without -race: under the race detector
// sync.Pool drops items at random, on purpose, so pooled buffers allocate.

// discardTransport takes every write at once.
type discardTransport struct{ fakeTransport }

func (*discardTransport) writeFrames([]frame, time.Time) error { return nil }

// A heartbeat costs no allocation on the writer's path: taking the batch,
// encoding it and handing it to the socket.
func TestHeartbeatAllocatesNothing(t *testing.T) {
	s := newTestServer(t, nil)
	c := &Conn{srv: s, t: &discardTransport{}, kind: HeartbeatFrame}
	arr := new([maxBatchFrames]frame)
	allocs := testing.AllocsPerRun(100, func() {
		c.out.ping = true
		fs := c.nextBatch(arr[:0])
		if err := c.writeBatch(fs); err != nil {
			t.Fatal(err)
		}
		f := encodeFrames(fs)
		if len(f.bytes()) != 2 {
			t.Fatal(errors.New("a ping frame is two bytes"))
		}
		f.release()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per heartbeat, want 0", allocs)
	}
}

// inlineDiscard takes every write at once, without blocking.
type inlineDiscard struct{ discardTransport }

func (*inlineDiscard) tryWriteFrames(fs []frame) (func(time.Time) error, error) {
	f := encodeFrames(fs)
	f.release()
	return nil, nil
}

// On a transport that writes without blocking, the wheel writes the
// heartbeat itself: no writer goroutine, no allocation.
func TestInlineHeartbeatAllocatesNothing(t *testing.T) {
	s := newTestServer(t, nil)
	c := &Conn{srv: s, t: &inlineDiscard{}, kind: HeartbeatFrame}
	allocs := testing.AllocsPerRun(100, func() {
		if !c.beat() {
			t.Fatal("beat refused on an open connection")
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per inline heartbeat, want 0", allocs)
	}
	if c.writing || c.out.ping {
		t.Fatalf("after the heartbeat: writing %v, ping still queued %v", c.writing, c.out.ping)
	}
}
