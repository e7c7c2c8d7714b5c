package pulse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Server states, in the order they happen.
const (
	stateNew int32 = iota
	stateRunning
	stateDraining
	stateStopped
)

// Server keeps WebSocket connections alive under one liveness rule. Mount
// Handle's http.Handler in any mux and call Run. Connections are accepted
// from the start, so the order of starting Run and the HTTP server does not
// matter, but no heartbeat is sent until Run runs. All methods may be called
// from any goroutine.
type Server struct {
	// Set by NewServer, never changes.
	opts  Options
	bound time.Duration // Interval+Timeout: silence longer than this is death
	steps int64         // wheel ticks per Interval
	wheel *wheel[*Conn]

	state atomic.Int32 // stateNew until Run; Run and its drain move it on

	mu      sync.Mutex // guards the fields below
	conns   map[*Conn]struct{}
	nextID  uint64
	drained chan struct{} // made by drain, closed when conns empties
	poll    *poller       // the epoll loop, started at the first handover to it
}

// NewServer returns a Server configured by opts (nil means defaults). It
// starts nothing: Run drives the heartbeats.
func NewServer(opts *Options) (*Server, error) {
	o, err := opts.resolved()
	if err != nil {
		return nil, err
	}
	s := &Server{opts: o, bound: o.Interval + o.Timeout, conns: make(map[*Conn]struct{})}
	tick := o.tick()
	s.steps = int64(o.Interval / tick)
	s.wheel = newWheel(tick, int64(s.bound/tick)+1, func(k int64, now time.Duration, c *Conn) int64 {
		return c.heartbeat(k, now)
	})
	return s, nil
}

// Tick is the period of the server's timing wheel: a dead peer is detected
// within Interval+Timeout+Tick.
func (s *Server) Tick() time.Duration { return s.wheel.tick }

// Len returns the number of open connections.
func (s *Server) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Run sends heartbeats and closes dead connections until ctx is done. Then
// it stops accepting, closes every connection with CloseServiceRestart, the
// closes spread evenly over Options.DrainWindow so that clients do not all
// return in the same second, and returns once every connection has ended.
func (s *Server) Run(ctx context.Context) error {
	if !s.state.CompareAndSwap(stateNew, stateRunning) {
		return errors.New("pulse: Server.Run called twice")
	}
	wheelCtx, stopWheel := context.WithCancel(context.Background())
	wheelDone := make(chan struct{})
	go func() {
		defer close(wheelDone)
		s.wheel.run(wheelCtx)
	}()
	<-ctx.Done()
	err := s.drain()
	stopWheel()
	<-wheelDone
	s.stopPoller()
	s.state.Store(stateStopped)
	return err
}

// drain closes every connection over the drain window and waits for them.
func (s *Server) drain() error {
	s.mu.Lock()
	s.state.Store(stateDraining)
	s.drained = make(chan struct{})
	if len(s.conns) == 0 {
		close(s.drained)
	}
	conns := s.connsLocked()
	s.mu.Unlock()

	window := s.opts.DrainWindow
	reason := withRetry("server restart", window)
	start := time.Now()
	for i, c := range conns {
		if !s.waitUntil(start.Add(window * time.Duration(i) / time.Duration(len(conns)))) {
			break // every connection has already ended
		}
		c.mu.Lock()
		c.closeLocked(&closeRequest{err: newCloseError(CloseServiceRestart, reason), label: DisconnectShutdown, linger: closeGrace}, true)
		c.mu.Unlock()
	}
	return s.awaitDrained(s.opts.WriteTimeout + 2*closeGrace)
}

// waitUntil waits for t and reports true, or false as soon as the server
// has no connection left.
func (s *Server) waitUntil(t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-s.drained:
		return false
	}
}

// awaitDrained waits for the last connection to end; past patience it
// closes the sockets that remain and waits once more as long.
func (s *Server) awaitDrained(patience time.Duration) error {
	timer := time.NewTimer(patience)
	defer timer.Stop()
	select {
	case <-s.drained:
		return nil
	case <-timer.C:
	}
	s.mu.Lock()
	conns := s.connsLocked()
	s.mu.Unlock()
	for _, c := range conns {
		c.t.close() // outside s.mu: closing a TLS socket can block
	}
	timer.Reset(patience)
	select {
	case <-s.drained:
		return nil
	case <-timer.C:
		return fmt.Errorf("pulse: %d connections still open after drain", s.Len())
	}
}

// connsLocked returns a copy of the connections not yet forgotten.
func (s *Server) connsLocked() []*Conn {
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	return conns
}

// open registers a connection accepted on t with the settings of hs,
// opens its session and starts its heartbeats. The 101 response, when the
// upgrade held it, goes out with what Open sends, or alone as Open
// returns. It fails once the server is draining.
func (s *Server) open(t transport, hs handshake, session Session) (*Conn, error) {
	s.mu.Lock()
	if !s.accepting() {
		s.mu.Unlock()
		return nil, errNotAccepting
	}
	s.nextID++
	c := &Conn{srv: s, t: t, id: s.nextID, kind: hs.kind, subprotocol: hs.subprotocol, session: session}
	c.node.value = c
	c.out.response = hs.response
	if hs.deflate > 0 {
		c.deflateMin, c.deflateWindow = s.opts.Compression.Threshold, hs.deflate
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()

	if b, ok := t.(binder); ok {
		b.bind(c) // before Open, whose sends and closes may reach t at once
	}
	s.opts.Observer.Opened()
	session.Open(c) // before the first heartbeat: what Open sends comes first
	c.writeResponse()
	c.start()
	if s.opts.Logger.Enabled(context.Background(), slog.LevelDebug) { // its arguments cost an upgrade some 2%
		s.opts.Logger.Debug("pulse: open", "conn", c.id, "remote", t.remoteAddr(), "heartbeat", hs.kind)
	}
	return c, nil
}

// binder is a transport that feeds its Conn from a goroutine of its own
// (the epoll engine's loop), so it must know the Conn before anything is
// written or closed on it.
type binder interface {
	bind(c *Conn)
}

// accepting reports whether new connections are taken: before Run and
// while it runs, not once it drains.
func (s *Server) accepting() bool { return s.state.Load() <= stateRunning }

var errNotAccepting = errors.New("pulse: server is not accepting connections")

// ended records that c has ended: it leaves the wheel, and is counted and
// logged. Its session's Closed comes next, then forget.
func (s *Server) ended(c *Conn) {
	s.wheel.remove(&c.node)
	s.opts.Observer.Closed(c.closing.label)
	level := slog.LevelDebug
	if c.closing.label == DisconnectHeartbeatTimeout || c.closing.label == DisconnectSlowConsumer {
		level = slog.LevelInfo
	}
	if ctx := context.Background(); s.opts.Logger.Enabled(ctx, level) {
		s.opts.Logger.Log(ctx, level, "pulse: closed", "conn", c.id, "reason", c.closing.label, "code", int(c.closing.err.Code))
	}
}

// forget releases an ended connection; the drain waits for the last one.
func (s *Server) forget(c *Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	if len(s.conns) == 0 && s.drained != nil {
		select {
		case <-s.drained:
		default:
			close(s.drained)
		}
	}
}
