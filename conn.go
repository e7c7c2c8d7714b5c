package pulse

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Errors returned by Conn.Send and Conn.Close.
var (
	ErrClosed       = errors.New("pulse: connection closed")
	ErrSlowConsumer = errors.New("pulse: send queue full; connection closed as slow consumer")
)

// MessageType is the type of a data message, numbered as its RFC 6455 opcode.
type MessageType int

const (
	MessageText   MessageType = 1
	MessageBinary MessageType = 2
)

// Message is one WebSocket data message. Data belongs to whoever holds the
// Message: a received one is the session's to keep, a sent one must not be
// changed after Send.
type Message struct {
	Type MessageType
	Data []byte

	prep *prepared // the compressed form shared by the copies of a Prepare'd message; nil otherwise
}

// transport is the framing layer under a Conn. Its reader feeds the Conn
// (touch, onPing, onPong, onMessage, onPeerClose, readEnded); the Conn's
// writer is the only caller of writeFrames. EngineStd implements it on
// gorilla/websocket (wsTransport), EngineEpoll on its own epoll loop
// (pollConn).
type transport interface {
	// writeFrames sends a batch of data messages and control frames, in
	// order, before deadline: in one write where the socket allows.
	writeFrames(fs []frame, deadline time.Time) error
	// endReads makes the reader's pending and future reads fail after d.
	endReads(d time.Duration)
	// close closes the socket; a blocked read or write returns an error.
	close() error
	// abort is close for a peer being cut off: what the socket has not
	// sent yet is dropped, and the peer gets a reset.
	abort() error
	remoteAddr() string
}

// Conn is one server-side WebSocket connection held to the liveness rule.
// Send, Close and the getters may be called from any goroutine.
type Conn struct {
	// Set at accept, never changes.
	srv           *Server
	t             transport
	id            uint64
	kind          HeartbeatKind
	subprotocol   string
	session       Session
	deflateMin    int         // the smallest message sent compressed; 0 without permessage-deflate
	deflateWindow deflateBits // the window compressed messages keep to (server_max_window_bits); 0 without permessage-deflate

	// Owned by the timing wheel.
	node     wheelNode[*Conn]
	pingTick int64 // the tick of the next heartbeat

	deadline atomic.Pointer[connDeadline] // set by OnDeadline, taken by the wheel (deadline.go)

	// Durations on the server clock. lastRecv and the RTTs are written by
	// the reader; pingSent is set by the writer and taken by the reader.
	lastRecv  atomic.Int64
	pingSent  atomic.Int64 // when the unanswered heartbeat was written; 0 if none
	rttLast   atomic.Int64
	rttSmooth atomic.Int64

	// The peer's pings in the current second of the server clock, counted
	// by the reader (and, on the epoll engine, by the goroutine that hands
	// messages over: the count may be off by a ping, never unbounded).
	pingSecond atomic.Int64
	pings      atomic.Int32

	// Guarded by mu.
	mu      sync.Mutex
	out     outbox
	closing *closeRequest // set once, by whoever closes first
	writing bool          // a writer goroutine is running
	stopped bool          // the reader has ended: no writer may start
	room    chan struct{} // made by a waiting SendWait; closed when the queue shrinks or the connection closes
	writers sync.WaitGroup
}

// closeRequest records the first reason a connection is closing for.
type closeRequest struct {
	err    *CloseError
	label  DisconnectReason // what Observer.Closed is told
	linger time.Duration    // how long reads go on once the close frame is out
	peer   bool             // the peer sent the first close frame
}

// ID is unique among the server's connections.
func (c *Conn) ID() uint64 { return c.id }

// Heartbeat is the kind of heartbeat this connection uses.
func (c *Conn) Heartbeat() HeartbeatKind { return c.kind }

// Subprotocol is the negotiated WebSocket subprotocol, or "".
func (c *Conn) Subprotocol() string { return c.subprotocol }

// RemoteAddr is the peer's network address.
func (c *Conn) RemoteAddr() string { return c.t.remoteAddr() }

// Liveness returns the rule the connection is held to: a heartbeat every
// interval, and closed after interval+timeout of silence.
func (c *Conn) Liveness() (interval, timeout time.Duration) {
	return c.srv.opts.Interval, c.srv.opts.Timeout
}

// RTT returns the last heartbeat round trip and its smoothed average
// (weight 1/8, as TCP's SRTT); zero before the first answer.
func (c *Conn) RTT() (last, smoothed time.Duration) {
	return time.Duration(c.rttLast.Load()), time.Duration(c.rttSmooth.Load())
}

// slowConsumerGrace is how long the close frame of a connection whose queue
// overflowed may take before its socket is reset.
const slowConsumerGrace = 10 * time.Millisecond

// Send queues m for writing and returns at once. When the connection already
// holds Options.QueueSize messages it is closed with CloseSlowConsumer and
// Send returns ErrSlowConsumer; after a close it returns ErrClosed.
func (c *Conn) Send(m Message) error {
	c.mu.Lock()
	if c.closing != nil {
		c.mu.Unlock()
		return ErrClosed
	}
	if c.out.len() >= c.srv.opts.QueueSize {
		c.closeLocked(&closeRequest{
			err:   newCloseError(CloseSlowConsumer, "send queue full"),
			label: DisconnectSlowConsumer,
		}, false)
		c.mu.Unlock()
		c.cutSlowConsumer()
		return ErrSlowConsumer
	}
	c.out.push(m)
	c.kickLocked()
	c.mu.Unlock()
	return nil
}

// cutSlowConsumer ends a connection whose queue overflowed without waiting
// WriteTimeout: such a peer has most likely stopped reading, so the write
// under way, and the close frame behind it, would only hold the socket and
// its kernel buffers. The close frame gets slowConsumerGrace to go out (it
// does when the peer reads but fell behind a burst); then the socket is
// reset, which fails the writer's write and the reader's read, and drops
// what the kernel still holds for the peer. Resetting is no write: the
// writer stays the only one.
func (c *Conn) cutSlowConsumer() {
	time.AfterFunc(slowConsumerGrace, func() { c.t.abort() })
}

// SendWait is Send for a caller that may wait: it waits for room, or for
// ctx to end, instead of closing the connection. It fills only half the
// queue (at least one message), leaving the rest to Send, so a backlog such
// as replayed history never crowds out live traffic and replies into a
// slow-consumer close. It is never for fan-out, which must not wait on one
// slow peer.
func (c *Conn) SendWait(ctx context.Context, m Message) error {
	for {
		c.mu.Lock()
		if c.closing != nil {
			c.mu.Unlock()
			return ErrClosed
		}
		if c.out.len() < max(1, c.srv.opts.QueueSize/2) {
			c.out.push(m)
			c.kickLocked()
			c.mu.Unlock()
			return nil
		}
		if c.room == nil {
			c.room = make(chan struct{})
		}
		room := c.room
		c.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// wakeLocked releases the SendWait callers waiting for room.
func (c *Conn) wakeLocked() {
	if c.room != nil {
		close(c.room)
		c.room = nil
	}
}

// Close writes what is queued, then a close frame with code and reason, and
// ends the connection once the peer answers or a second has passed. A code
// that may not appear in a close frame (such as 1005 or 1006) is an error;
// so is a second close (ErrClosed).
func (c *Conn) Close(code CloseCode, reason string) error {
	if !sendable(code) {
		return fmt.Errorf("pulse: close code %v may not be sent in a close frame", code)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing != nil {
		return ErrClosed
	}
	c.closeLocked(&closeRequest{err: newCloseError(code, reason), label: DisconnectServerClose, linger: closeGrace}, true)
	return nil
}

// start begins the heartbeat schedule of a connection accepted now: the
// first heartbeat falls on a random tick of the coming Interval.
func (c *Conn) start() {
	now := c.srv.wheel.since()
	c.lastRecv.Store(int64(now))
	c.pingTick = c.srv.wheel.floor(now) + 1 + rand.Int64N(c.srv.steps)
	c.srv.wheel.schedule(&c.node, c.pingTick)
}

// heartbeat is the connection's turn on the timing wheel at tick k: it
// closes a silent connection or sends the heartbeat that is due, and returns
// the next tick it needs a turn at, or -1.
func (c *Conn) heartbeat(k int64, now time.Duration) int64 {
	own := c.fireDeadline(now)
	deadline := time.Duration(c.lastRecv.Load()) + c.srv.bound
	if now >= deadline {
		c.closeFor(CloseHeartbeatTimeout, "heartbeat timeout", DisconnectHeartbeatTimeout)
		return -1
	}
	if k >= c.pingTick {
		if !c.beat() {
			return -1
		}
		for c.pingTick <= k {
			c.pingTick += c.srv.steps
		}
	}
	next := min(c.pingTick, c.srv.wheel.ceil(deadline))
	if own >= 0 {
		next = min(next, own)
	}
	return next
}

// closeFor closes the connection at once for a fault, dropping what is queued.
func (c *Conn) closeFor(code CloseCode, reason string, label DisconnectReason) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeLocked(&closeRequest{err: newCloseError(code, reason), label: label}, false)
}

// closeLocked records r unless a close is already under way, and has the
// writer send the close frame, after the queued messages if flush is set.
func (c *Conn) closeLocked(r *closeRequest, flush bool) bool {
	if c.closing != nil {
		return false
	}
	c.closing = r
	c.wakeLocked()
	if !flush {
		c.out.drop()
	}
	c.kickLocked()
	return true
}

// queue applies set to the outbox and wakes the writer; false if closing.
func (c *Conn) queue(set func(*outbox)) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing != nil {
		return false
	}
	set(&c.out)
	c.kickLocked()
	return true
}

// touch records that a frame arrived: any inbound frame counts as life.
func (c *Conn) touch() { c.lastRecv.Store(int64(c.srv.wheel.since())) }

// onPing answers a ping frame from the peer with a pong frame.
func (c *Conn) onPing(payload []byte) {
	c.touch()
	if c.pingFlood() {
		return
	}
	c.queue(func(o *outbox) { o.owePong(payload) })
}

// pingFlood counts a ping from the peer and, past Options.MaxPingRate in
// one second, closes the connection and reports true.
func (c *Conn) pingFlood() bool {
	second := int64(c.srv.wheel.since() / time.Second)
	if c.pingSecond.Swap(second) != second {
		c.pings.Store(0)
	}
	if c.pings.Add(1) <= int32(c.srv.opts.MaxPingRate) {
		return false
	}
	c.closeFor(ClosePolicyViolation, "ping flood", DisconnectPingFlood)
	return true
}

// onPong handles a pong frame.
func (c *Conn) onPong() {
	c.touch()
	if c.kind == HeartbeatFrame {
		c.answered()
	}
}

// answered measures the round trip of the heartbeat the peer just answered.
func (c *Conn) answered() {
	sent := c.pingSent.Swap(0)
	if sent == 0 {
		return
	}
	rtt := c.srv.wheel.since() - time.Duration(sent)
	c.rttLast.Store(int64(rtt))
	if srtt := c.rttSmooth.Load(); srtt == 0 {
		c.rttSmooth.Store(int64(rtt))
	} else {
		c.rttSmooth.Store(srtt + (int64(rtt)-srtt)/8)
	}
	c.srv.opts.Observer.PongReceived(c.kind, rtt)
}

// onMessage handles a data message: heartbeats of the connection's kind are
// answered here, anything else goes to the session. A text message's
// UTF-8 has been checked by the transport, as its bytes came.
func (c *Conn) onMessage(m Message) {
	c.touch()
	if c.isClosing() {
		return
	}
	if m.Type == MessageText && c.heartbeatMessage(m.Data) {
		return
	}
	c.session.Receive(m)
}

// heartbeatMessage handles a text or app heartbeat and reports whether data was one.
func (c *Conn) heartbeatMessage(data []byte) bool {
	var kind string
	switch c.kind {
	case HeartbeatText:
		kind = string(data)
	case HeartbeatApp:
		kind = appHeartbeat(data)
	}
	switch kind {
	case "pong":
		c.answered()
		return true
	case "ping":
		if !c.pingFlood() {
			c.queue(func(o *outbox) { o.pongMessage = true })
		}
		return true
	}
	return false
}

// onTooBig closes a connection whose peer sent an oversized message.
func (c *Conn) onTooBig() {
	c.touch()
	c.closeFor(CloseMessageTooBig, "message too big", DisconnectMessageTooBig)
}

// onPeerClose answers the peer's close frame with the same code.
func (c *Conn) onPeerClose(code CloseCode, reason string) {
	c.touch()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeLocked(&closeRequest{err: newCloseError(code, reason), label: DisconnectPeerClose, peer: true}, false)
}

func (c *Conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing != nil
}

// readEnded is the reader's last call: it stops the writer, closes the socket
// and releases the connection. err is why the read failed.
func (c *Conn) readEnded(err error) {
	c.mu.Lock()
	if c.closing == nil {
		c.closing = &closeRequest{err: newCloseError(CloseAbnormal, err.Error()), label: DisconnectReadError}
		c.wakeLocked()
		c.out.drop()
		c.out.closeSent = true
	}
	peer := c.closing.peer
	c.stopped = true
	c.mu.Unlock()
	if !peer {
		c.t.close() // a peer that did not close is gone: unblock the writer now
	}
	c.writers.Wait() // after a peer's close, this flushes the reply
	c.t.close()
	c.srv.ended(c)
	c.session.Closed(c.closing.err)
	c.srv.forget(c) // last: Run returns only after every Closed
}
