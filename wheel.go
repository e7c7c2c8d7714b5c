package pulse

import (
	"context"
	"sync"
	"time"
)

// wheel is the one timing structure shared by every connection of a Server:
// a hashed timing wheel. Time is counted in ticks since start; slot k%len
// holds an intrusive list of the entries due at tick k. The wheel spans more
// ticks than any entry is ever scheduled ahead (Interval+Timeout), so a slot
// never holds entries of two different ticks. An idle connection costs one
// list node: no goroutine, no timer.
type wheel[T any] struct {
	// Set by newWheel, never changes.
	tick  time.Duration
	start time.Time
	fire  func(k int64, now time.Duration, v T) (next int64)

	mu    sync.Mutex // guards everything below and every node's links
	slots []wheelNode[T]
	cur   int64 // the next tick to fire; entries are due at cur or later
}

// wheelNode links one entry into a slot. The zero value is unscheduled.
type wheelNode[T any] struct {
	prev, next *wheelNode[T] // nil when not in a slot; the slot heads link to themselves
	at         int64         // the tick this node is due at
	removed    bool          // set once by remove; the node is never scheduled again
	hurried    bool          // hurry asked for tick soon while the node was out of its slot
	soon       int64
	value      T
}

// newWheel returns a wheel whose span covers ahead ticks. fire is called for
// each due entry, from Run's goroutine, with the tick, the time since start,
// and the entry; it returns the tick to fire at next, or -1 to drop the entry.
func newWheel[T any](tick time.Duration, ahead int64, fire func(int64, time.Duration, T) int64) *wheel[T] {
	w := &wheel[T]{tick: tick, start: time.Now(), fire: fire, slots: make([]wheelNode[T], ahead+2)}
	for i := range w.slots {
		head := &w.slots[i]
		head.prev, head.next = head, head
	}
	return w
}

// since is the wheel's clock: the monotonic time since start.
func (w *wheel[T]) since() time.Duration { return time.Since(w.start) }

// floor is the last tick at or before t; ceil the first tick at or after t.
func (w *wheel[T]) floor(t time.Duration) int64 { return int64(t / w.tick) }
func (w *wheel[T]) ceil(t time.Duration) int64  { return int64((t + w.tick - 1) / w.tick) }

// schedule puts n at tick k, clamped into the wheel's span: a tick already
// fired becomes the next one, a tick past the span fires early and the entry
// reschedules itself.
func (w *wheel[T]) schedule(n *wheelNode[T], k int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n.removed {
		return
	}
	if n.hurried {
		k, n.hurried = min(k, n.soon), false
	}
	w.linkLocked(n, k)
}

// hurry makes n due at tick k if it is due later: at once if n is in its
// slot, else at its next schedule (n is being fired, or not yet scheduled).
func (w *wheel[T]) hurry(n *wheelNode[T], k int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case n.removed:
	case n.next != nil:
		if k < n.at {
			w.linkLocked(n, k)
		}
	case !n.hurried || k < n.soon:
		n.hurried, n.soon = true, k
	}
}

// linkLocked puts n in the slot of tick k, clamped into the wheel's span.
func (w *wheel[T]) linkLocked(n *wheelNode[T], k int64) {
	w.unlinkLocked(n)
	n.at = min(max(k, w.cur), w.cur+int64(len(w.slots))-1)
	head := &w.slots[n.at%int64(len(w.slots))]
	n.prev, n.next = head.prev, head
	head.prev.next = n
	head.prev = n
}

// remove takes n out of the wheel for good.
func (w *wheel[T]) remove(n *wheelNode[T]) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n.removed = true
	w.unlinkLocked(n)
}

func (w *wheel[T]) unlinkLocked(n *wheelNode[T]) {
	if n.next == nil {
		return
	}
	n.prev.next, n.next.prev = n.next, n.prev
	n.prev, n.next = nil, nil
}

// pop unlinks and returns the first entry due at tick k, or nil.
func (w *wheel[T]) pop(k int64) *wheelNode[T] {
	w.mu.Lock()
	defer w.mu.Unlock()
	head := &w.slots[k%int64(len(w.slots))]
	if head.next == head {
		return nil
	}
	n := head.next
	w.unlinkLocked(n)
	return n
}

// run fires every tick until ctx is done. A late wakeup fires each missed
// tick in order, so no entry is skipped.
func (w *wheel[T]) run(ctx context.Context) {
	ticker := time.NewTicker(w.tick)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			w.advance(w.since())
		}
	}
}

// advance fires every tick up to and including the one now falls in.
func (w *wheel[T]) advance(now time.Duration) {
	for last := w.floor(now); ; {
		w.mu.Lock()
		k := w.cur
		if k > last {
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		for n := w.pop(k); n != nil; n = w.pop(k) {
			if next := w.fire(k, now, n.value); next >= 0 {
				w.schedule(n, max(next, k+1))
			}
		}
		w.mu.Lock()
		w.cur = k + 1
		w.mu.Unlock()
	}
}
