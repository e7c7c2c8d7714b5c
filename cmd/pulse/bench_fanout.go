package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pulse-go/pulse/wire"
)

// "pulse bench fanout": S subscribers in rooms of R (a channel each), P
// publishers publishing --rate messages per second in all, round robin
// over the rooms. Each publication's data holds the publisher's clock
// ("t", UnixNano): a delivery's latency is its arrival time less that.
// Positions count the rest: an offset a subscriber already had is a
// duplicate, a gap is lost. A publication acknowledged to its publisher
// that a subscriber of its room has not got when the run ends (it waits
// for them for the last fifth of --duration, 3 s at most) is counted
// apart, as undelivered: a server too slow for the rate, not a loss.

// fanout is one run's shared state.
type fanout struct {
	rooms        []string       // channel names
	acked        []atomic.Int64 // per room: highest offset acknowledged to a publisher
	epochs       sync.Map       // room index -> epoch of the acks
	acks         atomic.Int64
	refused      atomic.Int64 // publishes answered with an error
	firstRefusal atomic.Pointer[wire.Error]
	fanCounts
	subsOK   atomic.Int64 // subscribers confirmed
	subsDone chan struct{}
	subs     []*fanSub
}

// fanSub is one subscriber; its fields belong to its reader goroutine,
// except last, read at the end.
type fanSub struct {
	conn  *benchConn
	room  int
	epoch string
	last  atomic.Int64 // offset of the last publication received
}

// publication is the data of a measured publication.
type publication struct {
	T   int64 `json:"t"`
	Seq int64 `json:"seq"`
}

func newFanout(subscribers, room int) *fanout {
	var id [4]byte
	rand.Read(id[:])
	var rooms []string
	for k := range (subscribers + room - 1) / room {
		rooms = append(rooms, fmt.Sprintf("bench:%s:%d", hex.EncodeToString(id[:]), k))
	}
	return fanoutOf(rooms, subscribers)
}

// fanoutOf is the state of a fan-out over rooms with n subscribers in
// this process.
func fanoutOf(rooms []string, n int) *fanout {
	return &fanout{rooms: rooms, fanCounts: fanCounts{lat: newWindow()}, subsDone: make(chan struct{}),
		subs: make([]*fanSub, n), acked: make([]atomic.Int64, len(rooms))}
}

// subscriber returns the handler of the messages of subscriber first+i,
// the i-th of this process's.
func (f *fanout) subscriber(first, room int) func(i int, c *benchConn) func([]byte, time.Time) {
	return func(i int, c *benchConn) func([]byte, time.Time) {
		s := &fanSub{conn: c, room: (first + i) / room}
		f.subs[i] = s
		return func(data []byte, at time.Time) { f.receive(s, data, at) }
	}
}

// receive handles one message to subscriber s.
func (f *fanout) receive(s *fanSub, data []byte, at time.Time) {
	if p, t, ok := quickMessage(data); ok {
		f.count(s, p, t, at)
		return
	}
	m, err := wire.DecodeServer(data)
	if err != nil {
		return
	}
	switch m := m.(type) {
	case wire.Subscribed:
		s.epoch = m.Position.Epoch
		s.last.Store(int64(m.Position.Offset))
		if f.subsOK.Add(1) == int64(len(f.subs)) {
			close(f.subsDone)
		}
	case wire.Message:
		f.deliver(s, m.Publication, at)
	case wire.Batch:
		for _, p := range m.Publications {
			f.deliver(s, p, at)
		}
	}
}

// deliver counts one publication: by position, and its latency.
func (f *fanout) deliver(s *fanSub, p wire.Publication, at time.Time) {
	var pub publication
	json.Unmarshal(p.Data, &pub)
	f.count(s, p.Pos, pub.T, at)
}

// count counts a publication at pos sent at t (UnixNano, 0 if unknown).
func (f *fanout) count(s *fanSub, pos wire.Position, t int64, at time.Time) {
	off, last := int64(pos.Offset), s.last.Load()
	switch {
	case pos.Epoch != s.epoch:
		s.epoch = pos.Epoch // a new life of the channel: count from here
	case off <= last:
		f.dups.Add(1)
		return
	case off > last+1:
		f.lost.Add(off - last - 1)
	}
	s.last.Store(off)
	f.delivers.Add(1)
	if t > 0 {
		f.lat.add(at.Sub(time.Unix(0, t)))
	}
}

// Markers of the quick parse of a live message, in the order the server
// writes its fields.
var (
	quickType   = []byte(`{"type":"message"`)
	quickEpoch  = []byte(`"epoch":"`)
	quickOffset = []byte(`"offset":`)
	quickT      = []byte(`"data":{"t":`)
)

// quickMessage reads the position and the send time of a live message
// without decoding all of it: a subscriber of a busy fan-out must cost
// less than the server it measures. ok false means "decode it in full".
func quickMessage(data []byte) (pos wire.Position, t int64, ok bool) {
	if !bytes.HasPrefix(data, quickType) {
		return pos, 0, false
	}
	rest, ok1 := after(data, quickEpoch)
	end := bytes.IndexByte(rest, '"')
	if !ok1 || end < 0 {
		return pos, 0, false
	}
	pos.Epoch = string(rest[:end])
	rest, ok2 := after(rest, quickOffset)
	off, rest, ok3 := leadingInt(rest)
	rest, ok4 := after(rest, quickT)
	t, _, ok5 := leadingInt(rest)
	pos.Offset = uint64(off)
	return pos, t, ok2 && ok3 && ok4 && ok5
}

// after returns what follows the first marker in b.
func after(b, marker []byte) ([]byte, bool) {
	i := bytes.Index(b, marker)
	if i < 0 {
		return nil, false
	}
	return b[i+len(marker):], true
}

// leadingInt parses the decimal digits at the start of b.
func leadingInt(b []byte) (int64, []byte, bool) {
	var n int64
	i := 0
	for ; i < len(b) && i < 19 && b[i] >= '0' && b[i] <= '9'; i++ {
		n = n*10 + int64(b[i]-'0')
	}
	return n, b[i:], i > 0
}

// publisher returns the handler of a publisher's messages: its acks.
func (f *fanout) publisher(int, *benchConn) func([]byte, time.Time) {
	return func(data []byte, _ time.Time) {
		m, err := wire.DecodeServer(data)
		if err != nil {
			return
		}
		switch m := m.(type) {
		case wire.Ack:
			if m.Pos == nil || m.ID == 0 {
				return
			}
			room := int(m.ID-1) % len(f.rooms)
			f.epochs.Store(room, m.Pos.Epoch)
			for off := int64(m.Pos.Offset); ; {
				cur := f.acked[room].Load()
				if off <= cur || f.acked[room].CompareAndSwap(cur, off) {
					break
				}
			}
			f.acks.Add(1)
		case wire.Error:
			if f.refused.Add(1) == 1 {
				f.firstRefusal.Store(&m)
			}
		}
	}
}

// publish sends publication i to room i mod rooms, as an id that names
// the room again in the ack.
func (f *fanout) publish(c *benchConn, i int64) error {
	room := int(i % int64(len(f.rooms)))
	data, _ := json.Marshal(publication{T: time.Now().UnixNano(), Seq: i + 1})
	msg := wire.MustEncode(wire.Publish{ID: uint64(i) + 1, Channel: f.rooms[room], Data: data})
	return c.write(msg)
}

// tailLost counts, per subscriber, the acknowledged publications of its
// room it has not received.
func (f *fanout) tailLost() int64 {
	var n int64
	for _, s := range f.subs {
		if s == nil {
			continue
		}
		if gap := f.acked[s.room].Load() - s.last.Load(); gap > 0 {
			n += gap
		}
	}
	return n
}

// runFanout is "pulse bench fanout".
func runFanout(ctx context.Context, b *bench) (*benchResult, error) {
	if b.cfg.raw {
		return runFanoutRaw(ctx, b) // a broadcast endpoint, or the baseline's run
	}
	life := ctx // children live until the run's hard limit at most
	ctx, cancel := context.WithTimeout(ctx, b.cfg.duration)
	defer cancel()
	before, err := b.scrape(ctx)
	if err != nil {
		return nil, err
	}
	f := newFanout(b.cfg.subscribers, b.cfg.room)
	d := &benchDialer{url: b.cfg.url}
	pubs := newGroup()
	defer pubs.close()
	var shown atomic.Pointer[fanSubscribers]
	var r rate
	w := b.watch("deliveries", func() sample {
		var t fanTotals
		if subs := shown.Load(); subs != nil {
			t = (*subs).totals(true)
		}
		return sample{Open: t.Open + pubs.cnt.open.Load(), Rate: r.per(t.Delivers), P99: t.P99, Errs: t.Dropped + pubs.cnt.dropped.Load() + t.Lost}
	})
	defer w.end()
	subs, err := b.startFanSubscribers(ctx, life, f, d)
	if subs != nil {
		defer subs.close()
		shown.Store(&subs)
	}
	if err != nil {
		return nil, err
	}
	if err := pubs.dialAll(ctx, d, b.cfg.publishers, b.cfg.concurrency, f.publisher); err != nil {
		return nil, err
	}
	sent, window, deliveredInWindow := publishFor(ctx, b, fanPublisher{f, subs}, pubs)
	poll(ctx, func() bool { return subs.tailLost() <= 0 })
	after, _ := b.scrape(context.WithoutCancel(ctx))
	tail := subs.tailLost()
	res := &benchResult{Timeline: w.end(), Server: serverFigures(before, after)}
	if err := subs.close(); err != nil {
		return nil, err
	}
	t := subs.totals(false) // closed: nothing arrives any more
	res.Latency = map[string]*latencyStats{"delivery": f.lat.all.stats()}
	res.add("subscribers", float64(t.Opened), "")
	res.add("rooms", float64(len(f.rooms)), "")
	res.add("publications sent", float64(sent), "")
	res.add("publications acknowledged", float64(f.acks.Load()), "")
	res.add("deliveries", float64(t.Delivers), "")
	res.add("deliveries/s", float64(deliveredInWindow)/window.Seconds(), "/s")
	res.add("lost", float64(t.Lost), "")
	res.add("undelivered at the end", float64(tail), "")
	res.add("duplicated", float64(t.Dups), "")
	res.add("publishes refused", float64(f.refused.Load()), "")
	if e := f.firstRefusal.Load(); e != nil {
		fmt.Fprintf(b.stderr, "bench: %d publishes refused; the first: %s: %s (a pulse server limits each connection's publishes: pulse serve --publish-rate, or more --publishers)\n", f.refused.Load(), e.Code, e.Message)
	}
	res.add("connections dropped", float64(t.Dropped+pubs.cnt.dropped.Load()), "")
	return res, nil
}

// fanPublisher is the fan-out's publishing side for publishFor, with the
// deliveries of its subscribers wherever they are.
type fanPublisher struct {
	*fanout
	subs fanSubscribers
}

func (p fanPublisher) delivered() int64 { return p.subs.totals(false).Delivers }

// fanCounts is what both fanout runs, pulse's and the baseline's, count.
type fanCounts struct {
	lat      *window
	delivers atomic.Int64
	dups     atomic.Int64
	lost     atomic.Int64 // gaps seen live
}

// watch shows the run's progress: connections, deliveries/s, p99, errors.
func (c *fanCounts) watch(b *bench, subs, pubs *group) *watcher {
	var r rate
	return b.watch("deliveries", func() sample {
		return sample{Open: subs.cnt.open.Load() + pubs.cnt.open.Load(), Rate: r.per(c.delivers.Load()),
			P99: c.lat.p99(), Errs: subs.cnt.dropped.Load() + pubs.cnt.dropped.Load() + c.lost.Load()}
	})
}

// publishFor publishes until the run's deadline less a drain for the last
// deliveries, and returns what was sent, how long, and what was delivered
// meanwhile.
func publishFor(ctx context.Context, b *bench, f interface {
	publishAll(ctx context.Context, rate float64, pubs *group) int64
	delivered() int64
}, pubs *group) (sent int64, window time.Duration, delivered int64) {
	start := time.Now()
	drain := min(max(b.cfg.duration/5, 500*time.Millisecond), 3*time.Second)
	pubCtx, stop := context.WithTimeout(ctx, time.Until(deadlineOf(ctx))-drain)
	sent = f.publishAll(pubCtx, b.cfg.rate, pubs)
	stop()
	return sent, time.Since(start), f.delivered()
}

func (c *fanCounts) delivered() int64 { return c.delivers.Load() }

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// subscribeAll dials f's subscribers, the first of them number first of
// the run, subscribes each to its room and waits until all are confirmed.
func (f *fanout) subscribeAll(ctx context.Context, d *benchDialer, subs *group, first, room, concurrency int) error {
	if err := subs.dialAll(ctx, d, len(f.subs), concurrency, f.subscriber(first, room)); err != nil {
		return err
	}
	if n := subs.cnt.opened.Load(); n < int64(len(f.subs)) {
		return fmt.Errorf("only %d of %d subscribers connected (%d failures)", n, len(f.subs), subs.cnt.failures.Load())
	}
	for i, s := range f.subs {
		msg := wire.MustEncode(wire.Subscribe{ID: 1, Channel: f.rooms[s.room]})
		if err := s.conn.write(msg); err != nil {
			return fmt.Errorf("subscriber %d: %w", first+i, err)
		}
	}
	select {
	case <-f.subsDone:
		return nil
	case <-ctx.Done():
		return errors.New("the subscriptions were not all confirmed before --duration ended")
	}
}

// publishAll publishes at rate per second in all, round robin over the
// publishers, until ctx ends, and returns how many it sent.
func (f *fanout) publishAll(ctx context.Context, rate float64, pubs *group) int64 {
	pubs.mu.Lock()
	conns := append([]*benchConn(nil), pubs.conns...)
	pubs.mu.Unlock()
	var sent atomic.Int64
	var wg sync.WaitGroup
	for k, c := range conns {
		wg.Go(func() {
			pace(ctx, rate/float64(len(conns)), func(i int64) {
				if f.publish(c, i*int64(len(conns))+int64(k)) == nil {
					sent.Add(1)
				}
			})
		})
	}
	wg.Wait()
	return sent.Load()
}
