package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pulse-go/pulse/hub"
	"github.com/redis/go-redis/v9"
)

// subscriptions are the node's Redis subscriptions: one per channel with
// local subscribers, shared by them.
type subscriptions struct {
	subMu sync.Mutex // serializes SUBSCRIBE and UNSUBSCRIBE with the refs that decide them

	mu      sync.Mutex                 // guards the fields below
	remotes map[string]*remote         // by PUB/SUB channel name
	pongs   map[string]chan<- struct{} // by ping payload: closed when its pong arrives
	next    uint64                     // of the last local subscription and ping
}

func (s *subscriptions) init() {
	s.remotes = make(map[string]*remote)
	s.pongs = make(map[string]chan<- struct{})
}

// remote is one channel's Redis subscription on this node.
type remote struct {
	channel string // set at creation, never changes
	refs    int    // local subscriptions attached; guarded by subscriptions.mu

	mu     sync.Mutex // guards the fields below; held while delivering
	locals map[uint64]*local
	last   hub.Position // of the last publication delivered; zero before the first
}

// local is one Subscribe call's subscription. Guarded by its remote's mu.
type local struct {
	deliver    func(hub.Event)
	primed     bool         // after is known: events flow
	after      hub.Position // the top when Subscribe returned: older publications are not delivered
	pending    []hub.Event  // events that arrived before primed
	overflowed bool         // pending was full: events were lost, and reported
}

// Subscribe implements hub.Broker. It returns once Redis confirmed the
// channel's subscription, within ctx and at most 5 s.
func (b *Broker) Subscribe(ctx context.Context, channel string, deliver func(hub.Event)) (unsubscribe func(), err error) {
	if err := b.check(channel); err != nil {
		return nil, err
	}
	if deliver == nil {
		return nil, errNilDeliver
	}
	ctx, cancel := context.WithTimeout(ctx, subscribeTimeout)
	defer cancel()
	r, id, err := b.attach(ctx, channel, deliver)
	if err != nil {
		return nil, err
	}
	unsubscribe = sync.OnceFunc(func() { b.detach(r, id) })
	if err := b.confirm(ctx); err != nil {
		unsubscribe()
		return nil, b.fail("subscribe", err)
	}
	_, top, err := b.History(ctx, channel, hub.Position{})
	if err != nil {
		unsubscribe()
		return nil, err
	}
	r.prime(id, top)
	return unsubscribe, nil
}

// attach adds a local subscription to channel's remote, subscribing Redis
// when it is the first.
func (b *Broker) attach(ctx context.Context, channel string, deliver func(hub.Event)) (*remote, uint64, error) {
	s := &b.subs
	name := b.key(channel, "events")
	s.subMu.Lock()
	defer s.subMu.Unlock()
	s.mu.Lock()
	r := s.remotes[name]
	first := r == nil
	if first {
		r = &remote{channel: channel, locals: make(map[uint64]*local)}
		s.remotes[name] = r
	}
	r.refs++
	s.next++
	id := s.next
	s.mu.Unlock()
	r.mu.Lock()
	r.locals[id] = &local{deliver: deliver}
	r.mu.Unlock()
	if first {
		if err := b.ps.Subscribe(ctx, name); err != nil {
			b.detachLocked(r, id)
			return nil, 0, b.fail("subscribe", err)
		}
	}
	return r, id, nil
}

// detach removes local subscription id of r, and r's Redis subscription
// with its last local one. Once it returns, deliver is not running.
func (b *Broker) detach(r *remote, id uint64) {
	b.subs.subMu.Lock()
	defer b.subs.subMu.Unlock()
	b.detachLocked(r, id)
}

func (b *Broker) detachLocked(r *remote, id uint64) {
	s := &b.subs
	r.mu.Lock()
	delete(r.locals, id)
	r.mu.Unlock()
	name := b.key(r.channel, "events")
	s.mu.Lock()
	r.refs--
	last := r.refs == 0
	if last {
		delete(s.remotes, name)
	}
	s.mu.Unlock()
	if last && !b.closed.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), unsubscribeTimeout)
		defer cancel()
		b.ps.Unsubscribe(ctx, name) // a failure drops the connection, whose successor will not subscribe it
	}
}

// confirm waits until Redis has handled every SUBSCRIBE sent before it: a
// PING on the PUB/SUB connection comes back after them.
func (b *Broker) confirm(ctx context.Context) error {
	s := &b.subs
	pong := make(chan struct{})
	s.mu.Lock()
	s.next++
	token := "confirm " + strconv.FormatUint(s.next, 10)
	s.pongs[token] = pong
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.pongs, token)
		s.mu.Unlock()
	}()
	if err := b.ps.Ping(ctx, token); err != nil {
		return err
	}
	select {
	case <-pong:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for Redis to confirm the subscription: %w", ctx.Err())
	}
}

// prime sets where local subscription id starts, and delivers what it
// received meanwhile past that.
func (r *remote) prime(id uint64, top hub.Position) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.locals[id]
	if l == nil {
		return
	}
	l.primed, l.after = true, top
	for _, ev := range l.pending {
		l.send(ev)
	}
	l.pending = nil
	if r.last.IsZero() {
		r.last = top
	}
}

// send delivers ev unless it is a publication from before the subscription.
func (l *local) send(ev hub.Event) {
	if ev.Type == hub.EventPublication && !newer(ev.Publication.Pos, l.after) {
		return
	}
	l.deliver(ev)
}

// newer reports whether a publication at p follows one at than.
func newer(p, than hub.Position) bool {
	return p.Epoch != than.Epoch || p.Offset > than.Offset
}

// read is the subscription reader: it receives the node's PUB/SUB
// connection until ctx ends, pinging it when quiet, and notes whether
// Redis answers. go-redis reconnects and resubscribes after an error.
func (b *Broker) read(ctx context.Context) {
	quiet := min(b.opts.NodeTimeout/3, time.Second)
	backoff, unanswered := 50*time.Millisecond, 0
	for ctx.Err() == nil {
		msg, err := b.ps.ReceiveTimeout(ctx, quiet)
		switch {
		case err == nil:
			backoff, unanswered = 50*time.Millisecond, 0
			b.up.Store(true)
			b.handle(msg)
		case ctx.Err() != nil || b.closed.Load():
			return
		case isTimeout(err):
			if unanswered++; unanswered > 2 {
				b.up.Store(false) // Redis is paused or the network silent
			}
			b.ps.Ping(ctx, "health")
		default:
			b.up.Store(false)
			sleep(ctx, backoff)
			backoff = min(2*backoff, time.Second)
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// handle acts on one thing the PUB/SUB connection received.
func (b *Broker) handle(msg any) {
	switch m := msg.(type) {
	case *redis.Message:
		b.dispatch(m.Channel, m.Payload)
	case *redis.Pong:
		b.subs.mu.Lock()
		if pong := b.subs.pongs[m.Payload]; pong != nil {
			close(pong)
			delete(b.subs.pongs, m.Payload)
		}
		b.subs.mu.Unlock()
	case *redis.Subscription:
		if m.Kind == "subscribe" {
			b.resync(m.Channel)
		}
	}
}

// lookup returns the remote of a PUB/SUB channel name, or nil.
func (b *Broker) lookup(name string) *remote {
	b.subs.mu.Lock()
	defer b.subs.mu.Unlock()
	return b.subs.remotes[name]
}

// dispatch delivers one PUB/SUB message to the local subscriptions.
func (b *Broker) dispatch(name, payload string) {
	r := b.lookup(name)
	if r == nil {
		return
	}
	ev, err := decodeEvent(r.channel, payload)
	if err != nil {
		b.opts.Logger.Error("redisbroker: undecodable message", "channel", r.channel, "err", err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if ev.Type != hub.EventPublication {
		b.send(r, ev)
		return
	}
	b.advance(r, ev.Publication)
}

// advance delivers p after filling any gap before it. r.mu is held.
func (b *Broker) advance(r *remote, p hub.Publication) {
	last := r.last
	switch {
	case last.IsZero():
	case p.Pos.Epoch != last.Epoch:
		b.lost(r, "the channel's epoch changed")
	case p.Pos.Offset <= last.Offset:
		return // delivered already, by a gap fill
	case p.Pos.Offset > last.Offset+1:
		b.fill(r)
		if !newer(p.Pos, r.last) {
			return
		}
	}
	r.last = p.Pos
	b.send(r, hub.Event{Type: hub.EventPublication, Publication: p})
}

// resync fills the gap a reconnect may have left in a channel that was
// delivering, once Redis confirms its resubscription.
func (b *Broker) resync(name string) {
	r := b.lookup(name)
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.last.IsZero() {
		b.fill(r)
	}
}

// fill delivers the history after r.last, or reports it lost. r.mu is held:
// the channel's deliveries wait for this read, at most opTimeout.
func (b *Broker) fill(r *remote) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	pubs, _, err := b.History(ctx, r.channel, r.last)
	if err != nil {
		b.lost(r, err.Error())
		return
	}
	for _, p := range pubs {
		r.last = p.Pos
		b.send(r, hub.Event{Type: hub.EventPublication, Publication: p})
	}
	if len(pubs) > 0 {
		b.filled.Add(int64(len(pubs)))
		b.opts.Logger.Info("redisbroker: gap filled from history", "channel", r.channel, "publications", len(pubs))
	}
}

// lost tells r's subscriptions that events were lost. r.mu is held.
func (b *Broker) lost(r *remote, why string) {
	b.opts.Logger.Warn("redisbroker: live publications lost; subscribers must resume", "channel", r.channel, "why", why)
	if b.opts.OnLost != nil {
		b.opts.OnLost(r.channel)
	}
	for _, l := range r.locals {
		if l.primed {
			l.deliver(hub.Event{Type: hub.EventLost})
		}
	}
}

// send delivers ev to every local subscription of r; a subscription not
// yet primed keeps it, up to maxPending, past which its events are lost.
// r.mu is held.
func (b *Broker) send(r *remote, ev hub.Event) {
	for _, l := range r.locals {
		switch {
		case l.primed:
			l.send(ev)
		case len(l.pending) < maxPending:
			l.pending = append(l.pending, ev)
		case !l.overflowed:
			l.overflowed = true
			b.lost(r, "a new subscription received too many events before it started")
		}
	}
}

// decodeEvent reads a message of the scripts: "p\n<epoch>\n<offset>\n<unix
// ms>\n<from>\n<data>", "j\n<member>" or "l\n<member>".
func decodeEvent(channel, payload string) (hub.Event, error) {
	kind, rest, _ := strings.Cut(payload, "\n")
	switch kind {
	case "j", "l":
		m, err := decodeMember(rest)
		typ := hub.EventJoin
		if kind == "l" {
			typ = hub.EventLeave
		}
		return hub.Event{Type: typ, Member: m}, err
	case "p":
		parts := strings.SplitN(rest, "\n", 5)
		if len(parts) != 5 {
			return hub.Event{}, errors.New("short publication")
		}
		pos, err := position(parts[0], parts[1])
		ms, err2 := strconv.ParseInt(parts[2], 10, 64)
		if err != nil || err2 != nil {
			return hub.Event{}, fmt.Errorf("bad publication header %q", parts[:3])
		}
		p := hub.Publication{Channel: channel, Pos: pos, From: parts[3], Data: []byte(parts[4]), Time: time.UnixMilli(ms)}
		return hub.Event{Type: hub.EventPublication, Publication: p}, nil
	}
	return hub.Event{}, fmt.Errorf("unknown kind %q", kind)
}
