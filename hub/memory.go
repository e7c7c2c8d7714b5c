package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// MemoryOptions configures a Memory broker. Nil means defaults.
type MemoryOptions struct {
	// HistorySize is how many publications each channel keeps.
	// Zero means DefaultHistorySize (1000).
	HistorySize int
	// HistoryTTL is how long a publication stays in history.
	// Zero means DefaultHistoryTTL (10m).
	HistoryTTL time.Duration
	// DedupWindow is how long an idempotency key is remembered, at most:
	// the four bounds below may push keys out sooner.
	// Zero means DefaultDedupWindow (2m).
	DedupWindow time.Duration
	// MaxKeysPerChannel bounds the idempotency keys one channel remembers.
	// Zero means DefaultMaxKeysPerChannel (10,000).
	MaxKeysPerChannel int
	// MaxKeyBytesPerChannel bounds the memory of one channel's keys, each
	// counted as its length plus 224 bytes of bookkeeping.
	// Zero means DefaultMaxKeyBytesPerChannel (3 MiB).
	MaxKeyBytesPerChannel int
	// MaxKeys bounds the keys all channels together remember.
	// Zero means DefaultMaxKeys (200,000).
	MaxKeys int
	// MaxKeyBytes bounds the memory of all channels' keys, counted the
	// same way. Zero means DefaultMaxKeyBytes (48 MiB).
	MaxKeyBytes int
	// Now is the clock of ages and windows. Nil means time.Now.
	Now func() time.Time
}

// Defaults of the Memory's bounds on idempotency keys.
const (
	DefaultMaxKeysPerChannel     = 10_000
	DefaultMaxKeyBytesPerChannel = 3 << 20
	DefaultMaxKeys               = 200_000
	DefaultMaxKeyBytes           = 48 << 20
)

// Memory is the in-memory PresenceBroker, the default of a single node.
//
// Each channel is a stream with its own lock and a random epoch, created on
// first use. Its history is a ring of at most HistorySize publications, each
// kept for HistoryTTL.
//
// Idempotency keys are remembered for DedupWindow, within bounds of count
// and bytes per channel (MaxKeysPerChannel, MaxKeyBytesPerChannel) and
// overall (MaxKeys, MaxKeyBytes); a key over MaxKeyLength is refused with
// ErrKeyTooLong. When a bound is reached, the oldest keys go first: the
// dedup guarantee then holds for the most recent keys only, so within a
// flood of keyed publishes (past 10,000 in one channel, or some 200,000 in
// all, by default) a retry of an older publish is applied twice. Expired
// keys leave on time: every call of the Memory, on any channel, expires a
// bounded step of them, oldest first across all channels. (No sweeper
// goroutine: a Memory has no Run to own one, and with the bounds an idle
// Memory holds at most MaxKeyBytes until its next call.)
//
// A stream that has had no subscription, no member and no publish for the
// longer of HistoryTTL and DedupWindow is idle; idle streams are freed by
// a sweep that runs when the number of channels has doubled since the last
// one, and a later use of the channel starts a new epoch.
//
// Delivery is synchronous: Publish, Join and Leave call deliver while
// holding the channel's lock, so deliver must not block and must not call
// back into the Memory for that channel (unsubscribe included). Delivered
// and returned publications share their Data: do not modify it. None of
// the methods block, so ctx is ignored. Memory starts no goroutines.
type Memory struct {
	// Set by NewMemory, never change.
	historySize int
	historyTTL  time.Duration
	dedupWindow time.Duration
	idleAfter   time.Duration // max(historyTTL, dedupWindow)
	now         func() time.Time
	keys        *memKeys // the idempotency keys of every channel; its own lock

	mu       sync.RWMutex // guards the fields below; taken before a stream's mu
	closed   bool
	channels map[string]*memStream
	sweepAt  int // sweep idle streams when a new one would reach this count
}

var _ PresenceBroker = (*Memory)(nil)

// memSweepMin is the fewest channels that trigger a sweep of idle streams.
const memSweepMin = 64

var errMemEmptyChannel = errors.New("hub: empty channel name")

// NewMemory returns a Memory configured by opts.
func NewMemory(opts *MemoryOptions) *Memory {
	var o MemoryOptions
	if opts != nil {
		o = *opts
	}
	o.setDefaults()
	return &Memory{
		historySize: o.HistorySize,
		historyTTL:  o.HistoryTTL,
		dedupWindow: o.DedupWindow,
		idleAfter:   max(o.HistoryTTL, o.DedupWindow),
		now:         o.Now,
		keys: newMemKeys(memKeyLimits{
			window:         o.DedupWindow,
			perChannel:     o.MaxKeysPerChannel,
			perChannelSize: o.MaxKeyBytesPerChannel,
			total:          o.MaxKeys,
			totalSize:      o.MaxKeyBytes,
		}),
		channels: make(map[string]*memStream),
		sweepAt:  memSweepMin,
	}
}

func (o *MemoryOptions) setDefaults() {
	if o.HistorySize <= 0 {
		o.HistorySize = DefaultHistorySize
	}
	if o.HistoryTTL <= 0 {
		o.HistoryTTL = DefaultHistoryTTL
	}
	if o.DedupWindow <= 0 {
		o.DedupWindow = DefaultDedupWindow
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	for _, bound := range []struct {
		v   *int
		def int
	}{
		{&o.MaxKeysPerChannel, DefaultMaxKeysPerChannel},
		{&o.MaxKeyBytesPerChannel, DefaultMaxKeyBytesPerChannel},
		{&o.MaxKeys, DefaultMaxKeys},
		{&o.MaxKeyBytes, DefaultMaxKeyBytes},
	} {
		if *bound.v <= 0 {
			*bound.v = bound.def
		}
	}
}

// Publish implements Broker.
func (m *Memory) Publish(_ context.Context, channel string, data []byte, opts PublishOptions) (PublishResult, error) {
	var res PublishResult
	if n := len(opts.IdempotencyKey); n > MaxKeyLength {
		return res, fmt.Errorf("%w: %d bytes, at most %d", ErrKeyTooLong, n, MaxKeyLength)
	}
	err := m.withStream(channel, func(s *memStream, now time.Time) error {
		res = m.publish(s, channel, data, opts, now)
		return nil
	})
	return res, err
}

// publish appends a copy of data to s and delivers it, unless its key was
// used within the dedup window. s.mu is held.
func (m *Memory) publish(s *memStream, channel string, data []byte, opts PublishOptions, now time.Time) PublishResult {
	key := opts.IdempotencyKey
	m.trim(s, now)
	if pos, ok := m.keys.lookup(channel, key, now); ok {
		return PublishResult{Pos: pos, Duplicate: true}
	}
	s.top++
	p := Publication{Channel: channel, Pos: Position{Epoch: s.epoch, Offset: s.top}, Data: slices.Clone(data), From: opts.From, Time: now}
	s.hist.push(p, m.historySize)
	m.keys.add(channel, key, p.Pos, now)
	s.lastActive = now
	s.deliver(Event{Type: EventPublication, Publication: p})
	return PublishResult{Pos: p.Pos}
}

// History implements Broker.
func (m *Memory) History(_ context.Context, channel string, since Position) ([]Publication, Position, error) {
	var (
		pubs []Publication
		top  Position
	)
	err := m.withStream(channel, func(s *memStream, now time.Time) error {
		m.trim(s, now)
		top = Position{Epoch: s.epoch, Offset: s.top}
		if since.IsZero() {
			return nil
		}
		oldest := s.top - uint64(s.hist.n) + 1 // s.top+1 when nothing is retained
		if since.Epoch != s.epoch || since.Offset > s.top || since.Offset+1 < oldest {
			return ErrUnrecoverable
		}
		pubs = s.hist.from(int(since.Offset + 1 - oldest))
		return nil
	})
	return pubs, top, err
}

// Subscribe implements Broker.
func (m *Memory) Subscribe(_ context.Context, channel string, deliver func(Event)) (unsubscribe func(), err error) {
	if deliver == nil {
		return nil, errors.New("hub: subscribe with a nil deliver")
	}
	err = m.withStream(channel, func(s *memStream, _ time.Time) error {
		if s.subs == nil {
			s.subs = make(map[uint64]func(Event))
		}
		s.nextSub++
		id := s.nextSub
		s.subs[id] = deliver
		unsubscribe = func() { m.unsubscribe(s, id) }
		return nil
	})
	return unsubscribe, err
}

// unsubscribe removes subscription id of s. A stream with subscriptions is
// never swept, so s is still the channel's stream.
func (m *Memory) unsubscribe(s *memStream, id uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.subs[id]; !ok {
		return
	}
	delete(s.subs, id)
	s.lastActive = m.now()
	if len(s.subs) == 0 {
		s.subs = nil
	}
}

// Join implements PresenceBroker.
func (m *Memory) Join(_ context.Context, channel string, member Member) error {
	return m.withStream(channel, func(s *memStream, _ time.Time) error {
		member.Info = slices.Clone(member.Info)
		if s.join(member) {
			s.deliver(Event{Type: EventJoin, Member: member})
		}
		return nil
	})
}

// Leave implements PresenceBroker. The EventLeave carries the member as it
// last joined.
func (m *Memory) Leave(_ context.Context, channel string, member Member) error {
	return m.withStream(channel, func(s *memStream, now time.Time) error {
		old, gone := s.leave(member.ID, member.Owner)
		if !gone {
			return nil // not there, or still held by another connection
		}
		s.lastActive = now
		s.deliver(Event{Type: EventLeave, Member: old})
		return nil
	})
}

// Members implements PresenceBroker.
func (m *Memory) Members(_ context.Context, channel string) ([]Member, error) {
	var members []Member
	err := m.withStream(channel, func(s *memStream, _ time.Time) error {
		for _, member := range s.members {
			members = append(members, member.Member)
		}
		return nil
	})
	return members, err
}

// Close forgets every channel; later calls return ErrClosed. Subscriptions
// get no events from calls that begin after Close returns.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.channels = nil
	m.keys.clear()
	return nil
}

// withStream runs f with channel's stream, created if needed, locked, and
// the clock's time. It returns what f returns.
func (m *Memory) withStream(channel string, f func(s *memStream, now time.Time) error) error {
	if channel == "" {
		return errMemEmptyChannel
	}
	m.keys.expire(m.now())
	for {
		s, err := m.stream(channel)
		if err != nil {
			return err
		}
		if ok, err := s.run(f, m.now); ok {
			return err
		}
		// s was swept between the lookup and the lock: look again.
	}
}

// stream returns channel's stream, creating it if needed.
func (m *Memory) stream(channel string) (*memStream, error) {
	m.mu.RLock()
	s, closed := m.channels[channel], m.closed
	m.mu.RUnlock()
	switch {
	case closed:
		return nil, ErrClosed
	case s != nil:
		return s, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	if s = m.channels[channel]; s != nil {
		return s, nil
	}
	if len(m.channels)+1 >= m.sweepAt {
		m.sweep()
	}
	s = &memStream{epoch: newEpoch(), lastActive: m.now()}
	m.channels[channel] = s
	return s, nil
}

// sweep frees idle streams and sets when the next sweep runs, so that the
// cost of sweeping stays constant per created channel. m.mu is held.
func (m *Memory) sweep() {
	now := m.now()
	for name, s := range m.channels {
		if s.sweepIfIdle(now, m.idleAfter) {
			delete(m.channels, name)
		}
	}
	m.sweepAt = max(2*len(m.channels), memSweepMin)
}

// trim drops the publications of s older than the history TTL.
func (m *Memory) trim(s *memStream, now time.Time) {
	for s.hist.n > 0 && now.Sub(s.hist.at(0).Time) >= m.historyTTL {
		s.hist.pop()
	}
	if s.hist.n == 0 {
		s.hist = memHistory{} // free the ring
	}
}

func newEpoch() string {
	b := make([]byte, 8)
	rand.Read(b) // never fails
	return hex.EncodeToString(b)
}
