// Package redisbroker is the hub.Broker of several pulse nodes: channels,
// their history, idempotency keys and presence live in Redis, and each
// node holds one Redis subscription per channel it has subscribers of.
//
// Use New with a Redis URL (redis://, rediss:// for TLS, a password in the
// URL), or NewShards with several to spread channels by a stable hash of
// their names; hand it to hub.Options and Close it last. Both pass
// hubtest.TestBroker, presence included, against real redis-server.
//
// # Design
//
// Every change is one Lua script of scripts/, named after what it does and
// run atomically: publish.lua assigns the next offset, appends to the
// channel's history stream (bounded by size and age), records the
// idempotency key and PUBLISHes to the nodes. A channel's epoch lives in
// Redis beside its top; a channel whose meta is gone (Redis restarted
// empty, keys expired or evicted) starts a new epoch, so old positions are
// unrecoverable, never reused. PUB/SUB loses messages across a reconnect:
// each node keeps the last position it delivered per channel, and a
// publication past the next offset, or a resubscription, makes it read the
// gap from history; a gap history lost is delivered as hub.EventLost. Presence
// owners are tagged with their node, whose keepalive key expires after
// NodeTimeout unless refreshed; the other nodes then sweep its members out
// (node_sweep.lua), with leave events.
//
// The client is github.com/redis/go-redis/v9: the most used one, with a
// PubSub that resubscribes after a reconnect, scripts by EVALSHA with a
// fallback to EVAL, and redis:// and rediss:// URLs. rueidis is faster
// under pipelining, but its client-side caching and auto-pipelining are
// not what this broker needs first.
//
// # Concurrency
//
// All methods may be called concurrently. New starts three goroutines (the
// subscription reader, the node keepalive and the publish pipeliner, which
// sends the Publish calls waiting at once in one pipeline); Close stops
// and joins them.
package redisbroker
