package redisbroker

import (
	"log/slog"
	"time"

	"github.com/pulse-go/pulse/hub"
)

// Options configures a Broker. Nil means defaults.
type Options struct {
	// Prefix starts every Redis key and PUB/SUB channel name, so that
	// several deployments can share one Redis. Zero means "pulse".
	Prefix string
	// HistorySize is how many publications each channel keeps.
	// Zero means hub.DefaultHistorySize (1000).
	HistorySize int
	// HistoryTTL is how long a publication stays in history.
	// Zero means hub.DefaultHistoryTTL (10m).
	HistoryTTL time.Duration
	// DedupWindow is how long an idempotency key is remembered.
	// Zero means hub.DefaultDedupWindow (2m).
	DedupWindow time.Duration
	// MaxKeysPerChannel bounds the idempotency keys one channel remembers;
	// the oldest go first. Zero means hub.DefaultMaxKeysPerChannel (10,000).
	MaxKeysPerChannel int
	// IdleTTL is how long a channel with no publication keeps its epoch and
	// top; after it, the channel starts a new epoch. Zero means 24h.
	IdleTTL time.Duration
	// NodeTimeout is how long a node that stopped refreshing its keepalive
	// is still thought alive; then the other nodes remove its members from
	// presence. Zero means 15s.
	NodeTimeout time.Duration
	// OnLost, if set, is called from the subscription reader when a gap
	// in a channel's live publications could not be filled from history
	// (the history was lost or trimmed meanwhile), besides a log line and
	// a hub.EventLost to the channel's subscriptions, which must resume
	// from their last position (and learn recovered:false). Nil means none.
	OnLost func(channel string)
	// Logger receives the broker's warnings. Nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock of publication times, ages and windows. Nil means
	// time.Now. (Redis expires idle keys on its own clock.)
	Now func() time.Time
}

// Defaults of the options hub does not define.
const (
	DefaultPrefix      = "pulse"
	DefaultIdleTTL     = 24 * time.Hour
	DefaultNodeTimeout = 15 * time.Second
)

// Bounds of the broker's own waits.
const (
	// opTimeout bounds a Redis call the broker makes on its own (gap
	// fills, keepalives, sweeps), not on behalf of a caller's ctx.
	opTimeout = 5 * time.Second
	// subscribeTimeout bounds the wait for Redis to confirm a subscription.
	subscribeTimeout = 5 * time.Second
	// unsubscribeTimeout bounds an UNSUBSCRIBE: the channel leaves the set
	// that a new connection subscribes at once, so a Redis that does not
	// answer soon is not worth waiting for.
	unsubscribeTimeout = time.Second
	// maxPending bounds the events a new subscription holds before it
	// knows its starting position; past it the subscription is lost.
	maxPending = 4096
)

func (o *Options) setDefaults() {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.HistorySize <= 0 {
		o.HistorySize = hub.DefaultHistorySize
	}
	if o.HistoryTTL <= 0 {
		o.HistoryTTL = hub.DefaultHistoryTTL
	}
	if o.DedupWindow <= 0 {
		o.DedupWindow = hub.DefaultDedupWindow
	}
	if o.MaxKeysPerChannel <= 0 {
		o.MaxKeysPerChannel = hub.DefaultMaxKeysPerChannel
	}
	if o.IdleTTL <= 0 {
		o.IdleTTL = DefaultIdleTTL
	}
	if o.NodeTimeout <= 0 {
		o.NodeTimeout = DefaultNodeTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}
