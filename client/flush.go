package client

import (
	"fmt"
	"slices"
	"time"

	"github.com/pulse-go/pulse/wire"
)

// flush sends what the API queued: unsubscribes, subscribes not yet sent
// on this connection (resuming from the last position), publishes not yet
// sent, and pings. Publishes found expired fail with ErrExpired.
func (cn *connection) flush() error {
	if cn.opened.IsZero() {
		return nil
	}
	frames, expired, pings := cn.collect()
	for _, o := range expired {
		o.fail(fmt.Errorf("publish to %s: %w", o.channel, ErrExpired))
	}
	for _, f := range frames {
		if err := cn.t.WriteMessage(f); err != nil {
			return err
		}
	}
	now := time.Now()
	for _, p := range pings {
		cn.probes = append(cn.probes, probe{sent: now, wait: p})
		if err := cn.t.WriteMessage(pingFrame); err != nil {
			return err
		}
	}
	return nil
}

// collect takes, under the client's lock, the frames to send.
func (cn *connection) collect() (frames [][]byte, expired []*outgoing, pings []*pingWait) {
	c := cn.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, channel := range c.unsubs {
		frames = append(frames, wire.MustEncode(wire.Unsubscribe{ID: cn.id(), Channel: channel}))
	}
	c.unsubs = nil
	for _, sub := range c.subs {
		if sub.id != 0 {
			continue
		}
		sub.id = cn.id()
		r := wire.Subscribe{ID: sub.id, Channel: sub.channel, Presence: sub.presence}
		if !sub.last.IsZero() {
			since := sub.last
			r.Since = &since
		}
		frames = append(frames, wire.MustEncode(r))
	}
	now := time.Now()
	c.queue = slices.DeleteFunc(c.queue, func(o *outgoing) bool {
		if o.id == 0 && !now.Before(o.deadline) {
			expired = append(expired, o)
			return true
		}
		return false
	})
	for _, o := range c.queue {
		if o.id == 0 && now.Before(o.notBefore) {
			break // publishes go in order: none overtakes one told to wait
		}
		if o.id == 0 {
			o.id = cn.id()
			frames = append(frames, wire.MustEncode(wire.Publish{ID: o.id, Channel: o.channel, Key: o.key, Data: o.data}))
		}
	}
	pings, c.pings = c.pings, nil
	return frames, expired, pings
}

// subscribed records the server's answer to a subscribe.
func (cn *connection) subscribed(m wire.Subscribed) {
	c := cn.c
	ev := Subscribed{Channel: m.Channel, Position: m.Position, Resumed: m.Recovered != nil, Recovered: m.Recovered != nil && *m.Recovered}
	c.mu.Lock()
	sub := c.subs[m.Channel]
	if sub == nil || sub.id != m.ID || sub.confirmed {
		c.mu.Unlock()
		return // unsubscribed meanwhile
	}
	if !ev.Recovered {
		sub.last = m.Position
	}
	sub.confirmed = true
	waiters := sub.waiters
	sub.waiters = nil
	c.mu.Unlock()
	for _, w := range waiters {
		w <- subResult{ev: ev}
	}
	if c.opts.OnSubscribed != nil {
		c.opts.OnSubscribed(ev)
	}
}

// deliver passes publications to the application, each once: a position
// at or before the last one delivered is a duplicate and is dropped.
func (cn *connection) deliver(channel string, pubs []wire.Publication, replayed bool) {
	c := cn.c
	var out []Message
	c.mu.Lock()
	if sub := c.subs[channel]; sub != nil && sub.confirmed {
		for _, p := range pubs {
			if after(p.Pos, sub.last) {
				sub.last = p.Pos
				out = append(out, Message{Channel: channel, Publication: p, Replayed: replayed})
			}
		}
	}
	c.mu.Unlock()
	if c.opts.OnMessage == nil {
		return
	}
	for _, m := range out {
		c.opts.OnMessage(m)
	}
}

// acked ends the publish the ack answers.
func (cn *connection) acked(m wire.Ack) {
	if o := cn.take(m.ID); o != nil {
		res := PublishResult{Duplicate: m.Duplicate}
		if m.Pos != nil {
			res.Pos = *m.Pos
		}
		o.finish(outcome{res: res})
	}
}

// refused fails the publish or subscribe an error message answers. A
// publish refused as rate_limited is sent again, with its key, once the
// server's retry_after_ms has passed; several refused at once are paced
// that far apart, so they come back at the rate the server takes.
func (cn *connection) refused(m wire.Error) {
	if m.Code == wire.CodeRateLimited && cn.later(m.ID, time.Duration(m.RetryAfterMS)*time.Millisecond) {
		return
	}
	err := &ServerError{Code: m.Code, Message: m.Message}
	if o := cn.take(m.ID); o != nil {
		o.fail(err)
		return
	}
	c := cn.c
	c.mu.Lock()
	var dropped []string
	for channel, sub := range c.subs {
		if m.ID != 0 && sub.id == m.ID {
			delete(c.subs, channel)
			sub.fail(err)
			dropped = append(dropped, channel)
		}
	}
	c.mu.Unlock()
	if c.opts.OnSubscribed == nil {
		return
	}
	for _, channel := range dropped {
		c.opts.OnSubscribed(Subscribed{Channel: channel, Err: err})
	}
}

// later puts the publish sent with request id back in the queue, unsent
// until wait has passed after the last one put back is due, and reports
// whether there was one.
func (cn *connection) later(id uint64, wait time.Duration) bool {
	c := cn.c
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.IndexFunc(c.queue, func(o *outgoing) bool { return id != 0 && o.id == id })
	if i < 0 {
		return false
	}
	now := time.Now()
	c.paced = maxTime(c.paced, now).Add(wait)
	o := c.queue[i]
	o.id, o.notBefore = 0, c.paced
	time.AfterFunc(c.paced.Sub(now), c.poke)
	return true
}

// maxTime returns the later of two times.
func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// take removes and returns the publish sent with request id, or nil.
func (cn *connection) take(id uint64) *outgoing {
	c := cn.c
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.IndexFunc(c.queue, func(o *outgoing) bool { return id != 0 && o.id == id })
	if i < 0 {
		return nil
	}
	o := c.queue[i]
	c.queue = slices.Delete(c.queue, i, i+1)
	return o
}

// end forgets what was sent on the connection: on the next one every
// subscription is resumed and every unacknowledged publish sent again.
// Pings waiting fail with ErrNotOpen.
func (cn *connection) end() {
	c := cn.c
	c.mu.Lock()
	for _, sub := range c.subs {
		sub.id, sub.confirmed = 0, false
	}
	for _, o := range c.queue {
		o.id = 0
	}
	c.unsubs = nil
	pings := c.pings
	c.pings = nil
	c.mu.Unlock()
	for _, p := range pings {
		p.finish(0, ErrNotOpen)
	}
	for _, p := range cn.probes {
		p.wait.finish(0, ErrNotOpen)
	}
}
