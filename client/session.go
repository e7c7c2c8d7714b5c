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

// session is one connection of a Client, from dial to loss. Its run
// goroutine is the only writer of the transport; a reader goroutine hands
// it every inbound frame with the time it arrived.
type session struct {
	// Set by newSession, never changes.
	c       *Client
	t       Transport
	started time.Time

	// heard is when the last inbound frame was read, stored by the reader
	// before it hands the frame over, so a loop held up by a slow callback
	// never mistakes frames it has not handled yet for silence.
	heard atomic.Pointer[time.Time]

	// Owned by run.
	opened            time.Time // the welcome's arrival; zero before
	interval, timeout time.Duration
	degraded          bool
	nextID            uint64
	probes            []probe // pings sent, oldest first
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

func newSession(c *Client, t Transport) *session {
	now := time.Now()
	s := &session{c: c, t: t, started: now}
	s.heard.Store(&now)
	return s
}

// run serves the connection until it is lost or ctx ends, and returns why.
func (s *session) run(ctx context.Context) error {
	frames := make(chan frame)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { s.read(frames, stop) })
	err := s.serve(ctx, frames)
	switch ce, _ := err.(*pulse.CloseError); {
	case ctx.Err() != nil:
		s.t.Close(pulse.CloseNormal, "client closing")
	case ce != nil && ce.Code == pulse.CloseHeartbeatTimeout: // the client rule of PROTOCOL.md
		s.t.Close(pulse.CloseHeartbeatTimeout, "server silent")
	default: // 1000: a browser cannot send 1001, and pulse.js follows the same rule
		s.t.Close(pulse.CloseNormal, "client reconnecting")
	}
	close(stop)
	wg.Wait()
	s.end()
	return err
}

func (s *session) read(frames chan<- frame, stop <-chan struct{}) {
	for {
		data, err := s.t.ReadMessage()
		at := time.Now()
		if err == nil {
			s.heard.Store(&at)
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

func (s *session) serve(ctx context.Context, frames <-chan frame) error {
	timer := time.NewTimer(s.c.opts.HandshakeTimeout)
	defer timer.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return ctx.Err()
		case f := <-frames:
			unwelcomed := s.opened.IsZero()
			err = s.receive(f)
			if unwelcomed && !s.opened.IsZero() {
				timer.Reset(0) // the liveness rule is known: apply it
			}
		case <-timer.C:
			var next time.Duration
			next, err = s.check(time.Now()) // not the fire time, which may be stale
			timer.Reset(next)
		case <-s.c.wake:
			err = s.flush()
		}
		if err != nil {
			return err
		}
	}
}

// receive handles one inbound frame: any frame is life.
func (s *session) receive(f frame) error {
	if f.err != nil {
		return lost(f.err)
	}
	if m, err := wire.DecodeServer(f.data); err == nil {
		if err := s.handle(m, f.at); err != nil {
			return err
		}
	}
	if s.degraded {
		s.degraded = false
		s.c.setState(StateChange{State: StateOpen})
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
func (s *session) check(now time.Time) (time.Duration, error) {
	if s.opened.IsZero() {
		left := s.c.opts.HandshakeTimeout - now.Sub(s.started)
		if left <= 0 {
			return 0, &pulse.CloseError{Code: pulse.CloseAbnormal, Reason: errNoWelcome.Error()}
		}
		return left, nil
	}
	silent := now.Sub(*s.heard.Load())
	bound := s.interval + s.timeout
	probeAt := s.interval + s.tick()
	switch {
	case silent >= bound:
		return 0, &pulse.CloseError{Code: pulse.CloseHeartbeatTimeout, Reason: fmt.Sprintf("nothing from the server for %v", silent.Round(time.Millisecond))}
	case silent >= probeAt:
		return bound - silent, s.degrade()
	}
	return probeAt - silent, nil
}

// tick is the grace past Interval before probing: the server's heartbeat
// itself arrives every Interval.
func (s *session) tick() time.Duration {
	return min(s.interval, s.timeout, 10*maxTick) / 10
}

// degrade marks the connection degraded and probes it with a ping, once.
func (s *session) degrade() error {
	if s.degraded {
		return nil
	}
	s.degraded = true
	s.c.setState(StateChange{State: StateDegraded})
	s.probes = append(s.probes, probe{sent: time.Now()})
	return s.t.WriteMessage(pingFrame)
}

// handle dispatches one pulse.v1 message.
func (s *session) handle(m wire.Msg, at time.Time) error {
	switch m := m.(type) {
	case wire.Ping:
		return s.t.WriteMessage(pongFrame)
	case wire.Pong:
		s.pong(at)
	case wire.Welcome:
		return s.welcome(m, at)
	case wire.Subscribed:
		s.subscribed(m)
	case wire.Message:
		s.deliver(m.Channel, []wire.Publication{m.Publication}, false)
	case wire.Batch:
		s.deliver(m.Channel, m.Publications, true)
	case wire.Ack:
		s.acked(m)
	case wire.Error:
		s.refused(m)
	case wire.Join:
		s.presence(m.Channel, m.Member, true)
	case wire.Leave:
		s.presence(m.Channel, m.Member, false)
	}
	return nil
}

func (s *session) presence(channel string, m Member, joined bool) {
	if f := s.c.opts.OnPresence; f != nil {
		f(channel, m, joined)
	}
}

// pong ends the oldest probe: the server answers pings in order.
func (s *session) pong(at time.Time) {
	if len(s.probes) == 0 {
		return
	}
	p := s.probes[0]
	s.probes = s.probes[1:]
	rtt := at.Sub(p.sent)
	s.c.mu.Lock()
	s.c.rtt = rtt
	s.c.mu.Unlock()
	p.wait.finish(rtt, nil)
}

// welcome opens the connection: it takes the server's liveness rule, then
// says hello, resubscribes every channel and sends what waited.
func (s *session) welcome(m wire.Welcome, at time.Time) error {
	if !s.opened.IsZero() {
		return nil
	}
	var ok bool
	if s.interval, s.timeout, ok = m.Liveness(); !ok {
		s.interval, s.timeout = pulse.DefaultInterval, pulse.DefaultTimeout
	}
	s.opened = at
	s.c.mu.Lock()
	s.c.generation++
	prior := s.c.session
	if prior == "" {
		s.c.session, s.c.member = m.Session, m.Member
	}
	s.c.mu.Unlock()
	s.c.setState(StateChange{State: StateOpen})
	return s.hello(prior, m.Session)
}

// hello names the client for presence and continues the first
// connection's session, so that presence sees the same member come back.
// It goes before the resubscribes, which flush sends.
func (s *session) hello(prior, current string) error {
	continues := prior != "" && prior != current
	if s.c.opts.Name != "" || continues {
		hello := wire.Hello{ID: s.id(), Client: s.c.opts.Name, Info: s.c.opts.Info}
		if continues {
			hello.Session = prior
		}
		data, err := wire.Encode(hello) // Info is the application's
		if err != nil {
			return err
		}
		if err := s.t.WriteMessage(data); err != nil {
			return err
		}
	}
	return s.flush()
}

func (s *session) id() uint64 {
	s.nextID++
	return s.nextID
}
