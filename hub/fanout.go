package hub

import (
	"context"
	"sync"

	"github.com/pulse-go/pulse"
	"github.com/pulse-go/pulse/wire"
)

// maxRecoveryBuffer bounds the live events a subscription holds while its
// history is being read; a subscriber that overflows it is cut as slow.
const maxRecoveryBuffer = 4096

// maxBatchBytes bounds the data of one batch message of replayed history.
const maxBatchBytes = 32 << 10

// fanout is one channel's subscribers on this node: the broker delivers
// the channel's events to deliver, one at a time, which sends each to
// every subscriber.
type fanout struct {
	// Set at creation, never changes.
	name  string
	ready chan struct{} // closed once the broker subscription is made or has failed

	// Set before ready is closed, never changed after.
	unsubscribe func() // ends the broker subscription; nil if it failed
	err         error  // why the broker subscription failed

	mu   sync.Mutex // guards subs and every subscription's recovery state
	subs map[*subscription]struct{}
}

// subscription is one connection's subscription to one channel.
type subscription struct {
	// Set at subscribe, never changes.
	s        *session
	channel  string
	presence bool    // a member: announced, and told of joins and leaves
	fan      *fanout // set by Hub.join

	// Set at subscribe, used by the reader to end a replay early.
	stopReplay func()        // cancels the replay
	replayed   chan struct{} // closed when the replay goroutine has returned

	// Guarded by the channel's mu.
	recovering bool    // history is being read: live events wait in buffer
	buffer     []Event // live events that arrived during recovery
}

func (fan *fanout) add(sub *subscription) {
	fan.mu.Lock()
	defer fan.mu.Unlock()
	fan.subs[sub] = struct{}{}
}

// remove drops sub and reports whether the channel is now empty.
func (fan *fanout) remove(sub *subscription) bool {
	fan.mu.Lock()
	defer fan.mu.Unlock()
	delete(fan.subs, sub)
	return len(fan.subs) == 0
}

// deliver sends one event of the broker to every subscriber, encoded once
// and, for subscribers that compress, compressed once (pulse.Prepare).
// Conn.Send never blocks: a subscriber that cannot keep up is closed with
// CloseSlowConsumer and recovers the gap from history when it returns.
func (fan *fanout) deliver(ev Event) {
	if ev.Type == EventLost {
		fan.lost()
		return
	}
	msg := pulse.Prepare(pulse.Message{Type: pulse.MessageText, Data: encodeEvent(fan.name, ev)}) // compressed at most once
	fan.mu.Lock()
	defer fan.mu.Unlock()
	for sub := range fan.subs {
		switch {
		case ev.Type != EventPublication && !sub.presence:
		case sub.recovering && len(sub.buffer) >= maxRecoveryBuffer:
			sub.s.conn.Close(pulse.CloseSlowConsumer, "too many messages during recovery")
		case sub.recovering:
			sub.buffer = append(sub.buffer, ev)
		default:
			sub.s.conn.Send(msg)
		}
	}
}

// lost closes every subscriber, whose events the broker lost: each
// resumes from its last position and learns recovered:false.
func (fan *fanout) lost() {
	fan.mu.Lock()
	defer fan.mu.Unlock()
	for sub := range fan.subs {
		sub.s.conn.Close(pulse.CloseSlowConsumer, "the broker lost events of "+fan.name+": resume")
	}
}

func encodeEvent(channel string, ev Event) []byte {
	switch ev.Type {
	case EventJoin:
		return wire.MustEncode(wire.Join{Channel: channel, Member: ev.Member.Wire()})
	case EventLeave:
		return wire.MustEncode(wire.Leave{Channel: channel, Member: ev.Member.Wire()})
	}
	return wire.MustEncode(wire.Message{Channel: channel, Publication: ev.Publication.wire()})
}

// recover replays to sub what it missed, then turns it live. pubs (the
// history after the client's position, up to top) go first, each batch
// waiting for room in the connection's queue, so a long replay never cuts
// the subscriber as slow. Live events that arrive meanwhile wait
// in sub.buffer and follow, those past top only. sub turns live under the
// channel's lock once the buffer is empty: no live event is lost, doubled
// or reordered. It returns an error if the connection closed or could not
// take the replay before ctx ended.
func (fan *fanout) recover(ctx context.Context, sub *subscription, pubs []Publication, top Position) error {
	conn := sub.s.conn
	for batch := range batches(pubs) {
		if err := sendWait(ctx, conn, wire.Batch{Channel: fan.name, Publications: batch}); err != nil {
			return err
		}
	}
	for {
		pending := fan.takeBuffer(sub)
		if pending == nil {
			return nil // sub is live
		}
		for _, ev := range pending {
			p := ev.Publication
			if ev.Type == EventPublication && p.Pos.Epoch == top.Epoch && p.Pos.Offset <= top.Offset {
				continue // already in the history just sent, or older than the subscribe
			}
			if err := conn.SendWait(ctx, pulse.Message{Type: pulse.MessageText, Data: encodeEvent(fan.name, ev)}); err != nil {
				return err
			}
		}
	}
}

// takeBuffer returns the live events sub holds, or nil, having turned sub
// live, when there are none.
func (fan *fanout) takeBuffer(sub *subscription) []Event {
	fan.mu.Lock()
	defer fan.mu.Unlock()
	pending := sub.buffer
	sub.buffer = nil
	if len(pending) == 0 {
		sub.recovering = false
		return nil
	}
	return pending
}

func sendWait(ctx context.Context, conn *pulse.Conn, msg wire.Msg) error {
	return conn.SendWait(ctx, pulse.Message{Type: pulse.MessageText, Data: wire.MustEncode(msg)})
}

// batches cuts pubs into runs of at most maxBatchBytes of data (at least
// one publication each).
func batches(pubs []Publication) func(yield func([]wire.Publication) bool) {
	return func(yield func([]wire.Publication) bool) {
		var batch []wire.Publication
		size := 0
		for _, p := range pubs {
			if len(batch) > 0 && size+len(p.Data) > maxBatchBytes {
				if !yield(batch) {
					return
				}
				batch, size = nil, 0
			}
			batch = append(batch, p.wire())
			size += len(p.Data)
		}
		if len(batch) > 0 {
			yield(batch)
		}
	}
}
