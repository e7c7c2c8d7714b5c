package pulse

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// The liveness rule, with its defaults. A server sends one heartbeat per
// connection every Interval, the first at a random phase in [0, Interval).
// Any inbound frame counts as life. A connection with nothing inbound for
// Interval+Timeout is dead and is closed with CloseHeartbeatTimeout. The
// shared timing wheel ticks every Interval/n, with n chosen so that a tick is
// at most a tenth of min(Interval, Timeout); a dead peer is therefore
// detected within Interval+Timeout+tick, and a peer that answers every
// heartbeat within Timeout is never dropped.
const (
	DefaultInterval = 25 * time.Second // under the 60 s idle cut of ALB and nginx
	DefaultTimeout  = 10 * time.Second
	maxTick         = time.Second
	ticksPerTimeout = 10
)

// Defaults of the connection's other bounds.
const (
	DefaultWriteTimeout   = 10 * time.Second
	DefaultQueueSize      = 256
	DefaultMaxMessageSize = 64 << 10
	DefaultDrainWindow    = 5 * time.Second
	DefaultMaxPingRate    = 50
	closeGrace            = time.Second // how long a close waits for the peer's reply
)

// HeartbeatKind is how the server's heartbeat is carried.
type HeartbeatKind int

const (
	// HeartbeatFrame sends RFC 6455 ping frames; every browser answers them,
	// but JavaScript never sees them.
	HeartbeatFrame HeartbeatKind = iota + 1
	// HeartbeatApp sends the pulse protocol's {"type":"ping"} message and
	// expects {"type":"pong"}. Chosen by the subprotocol pulse.v1.
	HeartbeatApp
	// HeartbeatText sends the text message "ping" and expects "pong", for
	// clients written as `if (e.data === 'ping') ws.send('pong')`.
	HeartbeatText
)

var heartbeatNames = [...]string{HeartbeatFrame: "frame", HeartbeatApp: "app", HeartbeatText: "text"}

// String returns the kind's name: "frame", "app" or "text".
func (k HeartbeatKind) String() string {
	if k.valid() {
		return heartbeatNames[k]
	}
	return fmt.Sprintf("HeartbeatKind(%d)", int(k))
}

func (k HeartbeatKind) valid() bool { return k >= HeartbeatFrame && k <= HeartbeatText }

// MarshalText returns the kind's name, the one UnmarshalText reads.
func (k HeartbeatKind) MarshalText() ([]byte, error) {
	if !k.valid() {
		return nil, fmt.Errorf("pulse: unknown heartbeat kind %d", int(k))
	}
	return []byte(heartbeatNames[k]), nil
}

// UnmarshalText sets k from a name: "frame", "app" or "text". It lets a
// flag.TextVar or an encoding/json field hold a HeartbeatKind.
func (k *HeartbeatKind) UnmarshalText(text []byte) error {
	kind, err := parseHeartbeatKind(string(text))
	if err != nil {
		return err
	}
	*k = kind
	return nil
}

// parseHeartbeatKind parses a kind's name: "frame", "app" or "text", as in
// the query parameter heartbeat=.
func parseHeartbeatKind(s string) (HeartbeatKind, error) {
	for k, name := range heartbeatNames {
		if name != "" && name == s {
			return HeartbeatKind(k), nil
		}
	}
	return 0, fmt.Errorf("pulse: unknown heartbeat kind %q (want frame, app or text)", s)
}

// Engine is what drives a Server's connections once upgraded. Both
// engines upgrade through net/http, so Server.Handler mounts in any mux
// either way.
type Engine int

const (
	// EngineStd reads each connection with a goroutine of its own through
	// gorilla/websocket. It works everywhere, TLS included.
	EngineStd Engine = iota + 1
	// EngineEpoll (Linux only) hands each upgraded socket to one epoll
	// loop that parses frames itself: an idle connection holds no
	// goroutine and no buffer. A connection it cannot take over, such as
	// one over TLS, stays on EngineStd.
	EngineEpoll
)

var engineNames = [...]string{EngineStd: "std", EngineEpoll: "epoll"}

// String returns the engine's name: "std" or "epoll".
func (e Engine) String() string {
	if e >= EngineStd && e <= EngineEpoll {
		return engineNames[e]
	}
	return fmt.Sprintf("Engine(%d)", int(e))
}

// UnmarshalText sets e from a name, "std" or "epoll", so that a flag.TextVar
// can hold an Engine.
func (e *Engine) UnmarshalText(text []byte) error {
	for k, name := range engineNames {
		if name != "" && name == string(text) {
			*e = Engine(k)
			return nil
		}
	}
	return fmt.Errorf("pulse: unknown engine %q (want std or epoll)", text)
}

// MarshalText returns the engine's name.
func (e Engine) MarshalText() ([]byte, error) { return []byte(e.String()), nil }

// Options configures a Server. A nil *Options means all defaults.
type Options struct {
	// Interval between heartbeats on each connection. Zero means 25s.
	Interval time.Duration
	// Timeout is how long past Interval a silent peer is still alive.
	// Zero means 10s.
	Timeout time.Duration
	// Heartbeat is the kind for clients that choose none (no subprotocol
	// and no ?heartbeat= query parameter). Zero means HeartbeatFrame.
	Heartbeat HeartbeatKind
	// WriteTimeout bounds every write to a socket; a write that cannot
	// finish in time closes the connection. Zero means 10s.
	WriteTimeout time.Duration
	// QueueSize is how many outbound messages a connection may hold
	// before it is closed with CloseSlowConsumer; the batch being written
	// (at most 64 messages or 256 KiB) is out of the queue. Zero means 256.
	QueueSize int
	// MaxMessageSize is the largest inbound message in bytes; a larger one
	// closes the connection with CloseMessageTooBig. Zero means 64 KiB.
	MaxMessageSize int64
	// MaxPingRate is how many pings (ping frames, or pulse.v1 or text
	// "ping" messages) a peer may send in one second; one more closes the
	// connection with ClosePolicyViolation, since answering a flood costs
	// the other connections CPU. Zero means 50.
	MaxPingRate int
	// DrainWindow is the time over which Run, when its context ends,
	// spreads the CloseServiceRestart of every connection. Zero means 5s.
	DrainWindow time.Duration
	// CheckOrigin decides whether a browser's Origin may connect. Nil
	// means same-origin requests and requests without Origin only.
	CheckOrigin func(r *http.Request) bool
	// Engine drives the connections after the upgrade. Zero means
	// EngineStd; EngineEpoll fails NewServer where epoll is missing.
	Engine Engine
	// Compression offers permessage-deflate (RFC 7692) to clients that ask
	// for it (every browser does): messages of at least its Threshold are
	// sent compressed, and compressed messages are read. Nil means off.
	Compression *CompressionOptions
	// Observer is told of every open, close and heartbeat, to count them;
	// package prom exports them to Prometheus. Its methods must not block.
	// Nil means none.
	Observer Observer
	// Logger receives connection events at debug level and faults at
	// warn. Nil means slog.Default().
	Logger *slog.Logger
}

// resolved returns a copy of o with every default filled in, and an error
// for values that cannot work.
func (o *Options) resolved() (Options, error) {
	var r Options
	if o != nil {
		r = *o
	}
	setDefault(&r.Interval, DefaultInterval)
	setDefault(&r.Timeout, DefaultTimeout)
	setDefault(&r.Heartbeat, HeartbeatFrame)
	setDefault(&r.WriteTimeout, DefaultWriteTimeout)
	setDefault(&r.QueueSize, DefaultQueueSize)
	setDefault(&r.MaxMessageSize, DefaultMaxMessageSize)
	setDefault(&r.DrainWindow, DefaultDrainWindow)
	setDefault(&r.MaxPingRate, DefaultMaxPingRate)
	setDefault(&r.Engine, EngineStd)
	if r.Compression != nil {
		c := *r.Compression
		setDefault(&c.Threshold, DefaultCompressionThreshold)
		r.Compression = &c
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	if r.Observer == nil {
		r.Observer = noObserver{}
	}
	if r.Interval < time.Millisecond || r.Timeout < time.Millisecond {
		return r, fmt.Errorf("pulse: Interval %v and Timeout %v must be at least 1ms", r.Interval, r.Timeout)
	}
	if r.Compression != nil && r.Compression.Threshold < 0 {
		return r, fmt.Errorf("pulse: negative compression Threshold %d", r.Compression.Threshold)
	}
	if r.WriteTimeout < 0 || r.QueueSize < 0 || r.MaxMessageSize < 0 || r.DrainWindow < 0 || r.MaxPingRate < 0 {
		return r, fmt.Errorf("pulse: negative WriteTimeout %v, QueueSize %d, MaxMessageSize %d or DrainWindow %v",
			r.WriteTimeout, r.QueueSize, r.MaxMessageSize, r.DrainWindow)
	}
	if r.Engine != EngineStd && (r.Engine != EngineEpoll || !epollEngine) {
		return r, fmt.Errorf("pulse: engine %v is not available on this system", r.Engine)
	}
	if !r.Heartbeat.valid() {
		return r, fmt.Errorf("pulse: unknown heartbeat kind %v", r.Heartbeat)
	}
	return r, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// tick returns the period of the shared timing wheel: Interval divided into
// equal steps no longer than min(Interval, Timeout)/10 and maxTick. Dividing
// Interval keeps heartbeats Interval apart (short of it by less than a
// nanosecond per step, which only makes them early).
func (o *Options) tick() time.Duration {
	limit := min(min(o.Interval, o.Timeout)/ticksPerTimeout, maxTick)
	steps := max((o.Interval+limit-1)/limit, 1)
	return o.Interval / steps
}
