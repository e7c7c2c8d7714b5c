package redisbroker

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pulse-go/pulse/hub"
	"github.com/redis/go-redis/v9"
)

//go:embed scripts/*.lua
var scriptFiles embed.FS

func loadScript(name string) *redis.Script {
	src, err := scriptFiles.ReadFile("scripts/" + name)
	if err != nil {
		panic(err) // embedded at build time
	}
	return redis.NewScript(string(src))
}

// The scripts, one per operation.
var (
	scriptPublish = loadScript("publish.lua")
	scriptHistory = loadScript("history.lua")
	scriptJoin    = loadScript("presence_join.lua")
	scriptLeave   = loadScript("presence_leave.lua")
	scriptSweep   = loadScript("node_sweep.lua")
)

// Broker is the hub.PresenceBroker on Redis. Make one with New; Close it.
type Broker struct {
	// Set by New, never change.
	opts   Options
	rdb    *redis.Client
	ps     *redis.PubSub // the node's one PUB/SUB connection
	node   string        // this node's id in presence
	cancel context.CancelFunc
	done   sync.WaitGroup // the reader, the keepalive and the pipeliner

	publishes chan *publishCall // to the pipeliner (pipeline.go)
	stopped   <-chan struct{}   // closed by Close

	publishing atomic.Int64 // Publish calls in progress (pipeline.go)

	closed atomic.Bool
	up     atomic.Bool  // the last exchange with Redis succeeded
	filled atomic.Int64 // publications delivered from history to fill PUB/SUB gaps
	errors atomic.Int64 // calls that failed because Redis did not answer

	subs      subscriptions // owned by subscribe.go
	presences localPresence // owned by presence.go
}

var _ hub.PresenceBroker = (*Broker)(nil)

// Errors of the broker, besides hub's.
var (
	errEmptyChannel = errors.New("redisbroker: empty channel name")
	errNilDeliver   = errors.New("redisbroker: subscribe with a nil deliver")
)

// New connects to the Redis at url (redis://[:password@]host:port/db, or
// rediss:// for TLS), checks it answers within ctx, and starts the node's
// subscription reader, keepalive and publish pipeliner, which Close joins.
func New(ctx context.Context, url string, opts *Options) (*Broker, error) {
	ro, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redisbroker: %w", err)
	}
	ro.Protocol = 2 // PUB/SUB pongs carry their payload
	ro.DisableIdentity = true
	var o Options
	if opts != nil {
		o = *opts
	}
	o.setDefaults()
	rdb := redis.NewClient(ro)
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("redisbroker: connect to %s: %w", ro.Addr, err)
	}
	b := &Broker{opts: o, rdb: rdb, ps: rdb.Subscribe(context.Background()), node: randomHex(8),
		publishes: make(chan *publishCall, maxBatch)}
	b.up.Store(true)
	b.subs.init()
	b.presences.init()
	if err := b.register(ctx); err != nil {
		b.ps.Close()
		rdb.Close()
		return nil, fmt.Errorf("redisbroker: register node: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	b.cancel, b.stopped = cancel, runCtx.Done()
	b.done.Add(3)
	go func() { defer b.done.Done(); b.read(runCtx) }()
	go func() { defer b.done.Done(); b.keepalive(runCtx) }()
	go func() { defer b.done.Done(); b.pipeline(runCtx) }()
	return b, nil
}

// Up reports whether the last exchange with Redis succeeded: a health
// check shows "degraded" while it does not.
func (b *Broker) Up() bool { return b.up.Load() && !b.closed.Load() }

// Errors counts the calls that failed because Redis did not answer, since
// New.
func (b *Broker) Errors() int64 { return b.errors.Load() }

// Close stops the node: its goroutines end and are joined, its members
// leave presence at once, and later calls return hub.ErrClosed.
func (b *Broker) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	b.cancel()
	b.ps.Close() // ends the reader's receive
	b.done.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	b.sweepSelf(ctx)
	return b.rdb.Close()
}

// Publish implements hub.Broker.
func (b *Broker) Publish(ctx context.Context, channel string, data []byte, opts hub.PublishOptions) (hub.PublishResult, error) {
	var res hub.PublishResult
	if err := b.check(channel); err != nil {
		return res, err
	}
	if n := len(opts.IdempotencyKey); n > hub.MaxKeyLength {
		return res, fmt.Errorf("%w: %d bytes, at most %d", hub.ErrKeyTooLong, n, hub.MaxKeyLength)
	}
	o := &b.opts
	keys := []string{b.key(channel, "meta"), b.key(channel, "history"), b.key(channel, "keys"), b.key(channel, "keytimes")}
	reply, err := b.runPublish(ctx, &publishCall{keys: keys, args: []any{b.key(channel, "events"), data, opts.From, b.nowMs(),
		opts.IdempotencyKey, o.HistorySize, o.HistoryTTL.Milliseconds(), o.DedupWindow.Milliseconds(),
		randomHex(8), o.IdleTTL.Milliseconds(), o.MaxKeysPerChannel}})
	if err != nil {
		return res, b.fail("publish", err)
	}
	if len(reply) != 3 {
		return res, fmt.Errorf("redisbroker: publish: unexpected reply %v", reply)
	}
	res.Pos, err = position(reply[0], reply[1])
	res.Duplicate = reply[2] == int64(1)
	return res, err
}

// History implements hub.Broker.
func (b *Broker) History(ctx context.Context, channel string, since hub.Position) ([]hub.Publication, hub.Position, error) {
	if err := b.check(channel); err != nil {
		return nil, hub.Position{}, err
	}
	o := &b.opts
	keys := []string{b.key(channel, "meta"), b.key(channel, "history")}
	reply, err := scriptHistory.Run(ctx, b.rdb, keys, randomHex(8), b.nowMs(), o.HistoryTTL.Milliseconds(),
		o.IdleTTL.Milliseconds(), since.Epoch, since.Offset).Slice()
	if err != nil {
		return nil, hub.Position{}, b.fail("history", err)
	}
	if len(reply) != 3 {
		return nil, hub.Position{}, fmt.Errorf("redisbroker: history: unexpected reply %v", reply)
	}
	top, err := position(reply[0], reply[1])
	if err != nil || since.IsZero() {
		return nil, top, err
	}
	pubs, err := entries(channel, top.Epoch, reply[2])
	if err != nil {
		return nil, top, err
	}
	recoverable := since.Epoch == top.Epoch && since.Offset <= top.Offset &&
		(since.Offset == top.Offset || len(pubs) > 0 && pubs[0].Pos.Offset == since.Offset+1)
	if !recoverable {
		return nil, top, hub.ErrUnrecoverable
	}
	return pubs, top, nil
}

// check refuses calls after Close and the empty channel name.
func (b *Broker) check(channel string) error {
	switch {
	case b.closed.Load():
		return hub.ErrClosed
	case channel == "":
		return errEmptyChannel
	}
	return nil
}

// fail wraps err of operation op, and notes that Redis is down when the
// error is neither one of Redis's answers nor a caller's cancel.
func (b *Broker) fail(op string, err error) error {
	if b.closed.Load() {
		return hub.ErrClosed
	}
	var answer redis.Error
	if !errors.As(err, &answer) && !errors.Is(err, context.Canceled) { // a caller that gave up says nothing of Redis
		b.up.Store(false)
		b.errors.Add(1)
	}
	return fmt.Errorf("redisbroker: %s: %w", op, err)
}

// key is the Redis key of one part of channel's state. The channel sits
// in a hash tag, so that a channel's keys share one Redis Cluster slot.
func (b *Broker) key(channel, part string) string {
	return b.opts.Prefix + ":{" + channel + "}:" + part
}

func (b *Broker) nowMs() int64 { return b.opts.Now().UnixMilli() }

// position reads an {epoch, offset} pair of a script's reply.
func position(epoch, offset any) (hub.Position, error) {
	e, ok1 := epoch.(string)
	s, ok2 := offset.(string)
	n, err := strconv.ParseUint(s, 10, 64)
	if !ok1 || !ok2 || err != nil {
		return hub.Position{}, fmt.Errorf("redisbroker: bad position %v:%v in a reply", epoch, offset)
	}
	return hub.Position{Epoch: e, Offset: n}, nil
}

// entries reads history stream entries, as XRANGE gives them, of channel
// in epoch.
func entries(channel, epoch string, reply any) ([]hub.Publication, error) {
	list, _ := reply.([]any)
	pubs := make([]hub.Publication, 0, len(list))
	for _, item := range list {
		p, err := entry(channel, epoch, item)
		if err != nil {
			return nil, err
		}
		pubs = append(pubs, p)
	}
	return pubs, nil
}

// entry reads one stream entry: {"<offset>-0", {"t", ms, "f", from, "d", data}}.
func entry(channel, epoch string, item any) (hub.Publication, error) {
	bad := fmt.Errorf("redisbroker: bad history entry %v", item)
	pair, _ := item.([]any)
	if len(pair) != 2 {
		return hub.Publication{}, bad
	}
	id, _ := pair[0].(string)
	fields, _ := pair[1].([]any)
	if len(fields) != 6 || len(id) < 3 {
		return hub.Publication{}, bad
	}
	offset, err1 := strconv.ParseUint(id[:len(id)-2], 10, 64)
	ms, err2 := strconv.ParseInt(fmt.Sprint(fields[1]), 10, 64)
	from, _ := fields[3].(string)
	data, _ := fields[5].(string)
	if err1 != nil || err2 != nil {
		return hub.Publication{}, bad
	}
	return hub.Publication{Channel: channel, Pos: hub.Position{Epoch: epoch, Offset: offset},
		Data: []byte(data), From: from, Time: time.UnixMilli(ms)}, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails
	return hex.EncodeToString(b)
}
