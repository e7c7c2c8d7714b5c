package hub

import (
	"flag"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// memKeysOf returns how many keys m remembers for channel.
func memKeysOf(m *Memory, channel string) int {
	m.keys.mu.Lock()
	defer m.keys.mu.Unlock()
	if c := m.keys.channels[channel]; c != nil {
		if len(c.pos) != c.order.len() {
			panic(fmt.Sprintf("channel %q: %d keys in the map, %d in order", channel, len(c.pos), c.order.len()))
		}
		return len(c.pos)
	}
	return 0
}

// checkKeyBounds fails unless the key store is within its bounds and its
// counts are true.
func checkKeyBounds(t *testing.T, m *Memory) {
	t.Helper()
	k := m.keys
	k.mu.Lock()
	defer k.mu.Unlock()
	n, size := 0, 0
	for name, c := range k.channels {
		if c.order.len() > k.limits.perChannel || c.size > k.limits.perChannelSize {
			t.Fatalf("channel %q holds %d keys, %d bytes; bounds %d, %d", name, c.order.len(), c.size, k.limits.perChannel, k.limits.perChannelSize)
		}
		n += c.order.len()
		size += c.size
	}
	if n != k.n || size != k.size || n > k.limits.total || size > k.limits.totalSize {
		t.Fatalf("%d keys of %d bytes (counted %d, %d); bounds %d, %d", n, size, k.n, k.size, k.limits.total, k.limits.totalSize)
	}
	if k.queue.len() > 2*k.n+64 {
		t.Fatalf("the queue holds %d refs for %d keys", k.queue.len(), k.n)
	}
}

func newMemWithKeys(o MemoryOptions) (*Memory, *memClock) {
	clock := &memClock{time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	o.HistorySize, o.Now = 1, clock.Now
	return NewMemory(&o), clock
}

// Over its bound, a channel forgets its oldest keys first: the newest are
// still duplicates, the oldest publish again.
func TestMemoryKeysBoundedPerChannel(t *testing.T) {
	for _, o := range []MemoryOptions{
		{MaxKeysPerChannel: 100},
		{MaxKeyBytesPerChannel: 100 * (memKeyCost + 4)}, // keys "k000" to "k999"
	} {
		m, _ := newMemWithKeys(o)
		for i := range 1000 {
			memPublish(t, m, "a", fmt.Sprintf("k%03d", i))
			checkKeyBounds(t, m)
		}
		if n := memKeysOf(m, "a"); n != 100 {
			t.Fatalf("%+v: %d keys remembered, want 100", o, n)
		}
		if !memPublish(t, m, "a", "k999").Duplicate || !memPublish(t, m, "a", "k900").Duplicate {
			t.Errorf("%+v: the newest keys were forgotten", o)
		}
		if memPublish(t, m, "a", "k899").Duplicate {
			t.Errorf("%+v: the 101st newest key is remembered over the bound", o)
		}
	}
}

// Over the overall bound, the oldest keys of all channels go first.
func TestMemoryKeysBoundedOverall(t *testing.T) {
	for _, o := range []MemoryOptions{
		{MaxKeys: 250},
		{MaxKeyBytes: 250 * (memKeyCost + 4)},
	} {
		m, _ := newMemWithKeys(o)
		for i := range 1000 {
			memPublish(t, m, fmt.Sprint("c", i%10), fmt.Sprintf("k%03d", i))
			checkKeyBounds(t, m)
		}
		if m.keys.n != 250 {
			t.Fatalf("%+v: %d keys remembered, want 250", o, m.keys.n)
		}
		if !memPublish(t, m, "c0", "k750").Duplicate || !memPublish(t, m, "c9", "k999").Duplicate {
			t.Errorf("%+v: the newest keys were forgotten", o)
		}
		if memPublish(t, m, "c9", "k749").Duplicate {
			t.Errorf("%+v: the 251st newest key is remembered over the bound", o)
		}
	}
}

// Keys expire on time: a call on another channel, publishing nothing,
// frees the expired keys of every channel.
func TestMemoryKeysExpireWithoutPublish(t *testing.T) {
	m, clock := newMemWithKeys(MemoryOptions{DedupWindow: time.Minute})
	for i := range 3 * memExpireStep {
		memPublish(t, m, fmt.Sprint("c", i%7), fmt.Sprint("k", i))
	}
	clock.Advance(time.Minute)
	for range 3 {
		if _, err := m.Members(t.Context(), "elsewhere"); err != nil {
			t.Fatal(err)
		}
	}
	checkKeyBounds(t, m)
	if m.keys.n != 0 || len(m.keys.channels) != 0 || m.keys.queue.items != nil {
		t.Fatalf("after the window and three calls: %d keys in %d channels, a queue of %d; want none",
			m.keys.n, len(m.keys.channels), len(m.keys.queue.items))
	}
}

var keyFlood = flag.Int("keyflood", 300_000, "keyed publishes of TestMemoryKeyFlood")

// A flood of keyed publishes with 36-byte keys, as from many clients,
// leaves the key store within its default bounds, and the heap with it.
// Run with -v -keyflood=1000000 to see the figures of the issue.
func TestMemoryKeyFlood(t *testing.T) {
	m, clock := newMemWithKeys(MemoryOptions{})
	before := liveHeap()
	for i := range *keyFlood {
		key := fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i) // the shape of a UUID
		if _, err := m.Publish(t.Context(), fmt.Sprint("room-", i%100), []byte(`{}`), PublishOptions{IdempotencyKey: key}); err != nil {
			t.Fatal(err)
		}
		if i%1000 == 0 {
			clock.Advance(time.Millisecond)
		}
	}
	checkKeyBounds(t, m)
	after := liveHeap()
	grown := int64(after) - int64(before)
	t.Logf("%d keyed publishes in 100 channels: %d keys kept (%d bytes counted); live heap %.1f MB before, %.1f MB after (%+.1f MB, %.0f B per key kept)",
		*keyFlood, m.keys.n, m.keys.size, mb(before), mb(after), mb(uint64(max(grown, 0))), float64(grown)/float64(m.keys.n))
	if limit := int64(DefaultMaxKeyBytes) * 5 / 4; grown > limit {
		t.Errorf("the heap grew by %.1f MB, over the key bound of %.0f MB and a quarter", float64(grown)/(1<<20), mb(DefaultMaxKeyBytes))
	}
	clock.Advance(DefaultDedupWindow)
	for m.keys.n > 0 {
		m.Members(t.Context(), "elsewhere") // no publish: expiry runs anyway
	}
	t.Logf("a window later, after calls that publish nothing: live heap %.1f MB", mb(liveHeap()))
	runtime.KeepAlive(m)
}

func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func mb(b uint64) float64 { return float64(b) / (1 << 20) }
