package hub

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// memKeyCost is what one remembered key costs in memory beyond its own
// bytes (its map entry with the position, its place in two queues, and
// the slack of those), as TestMemoryKeyFlood measures it on amd64; the
// byte bounds charge every key len(key)+memKeyCost.
const memKeyCost = 224

// memExpireStep is the most queue entries one call expires: expiry keeps
// up with additions, one step per call, without making a caller wait for
// a whole window's keys.
const memExpireStep = 1024

// memKeyLimits are the bounds of a memKeys.
type memKeyLimits struct {
	window                     time.Duration
	perChannel, perChannelSize int // keys and bytes of one channel
	total, totalSize           int // keys and bytes of all channels
}

// memKeys remembers the idempotency keys of all of a Memory's channels,
// each for the dedup window at most. Keys leave oldest first: when they
// expire, when their channel is over its bounds, or when all channels
// together are over theirs. It has its own lock, taken after a stream's,
// and is never held while delivering.
type memKeys struct {
	limits memKeyLimits // set by newMemKeys, never changes

	// The unix nanoseconds at which expire has work, or MaxInt64: a call
	// before then checks an atomic and takes no lock.
	due atomic.Int64

	mu       sync.Mutex // guards the fields below
	channels map[string]*memChannelKeys
	queue    fifo[memKeyRef] // every key added, oldest first; some already left their channel
	n, size  int             // the keys remembered, and the bytes charged for them
	seq      uint64          // of the last key added
}

// memChannelKeys are the keys of one channel, oldest first.
type memChannelKeys struct {
	name  string
	pos   map[string]Position
	order fifo[memKey]
	size  int // bytes charged
}

type memKey struct {
	key string
	at  int64 // unix nanoseconds when it was added
	seq uint64
}

// memKeyRef is a key's place in the queue of all channels. It is stale
// once the key has left its channel by another way.
type memKeyRef struct {
	c   *memChannelKeys
	seq uint64
}

func newMemKeys(limits memKeyLimits) *memKeys {
	k := &memKeys{limits: limits, channels: make(map[string]*memChannelKeys)}
	k.due.Store(math.MaxInt64)
	return k
}

// lookup returns the position of channel's key if it was added within the
// window and is still remembered; never for "".
func (k *memKeys) lookup(channel, key string, now time.Time) (Position, bool) {
	if key == "" {
		return Position{}, false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	c := k.channels[channel]
	if c == nil {
		return Position{}, false
	}
	for c.order.len() > 0 && k.expired(c.order.front(), now) {
		k.drop(c) // its ref in the queue goes stale
	}
	pos, ok := c.pos[key]
	return pos, ok
}

// add remembers key, if not empty, as channel's key of the publication at
// pos, and pushes out the oldest keys over the bounds.
func (k *memKeys) add(channel, key string, pos Position, now time.Time) {
	if key == "" {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	c := k.channels[channel]
	if c == nil {
		c = &memChannelKeys{name: channel, pos: make(map[string]Position)}
		k.channels[channel] = c
	}
	k.seq++
	c.order.push(memKey{key: key, at: now.UnixNano(), seq: k.seq})
	c.pos[key] = pos
	c.size += memKeyCost + len(key)
	k.n, k.size = k.n+1, k.size+memKeyCost+len(key)
	k.queue.push(memKeyRef{c, k.seq})
	for c.order.len() > k.limits.perChannel || c.size > k.limits.perChannelSize {
		k.drop(c)
	}
	for k.n > k.limits.total || k.size > k.limits.totalSize {
		k.dropOldest()
	}
	k.compact()
	k.due.CompareAndSwap(math.MaxInt64, now.Add(k.limits.window).UnixNano())
}

// expire forgets up to memExpireStep keys that have outlived the window,
// whichever channel they belong to. Every call of the Memory makes one
// step, so keys leave on time even when nothing is published.
func (k *memKeys) expire(now time.Time) {
	if now.UnixNano() < k.due.Load() {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for range memExpireStep {
		ref, ok := k.oldest()
		if !ok {
			k.due.Store(math.MaxInt64)
			return
		}
		if oldest := ref.c.order.front(); !k.expired(oldest, now) {
			k.due.Store(oldest.at + int64(k.limits.window))
			return
		}
		k.queue.pop()
		k.drop(ref.c)
	}
	k.due.Store(now.UnixNano()) // more to do: the next call goes on
}

func (k *memKeys) expired(key *memKey, now time.Time) bool {
	return now.UnixNano()-key.at >= int64(k.limits.window)
}

// oldest skips the stale refs at the front of the queue and returns the
// first live one, which is its channel's oldest key, without popping it.
func (k *memKeys) oldest() (memKeyRef, bool) {
	for k.queue.len() > 0 {
		ref := *k.queue.front()
		if ref.live() {
			return ref, true
		}
		k.queue.pop()
	}
	return memKeyRef{}, false
}

// dropOldest forgets the oldest key of all channels.
func (k *memKeys) dropOldest() {
	if ref, ok := k.oldest(); ok {
		k.queue.pop()
		k.drop(ref.c)
	}
}

// drop forgets c's oldest key, and c itself once it has none; the key's
// ref in the queue, unless the caller popped it, goes stale.
func (k *memKeys) drop(c *memChannelKeys) {
	old := c.order.pop()
	delete(c.pos, old.key) // the only entry of its key: add follows a lookup that missed
	c.size -= memKeyCost + len(old.key)
	k.n, k.size = k.n-1, k.size-memKeyCost-len(old.key)
	if c.order.len() == 0 {
		delete(k.channels, c.name)
	}
}

// compact rebuilds the queue without its stale refs once they outnumber
// the live ones, so that the queue stays within twice the keys remembered.
func (k *memKeys) compact() {
	if k.queue.len() <= 2*k.n+64 {
		return
	}
	var live fifo[memKeyRef]
	for k.queue.len() > 0 {
		if ref := k.queue.pop(); ref.live() {
			live.push(ref)
		}
	}
	k.queue = live
}

// live reports whether the key r names is still in its channel: a
// channel's keys leave only from its front, so r is live unless the
// channel's oldest key is younger.
func (r memKeyRef) live() bool {
	return r.c.order.len() > 0 && r.c.order.front().seq <= r.seq
}

// clear forgets every key.
func (k *memKeys) clear() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.channels = make(map[string]*memChannelKeys)
	k.queue = fifo[memKeyRef]{}
	k.n, k.size = 0, 0
	k.due.Store(math.MaxInt64)
}

// fifo is a queue on a slice: pushed at the back, popped at the front.
// The popped part of the slice is cut off once it is half of it, so a
// queue holds at most about twice its length.
type fifo[T any] struct {
	items []T
	head  int
}

func (q *fifo[T]) len() int  { return len(q.items) - q.head }
func (q *fifo[T]) front() *T { return &q.items[q.head] }
func (q *fifo[T]) push(v T)  { q.items = append(q.items, v) }

func (q *fifo[T]) pop() T {
	var zero T
	v := q.items[q.head]
	q.items[q.head] = zero
	q.head++
	switch {
	case q.head == len(q.items):
		*q = fifo[T]{} // empty: give the memory back
	case q.head >= 64 && 2*q.head >= len(q.items):
		q.items = append([]T(nil), q.items[q.head:]...)
		q.head = 0
	}
	return v
}
