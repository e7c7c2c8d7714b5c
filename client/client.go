package client

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/pulse-go/pulse"
)

// Errors of the client.
var (
	ErrQueueFull = errors.New("client: send queue full")
	ErrExpired   = errors.New("client: publish expired unsent")
	ErrReplaced  = errors.New("client: publish replaced by a later one with the same Latest key")
	ErrClosed    = errors.New("client: closed")
	ErrNotOpen   = errors.New("client: not connected")
	errRunTwice  = errors.New("client: Run called twice")
	errNoWelcome = errors.New("client: no welcome from the server")
)

// Client is a pulse.v1 connection that reconnects and resumes. Create it
// with New; Run drives it.
type Client struct {
	// Set by New, never changes.
	url    string
	opts   Options
	prefix string        // of the idempotency keys made up by Publish
	wake   chan struct{} // cap 1: the API queued work for Run
	done   chan struct{} // closed when Run returns

	mu sync.Mutex // guards the fields below; never held across I/O or a callback

	state      State
	generation int
	session    string // the first welcome's session token; later connections continue it
	member     string // the session's member id in presence
	rtt        time.Duration
	running    bool
	closed     bool
	subs       map[string]*subscription // channels wanted, with their last position
	unsubs     []string                 // unsubscribes to send on the open connection
	queue      []*outgoing              // publishes not yet acknowledged, oldest first
	paced      time.Time                // when the last publish refused as rate_limited is due again
	pings      []*pingWait              // Ping calls not yet sent
	keys       uint64                   // made-up idempotency keys so far
}

// New returns a Client for the pulse.v1 endpoint at url (ws:// or wss://)
// configured by opts. It starts nothing: Run connects.
func New(url string, opts *Options) *Client {
	var b [6]byte
	crand.Read(b[:])
	return &Client{
		url:    url,
		opts:   opts.resolved(),
		prefix: hex.EncodeToString(b[:]),
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		subs:   make(map[string]*subscription),
	}
}

// State returns the current state.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Generation returns how many connections have been opened (welcomed):
// 0 before the first, 1 on it, one more after each reconnect.
func (c *Client) Generation() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.generation
}

// Member returns this client's member id in presence, the same on every
// connection (each continues the first one's session), or "" before the
// first welcome.
func (c *Client) Member() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.member
}

// RTT returns the last round trip measured by a ping, or zero.
func (c *Client) RTT() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rtt
}

// Run connects, and reconnects after every loss, until ctx ends (it then
// closes with 1000 and returns nil) or the server ends the session for good
// (a terminal close code or handshake status, returned as the error).
// Waiting Publish, Subscribe and Ping calls then fail with ErrClosed. Run
// returns after every goroutine it started has; it may be called once.
func (c *Client) Run(ctx context.Context) error {
	if err := c.start(); err != nil {
		return err
	}
	err := c.loop(ctx)
	c.finish(err)
	return err
}

func (c *Client) start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running || c.closed {
		return errRunTwice
	}
	c.running = true
	return nil
}

// loop dials, runs one connection, and waits out the backoff, in turn.
func (c *Client) loop(ctx context.Context) error {
	attempt := 0
	for {
		c.setState(StateChange{State: StateConnecting})
		opened, err := c.connect(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if terminal(err) {
			return fmt.Errorf("client: %w", err)
		}
		if opened >= c.opts.StableAfter {
			attempt = 0
		}
		delay := c.delay(attempt, err)
		attempt++
		c.setState(StateChange{State: StateReconnecting, Err: err, Delay: delay})
		if !sleep(ctx, delay) {
			return nil
		}
	}
}

// connect dials and runs one connection; it returns how long the
// connection was open (zero if never welcomed) and why it ended.
func (c *Client) connect(ctx context.Context) (time.Duration, error) {
	dialCtx, cancel := context.WithTimeout(ctx, c.opts.HandshakeTimeout)
	token, err := c.fetchToken(dialCtx)
	var t Transport
	if err == nil {
		t, err = c.opts.Dial(dialCtx, c.url)
	}
	cancel()
	if err != nil {
		return 0, err
	}
	cn := newConnection(c, t, token)
	err = cn.run(ctx)
	if cn.opened.IsZero() {
		return 0, err
	}
	return time.Since(cn.opened), err
}

// delay is the wait before the next dial: a random part of the server's
// retry window if it sent one (at most MaxRetryWindow); the Retry-After of
// a refused upgrade and a random part of the second after it (the server
// drew it at random already, in whole seconds); else the backoff.
func (c *Client) delay(attempt int, err error) time.Duration {
	if window := retryWindow(err); window > 0 {
		return jitter(window, rand.Float64)
	}
	var he *HandshakeError
	if errors.As(err, &he) && he.RetryAfter > 0 {
		return he.RetryAfter + jitter(time.Second, rand.Float64)
	}
	return c.opts.Backoff(attempt)
}

// terminal reports whether err ends Run: a close code that is not
// retryable, a handshake refused with a 4xx other than 408 and 429, or a
// server that does not speak pulse.v1.
func terminal(err error) bool {
	var ce *pulse.CloseError
	if errors.As(err, &ce) {
		return !ce.Code.Retryable()
	}
	var he *HandshakeError
	if errors.As(err, &he) {
		return he.Status >= 400 && he.Status < 500 && he.Status != 408 && he.Status != 429
	}
	return errors.Is(err, ErrNotPulse)
}

// sleep waits d and reports true, or false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// setState records a change and reports it.
func (c *Client) setState(ch StateChange) {
	c.mu.Lock()
	if c.state == ch.State && ch.State != StateReconnecting {
		c.mu.Unlock()
		return
	}
	c.state = ch.State
	ch.Generation = c.generation
	c.mu.Unlock()
	if c.opts.OnState != nil {
		c.opts.OnState(ch)
	}
}

// finish closes the client: every waiting call fails with ErrClosed.
func (c *Client) finish(err error) {
	c.mu.Lock()
	c.closed = true
	queue, pings := c.queue, c.pings
	c.queue, c.pings = nil, nil
	for _, s := range c.subs {
		s.fail(ErrClosed)
	}
	c.mu.Unlock()
	for _, o := range queue {
		o.fail(ErrClosed)
	}
	for _, p := range pings {
		p.finish(0, ErrClosed)
	}
	close(c.done)
	c.setState(StateChange{State: StateClosed, Err: err})
}

// poke wakes Run to send what the API queued.
func (c *Client) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}
