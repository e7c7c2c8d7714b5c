package client

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pulse-go/pulse"
	"github.com/pulse-go/pulse/wire"
)

// maxTick bounds the grace past Interval before the client calls a
// connection degraded, like the server's wheel tick.
const maxTick = time.Second

// connection is one connection of a Client, from dial to loss. Its run
// goroutine is the only writer of the transport; a reader goroutine hands
// it every inbound frame with the time it arrived. (The session, which
// outlives connections, is the Client's.)
type connection struct {
	// Set by newConnection, never changes.
	c       *Client
	t       Transport
	started time.Time
	fetched chan tokenResult // a token fetched for a refresh (token.go)

	// heard is when the last inbound frame was read, stored by the reader
	// before it hands the frame over, so a loop held up by a slow callback
	// never mistakes frames it has not handled yet for silence.
	heard atomic.Pointer[time.Time]

	// Owned by run.
	opened            time.Time // the welcome's arrival; zero before
	interval, timeout time.Duration
	degraded          bool
	nextID            uint64
	probes            []probe     // pings sent, oldest first
	token             string      // the token presented last; "" without Options.Token
	refreshTimer      *time.Timer // fires when token should be refreshed; nil if not

	fetching sync.WaitGroup // the goroutine fetching a token for a refresh
}

// probe is one ping sent: by Ping (wait set) or to probe a silent server.
type probe struct {
	sent time.Time
	wait *pingWait
}

// frame is one inbound message, or the read error that ended them.
type frame struct {
	data []byte
	err  error
	at   time.Time
}

func newConnection(c *Client, t Transport, token string) *connection {
	now := time.Now()
	cn := &connection{c: c, t: t, started: now, token: token, fetched: make(chan tokenResult)}
	cn.heard.Store(&now)
	return cn
}

// run serves the connection until it is lost or ctx ends, and returns why.
func (cn *connection) run(ctx context.Context) error {
	frames := make(chan frame)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { cn.read(frames, stop) })
	connCtx, cancel := context.WithCancel(ctx)
	err := cn.serve(connCtx, frames)
	cancel()
	cn.fetching.Wait()
	if cn.refreshTimer != nil {
		cn.refreshTimer.Stop()
	}
	switch ce, _ := err.(*pulse.CloseError); {
	case ctx.Err() != nil:
		cn.t.Close(pulse.CloseNormal, "client closing")
	case ce != nil && ce.Code == pulse.CloseHeartbeatTimeout: // the client rule of PROTOCOL.md
		cn.t.Close(pulse.CloseHeartbeatTimeout, "server silent")
	default: // 1000: a browser cannot send 1001, and pulse.js follows the same rule
		cn.t.Close(pulse.CloseNormal, "client reconnecting")
	}
	close(stop)
	wg.Wait()
	cn.end()
	return err
}

func (cn *connection) read(frames chan<- frame, stop <-chan struct{}) {
	for {
		data, err := cn.t.ReadMessage()
		at := time.Now()
		if err == nil {
			cn.heard.Store(&at)
		}
		select {
		case frames <- frame{data: data, err: err, at: at}:
		case <-stop:
			return
		}
		if err != nil {
			return
		}
	}
}

func (cn *connection) serve(ctx context.Context, frames <-chan frame) error {
	timer := time.NewTimer(cn.c.opts.HandshakeTimeout)
	defer timer.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return ctx.Err()
		case f := <-frames:
			unwelcomed := cn.opened.IsZero()
			err = cn.receive(f)
			if unwelcomed && !cn.opened.IsZero() {
				timer.Reset(0) // the liveness rule is known: apply it
			}
		case <-timer.C:
			var next time.Duration
			next, err = cn.check(time.Now()) // not the fire time, which may be stale
			timer.Reset(next)
		case <-cn.c.wake:
			err = cn.flush()
		case <-cn.refreshC():
			cn.fetchRefresh(ctx)
		case r := <-cn.fetched:
			err = cn.refresh(r)
		}
		if err != nil {
			return err
		}
	}
}

// receive handles one inbound frame: any frame is life.
func (cn *connection) receive(f frame) error {
	if f.err != nil {
		return lost(f.err)
	}
	if m, err := wire.DecodeServer(f.data); err == nil {
		if err := cn.handle(m, f.at); err != nil {
			return err
		}
	}
	if cn.degraded {
		cn.degraded = false
		cn.c.setState(StateChange{State: StateOpen})
	}
	return nil
}

// lost turns a read error into the CloseError that says what to do next.
func lost(err error) error {
	if ce, ok := err.(*pulse.CloseError); ok {
		return ce
	}
	return &pulse.CloseError{Code: pulse.CloseAbnormal, Reason: err.Error()}
}

// check applies the liveness rule at now and returns when to check next.
// Before the welcome, the handshake timeout bounds the wait.
func (cn *connection) check(now time.Time) (time.Duration, error) {
	if cn.opened.IsZero() {
		left := cn.c.opts.HandshakeTimeout - now.Sub(cn.started)
		if left <= 0 {
			return 0, &pulse.CloseError{Code: pulse.CloseAbnormal, Reason: errNoWelcome.Error()}
		}
		return left, nil
	}
	silent := now.Sub(*cn.heard.Load())
	bound := cn.interval + cn.timeout
	probeAt := cn.interval + cn.tick()
	switch {
	case silent >= bound:
		return 0, &pulse.CloseError{Code: pulse.CloseHeartbeatTimeout, Reason: fmt.Sprintf("nothing from the server for %v", silent.Round(time.Millisecond))}
	case silent >= probeAt:
		return bound - silent, cn.degrade()
	}
	return probeAt - silent, nil
}

// tick is the grace past Interval before probing: the server's heartbeat
// itself arrives every Interval.
func (cn *connection) tick() time.Duration {
	return min(cn.interval, cn.timeout, 10*maxTick) / 10
}

// degrade marks the connection degraded and probes it with a ping, once.
func (cn *connection) degrade() error {
	if cn.degraded {
		return nil
	}
	cn.degraded = true
	cn.c.setState(StateChange{State: StateDegraded})
	cn.probes = append(cn.probes, probe{sent: time.Now()})
	return cn.t.WriteMessage(pingFrame)
}

// handle dispatches one pulse.v1 message.
func (cn *connection) handle(m wire.Msg, at time.Time) error {
	switch m := m.(type) {
	case wire.Ping:
		return cn.t.WriteMessage(pongFrame)
	case wire.Pong:
		cn.pong(at)
	case wire.Welcome:
		return cn.welcome(m, at)
	case wire.Subscribed:
		cn.subscribed(m)
	case wire.Message:
		cn.deliver(m.Channel, []wire.Publication{m.Publication}, false)
	case wire.Batch:
		cn.deliver(m.Channel, m.Publications, true)
	case wire.Ack:
		cn.acked(m)
	case wire.Error:
		cn.refused(m)
	case wire.Join:
		cn.presence(m.Channel, m.Member, true)
	case wire.Leave:
		cn.presence(m.Channel, m.Member, false)
	}
	return nil
}

func (cn *connection) presence(channel string, m Member, joined bool) {
	if f := cn.c.opts.OnPresence; f != nil {
		f(channel, m, joined)
	}
}

// pong ends the oldest probe: the server answers pings in order.
func (cn *connection) pong(at time.Time) {
	if len(cn.probes) == 0 {
		return
	}
	p := cn.probes[0]
	cn.probes = cn.probes[1:]
	rtt := at.Sub(p.sent)
	cn.c.mu.Lock()
	cn.c.rtt = rtt
	cn.c.mu.Unlock()
	p.wait.finish(rtt, nil)
}

// welcome opens the connection: it takes the server's liveness rule, then
// says hello, resubscribes every channel and sends what waited.
func (cn *connection) welcome(m wire.Welcome, at time.Time) error {
	if !cn.opened.IsZero() {
		return nil
	}
	var ok bool
	if cn.interval, cn.timeout, ok = m.Liveness(); !ok {
		cn.interval, cn.timeout = pulse.DefaultInterval, pulse.DefaultTimeout
	}
	cn.opened = at
	cn.c.mu.Lock()
	cn.c.generation++
	prior := cn.c.session
	if prior == "" {
		cn.c.session, cn.c.member = m.Session, m.Member
	}
	cn.c.mu.Unlock()
	cn.c.setState(StateChange{State: StateOpen})
	return cn.hello(prior, m.Session)
}

// hello names the client for presence, continues the first connection's
// session, so that presence sees the same member come back, and presents
// the token. It goes before the resubscribes, which flush sends.
func (cn *connection) hello(prior, current string) error {
	continues := prior != "" && prior != current
	if cn.c.opts.Name != "" || continues || cn.token != "" {
		hello := wire.Hello{ID: cn.id(), Client: cn.c.opts.Name, Info: cn.c.opts.Info, Token: cn.token}
		cn.scheduleRefresh(cn.token)
		if continues {
			hello.Session = prior
		}
		data, err := wire.Encode(hello) // Info is the application's
		if err != nil {
			return err
		}
		if err := cn.t.WriteMessage(data); err != nil {
			return err
		}
	}
	return cn.flush()
}

func (cn *connection) id() uint64 {
	cn.nextID++
	return cn.nextID
}
