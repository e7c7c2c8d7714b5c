package redisbroker

import (
	"context"
	"errors"
	"hash/fnv"

	"github.com/pulse-go/pulse/hub"
)

// Shards is the hub.PresenceBroker on several Redis servers: each channel
// lives on one of them, chosen by a stable hash of its name, so that one
// Redis is not the ceiling. Every node must list the same URLs in the
// same order. Each shard is a Broker of its own, with its own PUB/SUB
// connection and node keepalive.
type Shards struct {
	shards []*Broker // set by NewShards, never changes
}

var _ hub.PresenceBroker = (*Shards)(nil)

// NewShards connects to every Redis of urls, as New does with one. If one
// cannot be reached, the others are closed and the error returned.
func NewShards(ctx context.Context, urls []string, opts *Options) (*Shards, error) {
	if len(urls) == 0 {
		return nil, errors.New("redisbroker: no Redis URL")
	}
	s := &Shards{}
	for _, url := range urls {
		b, err := New(ctx, url, opts)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.shards = append(s.shards, b)
	}
	return s, nil
}

// shard returns the Broker of channel: FNV-1a of its name, modulo the
// number of shards.
func (s *Shards) shard(channel string) *Broker {
	h := fnv.New64a()
	h.Write([]byte(channel))
	return s.shards[h.Sum64()%uint64(len(s.shards))]
}

// Publish implements hub.Broker.
func (s *Shards) Publish(ctx context.Context, channel string, data []byte, opts hub.PublishOptions) (hub.PublishResult, error) {
	return s.shard(channel).Publish(ctx, channel, data, opts)
}

// History implements hub.Broker.
func (s *Shards) History(ctx context.Context, channel string, since hub.Position) ([]hub.Publication, hub.Position, error) {
	return s.shard(channel).History(ctx, channel, since)
}

// Subscribe implements hub.Broker.
func (s *Shards) Subscribe(ctx context.Context, channel string, deliver func(hub.Event)) (func(), error) {
	return s.shard(channel).Subscribe(ctx, channel, deliver)
}

// Join implements hub.PresenceBroker.
func (s *Shards) Join(ctx context.Context, channel string, m hub.Member) error {
	return s.shard(channel).Join(ctx, channel, m)
}

// Leave implements hub.PresenceBroker.
func (s *Shards) Leave(ctx context.Context, channel string, m hub.Member) error {
	return s.shard(channel).Leave(ctx, channel, m)
}

// Members implements hub.PresenceBroker.
func (s *Shards) Members(ctx context.Context, channel string) ([]hub.Member, error) {
	return s.shard(channel).Members(ctx, channel)
}

// Close closes every shard.
func (s *Shards) Close() error {
	var err error
	for _, b := range s.shards {
		err = errors.Join(err, b.Close())
	}
	return err
}

// Up reports whether every shard is up.
func (s *Shards) Up() bool {
	for _, b := range s.shards {
		if !b.Up() {
			return false
		}
	}
	return true
}

// Errors counts the calls of every shard that failed because its Redis
// did not answer.
func (s *Shards) Errors() int64 {
	var n int64
	for _, b := range s.shards {
		n += b.Errors()
	}
	return n
}
