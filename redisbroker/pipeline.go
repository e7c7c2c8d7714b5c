package redisbroker

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// Concurrent publishes are pipelined: a Publish made while no other is in
// progress runs its script itself; one made while others are hands its
// script call to the node's pipeliner goroutine, which sends every call
// waiting at that moment (up to maxBatch) to Redis in one pipeline, one
// round trip, and hands each caller its reply. So a lone publisher pays
// no hand-off, and under load the calls that come while a pipeline is out
// go together in the next one.
// Each call is still one script, atomic on its own; a pipeline only
// saves round trips and system calls, it is no transaction.

// maxBatch bounds the publications of one pipeline.
const maxBatch = 256

// publishCall is one Publish's script call, and then its reply. The caller
// owns it until it is sent to the pipeliner, which owns it until it closes
// done; then the caller again.
type publishCall struct {
	ctx   context.Context // the caller's: a call it gave up on is not sent
	keys  []string
	args  []any
	reply []any
	err   error
	done  chan struct{}
}

// runPublish makes call, alone if no other publish is in progress, else in
// the next pipeline, and waits for its reply, or for ctx or Close.
func (b *Broker) runPublish(ctx context.Context, call *publishCall) ([]any, error) {
	defer b.publishing.Add(-1)
	if b.publishing.Add(1) == 1 {
		return scriptPublish.Run(ctx, b.rdb, call.keys, call.args...).Slice()
	}
	call.ctx, call.done = ctx, make(chan struct{})
	select {
	case b.publishes <- call:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-b.stopped:
		return nil, context.Canceled
	}
	select {
	case <-call.done:
		return call.reply, call.err
	case <-ctx.Done(): // the publication may still be made, as with any call cut short
		return nil, ctx.Err()
	case <-b.stopped:
		return nil, context.Canceled
	}
}

// pipeline is the node's pipeliner: it sends the waiting publishes in
// batches until ctx ends.
func (b *Broker) pipeline(ctx context.Context) {
	batch := make([]*publishCall, 0, maxBatch)
	for {
		select {
		case <-ctx.Done():
			return
		case call := <-b.publishes:
			batch = append(batch[:0], call)
		}
		batch = b.takeWaiting(batch)
		b.sendBatch(ctx, batch)
		clear(batch) // the callers own them again
	}
}

// takeWaiting adds to batch the publishes waiting now, up to maxBatch.
func (b *Broker) takeWaiting(batch []*publishCall) []*publishCall {
	for len(batch) < maxBatch {
		select {
		case call := <-b.publishes:
			batch = append(batch, call)
		default:
			return batch
		}
	}
	return batch
}

// sendBatch makes the calls of batch in one pipeline, bounded by
// opTimeout, and hands each its reply. A call whose script Redis does not
// know (it restarted empty) is made again alone, by EVAL.
func (b *Broker) sendBatch(ctx context.Context, batch []*publishCall) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	pipe := b.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(batch))
	for i, call := range batch {
		if call.ctx.Err() == nil {
			cmds[i] = scriptPublish.EvalSha(ctx, pipe, call.keys, call.args...)
		}
	}
	if pipe.Len() > 0 {
		pipe.Exec(ctx) // each command holds its own error
	}
	for i, call := range batch {
		switch {
		case cmds[i] == nil:
			call.err = call.ctx.Err()
		case redis.HasErrorPrefix(cmds[i].Err(), "NOSCRIPT"):
			call.reply, call.err = scriptPublish.Run(ctx, b.rdb, call.keys, call.args...).Slice()
		default:
			call.reply, call.err = cmds[i].Slice()
		}
		close(call.done)
	}
}
