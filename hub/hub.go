package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"golang.org/x/time/rate"

	"github.com/pulse-go/pulse"
)

// Action is what a client asks to do in a channel.
type Action int

const (
	ActionSubscribe Action = iota + 1
	ActionPublish
)

func (a Action) String() string {
	switch a {
	case ActionSubscribe:
		return "subscribe"
	case ActionPublish:
		return "publish"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Peer is the client asking, as Options.Authorize sees it.
type Peer struct {
	Conn   *pulse.Conn
	Member string          // its member id, as presence shows it
	Client string          // the name from its hello, or ""
	Info   json.RawMessage // the info from its hello, or nil
	// User and Claims come from the client's verified token, on a hub
	// with a Verifier; "" and nil otherwise.
	User   string
	Claims map[string]any
}

// Options configures a Hub. Nil means defaults.
type Options struct {
	// Broker stores the channels. Nil means NewMemory(nil).
	Broker Broker
	// Verifier, if set, makes every client present a signed token that
	// names its user (see Identity, and package auth for JWTs): at the
	// upgrade, or in its hello for a pulse.v1 client. The token's
	// patterns then decide what the client may subscribe and publish to.
	// Nil means anonymous clients, allowed everything.
	Verifier Verifier
	// Authorize decides whether p may take action in channel, after the
	// token's patterns allowed it; a non-nil error refuses it with a
	// "forbidden" error message carrying the error's text. Nil allows
	// everything.
	Authorize func(p Peer, action Action, channel string) error
	// MaxSubscriptions is how many channels one connection may subscribe.
	// Zero means 100.
	MaxSubscriptions int
	// PublishRate is how many publishes per second one connection may
	// make, beyond a burst of PublishBurst; a publish over it is answered
	// "rate_limited", and a connection that goes on publishing when refused is
	// closed with 1008 (see limits.go). Zero means 50.
	PublishRate float64
	// PublishBurst is how many publishes one connection may make at once.
	// Zero means 100.
	PublishBurst int
	// MaxReplay is the most publications one subscribe replays, whatever
	// the broker's history holds; a client further behind gets
	// "recovered": false and starts from now. Zero means 10,000.
	MaxReplay int
	// Refused is called with the reason of each refusal (Reasons lists
	// them), to count it; it must not block. Nil means none.
	Refused func(reason string)
	// Logger receives broker failures. Nil means slog.Default().
	Logger *slog.Logger
}

// Defaults of Options.
const (
	DefaultMaxSubscriptions = 100
	DefaultMaxReplay        = 10_000
)

// Hub speaks the pulse.v1 protocol to clients: channels with history,
// positions and resume, presence, acknowledged idempotent publishes. It is
// a pulse.Handler: mount it with server.Handler(hub). Each connection's
// state is its own session; the hub holds only the channels this node
// subscribes. All methods may be called from any goroutine.
type Hub struct {
	// Set by New, never changes.
	opts Options
	ids  *idSource // of the sessions' tokens and owners; safe for concurrent use

	refusalLog rate.Sometimes // bounds the log lines of refusals; safe for concurrent use

	mu       sync.Mutex // guards channels
	channels map[string]*fanout
}

var _ pulse.SubprotocolHandler = (*Hub)(nil)

// New returns a Hub configured by opts. It starts no goroutine.
func New(opts *Options) *Hub {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Broker == nil {
		o.Broker = NewMemory(nil)
	}
	if o.MaxSubscriptions == 0 {
		o.MaxSubscriptions = DefaultMaxSubscriptions
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.PublishRate == 0 {
		o.PublishRate = DefaultPublishRate
	}
	if o.PublishBurst == 0 {
		o.PublishBurst = DefaultPublishBurst
	}
	if o.MaxReplay == 0 {
		o.MaxReplay = DefaultMaxReplay
	}
	if o.Refused == nil {
		o.Refused = func(string) {}
	}
	return &Hub{opts: o, ids: newIDSource(), channels: make(map[string]*fanout), refusalLog: rate.Sometimes{First: refusalLogBurst, Interval: refusalLogWindow}}
}

// Accept makes the session of a connection upgraded from r. On a hub
// with a Verifier, it refuses with 401 a bad token presented as ?token=
// or Authorization: Bearer, and a plain WebSocket client (no pulse.v1)
// that presents none.
func (h *Hub) Accept(r *http.Request) (pulse.Session, error) {
	var id *Identity
	if h.opts.Verifier != nil {
		var err error
		if id, err = h.authenticate(r); err != nil {
			h.opts.Refused(ReasonUnauthorized)
			return nil, err
		}
	}
	return newSession(h, id), nil
}

// Subprotocol is pulse.v1: the hub speaks it, with the app heartbeat.
func (h *Hub) Subprotocol() string { return pulse.Subprotocol }

// Publish publishes data, which must be JSON, to channel from the server
// side. It needs no permission.
func (h *Hub) Publish(ctx context.Context, channel string, data []byte, opts PublishOptions) (PublishResult, error) {
	if err := checkChannel(channel); err != nil {
		return PublishResult{}, fmt.Errorf("hub: publish: %s", err.message)
	}
	if !json.Valid(data) {
		return PublishResult{}, errors.New("hub: publish: data is not valid JSON")
	}
	return h.opts.Broker.Publish(ctx, channel, data, opts)
}

// Subscribe delivers every event of channel from now on to deliver, on the
// server side, as Broker.Subscribe does: deliver must not block and must
// not call the hub. It needs no permission. Calling unsubscribe stops the
// deliveries.
func (h *Hub) Subscribe(ctx context.Context, channel string, deliver func(Event)) (unsubscribe func(), err error) {
	if err := checkChannel(channel); err != nil {
		return nil, fmt.Errorf("hub: subscribe: %s", err.message)
	}
	return h.opts.Broker.Subscribe(ctx, channel, deliver)
}

// Members lists who is present in channel.
func (h *Hub) Members(ctx context.Context, channel string) ([]Member, error) {
	pb, ok := h.opts.Broker.(PresenceBroker)
	if !ok {
		return nil, errNoPresence
	}
	return pb.Members(ctx, channel)
}

// join adds sub to its channel, subscribing the broker when sub is the
// node's first subscriber of it. The broker call (a network round trip for
// a remote broker) is made outside the hub's lock: only the subscribers of
// the same channel wait for it.
func (h *Hub) join(ctx context.Context, sub *subscription) (*fanout, error) {
	h.mu.Lock()
	fan := h.channels[sub.channel]
	first := fan == nil
	if first {
		fan = &fanout{name: sub.channel, subs: make(map[*subscription]struct{}), ready: make(chan struct{})}
		h.channels[sub.channel] = fan
	}
	fan.add(sub) // counted now, so a concurrent leave keeps the channel
	sub.fan = fan
	h.mu.Unlock()
	if first {
		h.subscribeBroker(ctx, fan)
	}
	select {
	case <-fan.ready:
	case <-ctx.Done():
		h.leave(sub)
		return nil, ctx.Err()
	}
	if fan.err != nil {
		h.leave(sub)
		return nil, fan.err
	}
	return fan, nil
}

// subscribeBroker makes fan's broker subscription and marks fan ready. A
// failed channel leaves the map at once, so the next subscribe tries anew.
func (h *Hub) subscribeBroker(ctx context.Context, fan *fanout) {
	fan.unsubscribe, fan.err = h.opts.Broker.Subscribe(ctx, fan.name, fan.deliver)
	if fan.err != nil {
		h.mu.Lock()
		if h.channels[fan.name] == fan {
			delete(h.channels, fan.name)
		}
		h.mu.Unlock()
	}
	close(fan.ready)
}

// leave removes sub from its channel, and the channel from the broker when
// it was the node's last subscriber.
func (h *Hub) leave(sub *subscription) {
	fan := sub.fan
	h.mu.Lock()
	empty := fan.remove(sub)
	if empty && h.channels[fan.name] == fan {
		delete(h.channels, fan.name)
	}
	h.mu.Unlock()
	if empty {
		<-fan.ready // a subscribe under way: end what it made
		if fan.unsubscribe != nil {
			fan.unsubscribe()
		}
	}
}
