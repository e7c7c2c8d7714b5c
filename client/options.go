package client

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"math/rand/v2"
	"net"
	"time"
)

// State is where a Client stands.
type State int

const (
	StateIdle         State = iota // the zero State: Run has not started
	StateConnecting                // dialing, or waiting for the welcome
	StateOpen                      // welcomed; frames arrive
	StateDegraded                  // nothing heard for one Interval: probing with a ping
	StateReconnecting              // lost; waiting out the backoff before the next dial
	StateClosed                    // Run has returned
)

var stateNames = [...]string{StateIdle: "idle", StateConnecting: "connecting", StateOpen: "open", StateDegraded: "degraded", StateReconnecting: "reconnecting", StateClosed: "closed"}

func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "State(?)"
}

// StateChange is what Options.OnState receives.
type StateChange struct {
	State      State
	Generation int           // Client.Generation at the change
	Err        error         // why the connection was lost (Reconnecting, Closed), or nil
	Delay      time.Duration // Reconnecting: how long until the next dial
}

// Subscribed is what Options.OnSubscribed receives each time the server
// confirms a subscription, on the first connection and after every
// reconnect.
type Subscribed struct {
	Channel  string
	Position Position // the channel's top when the subscription started
	// Resumed: the client asked to resume from its last position.
	Resumed bool
	// Recovered: the publications missed were replayed (Replayed
	// messages follow). Resumed && !Recovered means they are lost: the
	// epoch changed or the gap outgrew the history; refetch state.
	Recovered bool
	// Err, if not nil, is the server's refusal (a *ServerError): the
	// subscription is dropped.
	Err error
}

// Options configures a Client. Nil means defaults.
type Options struct {
	// Dial opens one connection. Nil means a WebSocket dial with the
	// subprotocol pulse.v1 and TLS (see DialWebSocketTLS).
	Dial func(ctx context.Context, url string) (Transport, error)
	// TLS configures the default Dial's wss:// connections, such as one
	// trusting a private CA (see LoadCA). Nil means the system's roots.
	TLS *tls.Config
	// LocalIP is the address the default Dial's connections come from,
	// one of this machine's (a load generator spreads its connections
	// over several, such as 127.0.0.2 and up, each with its own ports).
	// Nil means the system's choice.
	LocalIP net.IP
	// Backoff returns the delay before reconnect attempt n (0 after a
	// loss, reset once a connection stayed open StableAfter). Nil means
	// Backoff(n, DefaultBackoffBase, DefaultBackoffCap, nil).
	Backoff func(attempt int) time.Duration
	// StableAfter is how long a connection must stay open for the
	// attempt counter to reset. Zero means 10s.
	StableAfter time.Duration
	// HandshakeTimeout bounds a dial and the wait for the welcome.
	// Zero means 10s.
	HandshakeTimeout time.Duration
	// QueueSize bounds the publishes waiting to be sent or acknowledged;
	// Publish fails with ErrQueueFull beyond it. Zero means 256.
	QueueSize int
	// QueueTTL is how long a publish may wait unsent before it fails
	// with ErrExpired, unless PublishOptions.TTL says otherwise. Zero
	// means 30s.
	QueueTTL time.Duration
	// Name and Info are sent in a hello on every connection, for
	// presence. Empty means no hello.
	Name string
	Info json.RawMessage
	// Token returns the signed token that identifies the client, on a
	// server that requires one. It is called before every dial (so a
	// connection closed with 4002, token expired, comes back with a new
	// one), and again while connected ahead of the token's "exp", whose
	// result goes to the server in a refresh. The token goes in the
	// hello, not the URL. An error counts as a failed dial. Nil means no
	// token.
	Token func(ctx context.Context) (string, error)

	// OnState is called on every state change. Nil means none.
	OnState func(StateChange)
	// OnMessage is called with every publication of a subscribed
	// channel, replayed ones first, each once. Nil means none.
	OnMessage func(Message)
	// OnSubscribed is called each time the server confirms a
	// subscription. Nil means none.
	OnSubscribed func(Subscribed)
	// OnPresence is called with the join (joined true) or leave of a
	// member of a channel subscribed with presence. Nil means none.
	OnPresence func(channel string, m Member, joined bool)
}

// Defaults of Options.
const (
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultQueueSize        = 256
	DefaultQueueTTL         = 30 * time.Second
)

// resolved returns o with every default filled in.
func (o *Options) resolved() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.HandshakeTimeout == 0 {
		r.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if r.Dial == nil {
		timeout, config := r.HandshakeTimeout, r.TLS
		var local *net.TCPAddr
		if r.LocalIP != nil {
			local = &net.TCPAddr{IP: r.LocalIP}
		}
		r.Dial = func(ctx context.Context, url string) (Transport, error) {
			return dialWebSocket(ctx, url, timeout, config, local)
		}
	}
	if r.Backoff == nil {
		r.Backoff = func(n int) time.Duration { return Backoff(n, DefaultBackoffBase, DefaultBackoffCap, rand.Float64) }
	}
	if r.StableAfter == 0 {
		r.StableAfter = DefaultStableAfter
	}
	if r.QueueSize == 0 {
		r.QueueSize = DefaultQueueSize
	}
	if r.QueueTTL == 0 {
		r.QueueTTL = DefaultQueueTTL
	}
	return r
}

// PublishOptions are the optional parts of a publish. Nil means defaults.
type PublishOptions struct {
	// Key is the idempotency key: the server applies a publish with a
	// key it saw in the last 2 minutes only once. Empty means a key the
	// client makes up, unique to this publish.
	Key string
	// TTL is how long the publish may wait unsent. Zero means
	// Options.QueueTTL.
	TTL time.Duration
	// Latest, if set, keeps only the latest unsent publish with the same
	// channel and Latest: an older one still waiting fails with
	// ErrReplaced (a game does not want stale moves replayed).
	Latest string
}

// SubscribeOptions are the optional parts of a subscribe. Nil means
// defaults.
type SubscribeOptions struct {
	// Presence joins the channel's presence; Options.OnPresence then
	// sees joins and leaves.
	Presence bool
	// Since resumes from a position saved earlier. Nil means from now.
	Since *Position
}
