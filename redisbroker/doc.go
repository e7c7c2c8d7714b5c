// Package redisbroker is the hub.Broker of several pulse nodes: channels,
// their history, idempotency keys and presence live in Redis, and every
// node that has subscribers of a channel holds one Redis subscription to
// it, shared by them.
//
// Use New with a Redis URL (redis://, rediss:// for TLS, a password in the
// URL) and hand the Broker to hub.Options; Close it last. NewShards spreads
// channels over several Redis servers by a stable hash of their names.
// Both pass hubtest.TestBroker, presence included, against real
// redis-server processes.
//
// # Design
//
// Every change is one Lua script, a file of scripts/ named after what it
// does, run atomically by Redis: publish.lua assigns the next offset,
// appends to the channel's history stream (bounded by size and age),
// records the idempotency key and PUBLISHes the publication to the nodes.
// Each channel's epoch lives in Redis beside its top offset; a channel
// whose meta is gone (Redis restarted empty, keys expired or evicted)
// starts a new epoch, so old positions are unrecoverable, never reused.
//
// Redis PUB/SUB loses messages across a reconnect. Each node keeps the
// last position it delivered per channel: a publication past the next
// offset, or a reconnect, makes it read the gap from the history stream.
// A gap that history no longer holds is reported to Options.OnLost.
//
// Presence owners are tagged with the node that holds them. Each node
// refreshes a keepalive key every NodeTimeout/3; a node whose key expired
// is swept by the others (node_sweep.lua): its members leave, with leave
// events, within NodeTimeout plus one sweep period.
//
// The client is github.com/redis/go-redis/v9: the most used Go client,
// with a PubSub that resubscribes after a reconnect, Lua scripts by
// EVALSHA with a fallback to EVAL, and URL parsing for redis:// and
// rediss://. rueidis is faster under pipelining, but its client-side
// caching and auto-pipelining are not what this broker needs first.
//
// # Concurrency
//
// All methods may be called concurrently. New starts two goroutines (the
// subscription reader and the node keepalive); Close stops and joins them.
package redisbroker
