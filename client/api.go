package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// outgoing is one publish waiting to be sent or acknowledged.
type outgoing struct {
	// Set by Send, never changes.
	channel, key, latest string
	data                 json.RawMessage
	deadline             time.Time     // fails with ErrExpired if still unsent then
	done                 chan struct{} // closed by finish, once, by whoever removed it from the queue
	out                  outcome       // set before done is closed

	// Guarded by Client.mu.
	id        uint64    // request id on the current connection; 0 while unsent
	notBefore time.Time // refused as rate_limited: not sent again before
}

type outcome struct {
	res PublishResult
	err error
}

// finish records the outcome of o. Only the goroutine that removed o
// from the queue calls it.
func (o *outgoing) finish(out outcome) {
	o.out = out
	close(o.done)
}

func (o *outgoing) fail(err error) { o.finish(outcome{err: err}) }

// Publish publishes data (JSON) to channel and returns once the server
// acknowledged it: Send followed by Ack.Wait.
func (c *Client) Publish(ctx context.Context, channel string, data json.RawMessage, opts *PublishOptions) (PublishResult, error) {
	ack, err := c.Send(channel, data, opts)
	if err != nil {
		return PublishResult{}, err
	}
	return ack.Wait(ctx)
}

// Send queues a publish of data (JSON) to channel and returns at once;
// publishes are sent in the order they were queued. A full queue fails at
// once with ErrQueueFull. While the client is offline the publish waits;
// one still unsent after its TTL fails with ErrExpired. A publish sent but
// not acknowledged before a connection is lost is sent again with the same
// idempotency key, so the server applies it once.
func (c *Client) Send(channel string, data json.RawMessage, opts *PublishOptions) (*Ack, error) {
	if !json.Valid(data) {
		return nil, fmt.Errorf("client: publish to %s: data is not valid JSON", channel)
	}
	o, err := c.enqueue(channel, data, opts)
	if err != nil {
		return nil, fmt.Errorf("publish to %s: %w", channel, err)
	}
	c.poke()
	return &Ack{c: c, o: o}, nil
}

// Ack is the answer to one queued publish.
type Ack struct {
	c *Client
	o *outgoing
}

// Wait returns where the publish landed once the server acknowledged it,
// or why it failed. If ctx ends first, Wait returns ctx.Err() and the
// publish, if still queued, is withdrawn. Wait may be called from several
// goroutines and more than once.
func (a *Ack) Wait(ctx context.Context) (PublishResult, error) {
	return a.c.await(ctx, a.o)
}

// enqueue adds a publish to the queue, replacing an unsent one with the
// same Latest key and first dropping the unsent ones past their TTL.
func (c *Client) enqueue(channel string, data json.RawMessage, opts *PublishOptions) (*outgoing, error) {
	var po PublishOptions
	if opts != nil {
		po = *opts
	}
	if po.TTL == 0 {
		po.TTL = c.opts.QueueTTL
	}
	o := &outgoing{channel: channel, key: po.Key, latest: po.Latest, data: data, deadline: time.Now().Add(po.TTL), done: make(chan struct{})}
	var replaced, expired []*outgoing
	defer func() {
		for _, q := range replaced {
			q.fail(ErrReplaced)
		}
		for _, q := range expired {
			q.fail(fmt.Errorf("publish to %s: %w", q.channel, ErrExpired))
		}
	}()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	now := time.Now()
	c.queue = slices.DeleteFunc(c.queue, func(q *outgoing) bool {
		switch {
		case q.id != 0:
			return false
		case !now.Before(q.deadline):
			expired = append(expired, q)
			return true
		case po.Latest != "" && q.channel == channel && q.latest == po.Latest:
			replaced = append(replaced, q)
			return true
		}
		return false
	})
	if len(c.queue) >= c.opts.QueueSize {
		return nil, fmt.Errorf("%w (%d publishes waiting)", ErrQueueFull, len(c.queue))
	}
	if o.key == "" {
		c.keys++
		o.key = c.prefix + "-" + strconv.FormatUint(c.keys, 10)
	}
	c.queue = append(c.queue, o)
	return o, nil
}

// await waits for the outcome of o, withdrawing it if it expires unsent
// or ctx ends.
func (c *Client) await(ctx context.Context, o *outgoing) (PublishResult, error) {
	ttl := time.NewTimer(time.Until(o.deadline))
	defer ttl.Stop()
	expiry := ttl.C
	for {
		select {
		case <-o.done:
			return o.out.res, o.out.err
		case <-expiry:
			expiry = nil
			if c.withdraw(o, true) {
				o.fail(fmt.Errorf("publish to %s: %w", o.channel, ErrExpired))
			}
		case <-ctx.Done():
			if c.withdraw(o, false) {
				o.fail(ctx.Err())
			}
			return PublishResult{}, ctx.Err()
		}
	}
}

// withdraw removes o from the queue; if onlyUnsent, only when it has not
// been sent on the current connection. It reports whether o was removed.
func (c *Client) withdraw(o *outgoing, onlyUnsent bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.Index(c.queue, o)
	if i < 0 || (onlyUnsent && o.id != 0) {
		return false
	}
	c.queue = slices.Delete(c.queue, i, i+1)
	return true
}

// subscription is one channel the application wants.
type subscription struct {
	// Set by Subscribe, never changes.
	channel  string
	presence bool

	// Guarded by Client.mu.
	last      Position         // of the last publication delivered, or where to resume from
	id        uint64           // subscribe request id on the current connection; 0 if not sent
	confirmed bool             // subscribed on the current connection
	waiters   []chan subResult // Subscribe calls waiting for the first answer
}

type subResult struct {
	ev  Subscribed
	err error
}

// fail answers every waiting Subscribe call. The caller holds Client.mu.
func (s *subscription) fail(err error) {
	for _, w := range s.waiters {
		w <- subResult{err: err}
	}
	s.waiters = nil
}

// Subscribe asks for the publications of channel, now and after every
// reconnect (resuming from the last one delivered), and returns the
// server's first answer. If ctx ends first the subscription stays
// requested; Unsubscribe withdraws it.
func (c *Client) Subscribe(ctx context.Context, channel string, opts *SubscribeOptions) (Subscribed, error) {
	w := make(chan subResult, 1)
	if err := c.addSub(channel, opts, w); err != nil {
		return Subscribed{}, fmt.Errorf("subscribe %s: %w", channel, err)
	}
	c.poke()
	select {
	case r := <-w:
		if r.err != nil {
			return Subscribed{}, fmt.Errorf("subscribe %s: %w", channel, r.err)
		}
		return r.ev, nil
	case <-ctx.Done():
		return Subscribed{}, ctx.Err()
	}
}

var (
	errSubscribed   = errors.New("client: already subscribed")
	errUnsubscribed = errors.New("client: unsubscribed")
)

func (c *Client) addSub(channel string, opts *SubscribeOptions, w chan subResult) error {
	var so SubscribeOptions
	if opts != nil {
		so = *opts
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return ErrClosed
	case c.subs[channel] != nil:
		return errSubscribed
	}
	s := &subscription{channel: channel, presence: so.Presence, waiters: []chan subResult{w}}
	if so.Since != nil {
		s.last = *so.Since
	}
	c.subs[channel] = s
	return nil
}

// Unsubscribe stops the publications of channel. It does not wait for the
// server.
func (c *Client) Unsubscribe(channel string) {
	c.mu.Lock()
	s := c.subs[channel]
	if s != nil {
		delete(c.subs, channel)
		s.fail(errUnsubscribed)
		if s.id != 0 {
			c.unsubs = append(c.unsubs, channel)
		}
	}
	c.mu.Unlock()
	c.poke()
}

// Last returns the position of the last publication delivered from
// channel, to resume from later with SubscribeOptions.Since.
func (c *Client) Last(channel string) Position {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.subs[channel]; s != nil {
		return s.last
	}
	return Position{}
}

// pingWait is one Ping call.
type pingWait struct{ result chan pingResult } // cap 1

type pingResult struct {
	rtt time.Duration
	err error
}

func (p *pingWait) finish(rtt time.Duration, err error) {
	if p != nil {
		p.result <- pingResult{rtt, err}
	}
}

// Ping sends {"type":"ping"} and returns the round trip to the server's
// pong. It fails with ErrNotOpen when no connection is open.
func (c *Client) Ping(ctx context.Context) (time.Duration, error) {
	p := &pingWait{result: make(chan pingResult, 1)}
	c.mu.Lock()
	if c.closed || (c.state != StateOpen && c.state != StateDegraded) {
		c.mu.Unlock()
		return 0, ErrNotOpen
	}
	c.pings = append(c.pings, p)
	c.mu.Unlock()
	c.poke()
	select {
	case r := <-p.result:
		return r.rtt, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}
