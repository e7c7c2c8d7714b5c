package hub

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// memClock is a fake clock for one goroutine. (hubtest.Clock cannot be
// used here: hubtest imports hub.)
type memClock struct{ now time.Time }

func (c *memClock) Now() time.Time          { return c.now }
func (c *memClock) Advance(d time.Duration) { c.now = c.now.Add(d) }

// newMemForTest returns a Memory that keeps size publications for a minute
// and keys for two.
func newMemForTest(size int) (*Memory, *memClock) {
	clock := &memClock{time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	m := NewMemory(&MemoryOptions{HistorySize: size, HistoryTTL: time.Minute, DedupWindow: 2 * time.Minute, Now: clock.Now})
	return m, clock
}

func memPublish(t *testing.T, m *Memory, channel, key string) PublishResult {
	t.Helper()
	res, err := m.Publish(t.Context(), channel, []byte(`{}`), PublishOptions{IdempotencyKey: key})
	if err != nil {
		t.Fatalf("Publish(%q): %v", channel, err)
	}
	return res
}

func TestMemoryDefaults(t *testing.T) {
	m := NewMemory(nil)
	if m.historySize != DefaultHistorySize || m.historyTTL != DefaultHistoryTTL || m.dedupWindow != DefaultDedupWindow || m.now == nil {
		t.Errorf("NewMemory(nil) = size %d, ttl %v, window %v; want the defaults", m.historySize, m.historyTTL, m.dedupWindow)
	}
}

// A swept idle channel comes back with a new epoch: a position of the old
// one is unrecoverable.
func TestMemoryIdleChannelGetsNewEpoch(t *testing.T) {
	m, clock := newMemForTest(8)
	old := memPublish(t, m, "a", "k").Pos
	clock.Advance(2*time.Minute - time.Second) // history expired, key not yet
	m.mu.Lock()
	m.sweep()
	m.mu.Unlock()
	if m.channels["a"] == nil {
		t.Fatal("swept a channel whose idempotency key is remembered")
	}
	clock.Advance(time.Second)
	m.mu.Lock()
	m.sweep()
	m.mu.Unlock()
	if m.channels["a"] != nil {
		t.Fatal("an idle channel was not swept")
	}
	pubs, top, err := m.History(t.Context(), "a", old)
	if !errors.Is(err, ErrUnrecoverable) || len(pubs) != 0 || top.Epoch == old.Epoch || top.Offset != 0 {
		t.Errorf("History(%v) after the sweep = %d, %v, %v; want none, offset 0 of a new epoch, ErrUnrecoverable", old, len(pubs), top, err)
	}
	if res := memPublish(t, m, "a", "k"); res.Duplicate || res.Pos != (Position{Epoch: top.Epoch, Offset: 1}) {
		t.Errorf("Publish after the sweep = %+v, want offset 1 of %q", res, top.Epoch)
	}
}

// Subscriptions, members and retained history keep a channel.
func TestMemorySweepKeepsBusyChannels(t *testing.T) {
	m, clock := newMemForTest(8)
	unsubscribe, err := m.Subscribe(context.Background(), "subscribed", func(Event) {})
	if err != nil {
		t.Fatal(err)
	}
	defer unsubscribe()
	if err := m.Join(t.Context(), "present", Member{ID: "s1"}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	memPublish(t, m, "recent", "")
	m.mu.Lock()
	m.sweep()
	m.mu.Unlock()
	for _, name := range []string{"subscribed", "present", "recent"} {
		if m.channels[name] == nil {
			t.Errorf("channel %q was swept", name)
		}
	}
}

// Creating channels sweeps the idle ones once their number doubled, so
// channels used once do not pile up.
func TestMemoryChannelsBounded(t *testing.T) {
	m, clock := newMemForTest(8)
	for round := range 10 {
		for i := range 100 {
			memPublish(t, m, fmt.Sprintf("r%d-c%d", round, i), "")
		}
		clock.Advance(3 * time.Minute)
	}
	if n := len(m.channels); n > 2*100+memSweepMin {
		t.Errorf("%d channels held after 10 rounds of 100 used once, want at most %d", n, 2*100+memSweepMin)
	}
}

// History and keys never hold more than their bounds, and are freed once
// expired.
func TestMemoryStorageBounded(t *testing.T) {
	const size = 16
	m, clock := newMemForTest(size)
	for i := range 10 * size {
		memPublish(t, m, "a", fmt.Sprint("k", i))
	}
	s := m.channels["a"]
	if len(s.hist.buf) > size || s.hist.n != size {
		t.Errorf("history holds %d in a ring of %d, want %d in at most %d", s.hist.n, len(s.hist.buf), size, size)
	}
	if n := memKeysOf(m, "a"); n != 10*size {
		t.Errorf("%d keys remembered within the window, want %d", n, 10*size)
	}
	clock.Advance(time.Minute)
	memPublish(t, m, "a", "young")
	clock.Advance(time.Minute)
	memPublish(t, m, "a", "last")
	if n := memKeysOf(m, "a"); n != 2 || m.keys.n != 2 || s.hist.n != 1 { // young is a history TTL old
		t.Errorf("after the window: %d keys, %d in all, %d publications; want 2, 2, 1", n, m.keys.n, s.hist.n)
	}
	clock.Advance(2 * time.Minute)
	memPublish(t, m, "a", "")
	clock.Advance(time.Minute)
	if _, _, err := m.History(t.Context(), "a", Position{}); err != nil || s.hist.buf != nil || m.keys.n != 0 || m.keys.queue.items != nil {
		t.Errorf("History = %v; after all expired: a ring of %d, %d keys, a queue of %d; want all freed",
			err, len(s.hist.buf), m.keys.n, len(m.keys.queue.items))
	}
}

// A stream swept between its lookup and its lock refuses to run: the
// caller looks the channel up again.
func TestMemorySweptStreamRefused(t *testing.T) {
	m, clock := newMemForTest(8)
	memPublish(t, m, "a", "")
	s := m.channels["a"]
	clock.Advance(time.Hour)
	m.mu.Lock()
	m.sweep()
	m.mu.Unlock()
	ok, _ := s.run(func(*memStream, time.Time) error {
		t.Error("ran on a swept stream")
		return nil
	}, clock.Now)
	if ok {
		t.Error("run on a swept stream reported ok")
	}
}

// The ring keeps order across growth and wrap-around.
func TestMemoryHistoryRing(t *testing.T) {
	for _, size := range []int{1, 2, 3, 5, 8} {
		var h memHistory
		for i := 1; i <= 3*size+1; i++ {
			h.push(Publication{Pos: Position{Offset: uint64(i)}}, size)
			want := min(i, size)
			pubs := h.from(0)
			if h.n != want || len(pubs) != want || pubs[0].Pos.Offset != uint64(i-want+1) || pubs[want-1].Pos.Offset != uint64(i) {
				t.Fatalf("size %d after %d pushes: %d kept, %v; want offsets %d..%d", size, i, h.n, pubs, i-want+1, i)
			}
		}
	}
}
