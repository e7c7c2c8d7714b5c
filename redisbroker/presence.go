package redisbroker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pulse-go/pulse/hub"
	"github.com/redis/go-redis/v9"
)

// localPresence is what this node has joined and not left, which it
// joins again when Redis forgot the node (restarted empty, or paused long
// enough for the others to sweep it) or failed, and the leaves Redis
// failed, which it makes again once Redis answers. Both are bounded by
// the memberships of the node's connections.
type localPresence struct {
	// ops is read-locked by each Join and Leave, from its note here to
	// Redis's answer, and locked by a refresh that makes them again: a
	// replayed leave never crosses a new join of the same member.
	ops sync.RWMutex

	mu      sync.Mutex // guards the fields below
	held    members
	leaving members
	dirty   bool // a Join or Leave failed since the last refresh made them again
}

// members are memberships by channel, then by member id and owner.
type members map[string]map[ownerKey]hub.Member

type ownerKey struct{ id, owner string }

func (p *localPresence) init() { p.held, p.leaving = make(members), make(members) }

// add notes a Join of m in channel.
func (p *localPresence) add(channel string, m hub.Member) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held.put(channel, m)
	p.leaving.drop(channel, m)
}

// remove notes a Leave of m in channel; failed says Redis did not take it.
func (p *localPresence) remove(channel string, m hub.Member, failed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held.drop(channel, m)
	if failed {
		p.leaving.put(channel, m)
		p.dirty = true
	} else {
		p.leaving.drop(channel, m)
	}
}

// retried notes a leave made again: done unless err.
func (p *localPresence) retried(channel string, m hub.Member, err error) {
	if err != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.leaving.drop(channel, m)
}

// snapshot returns copies of what is held and of the leaves to make again,
// and whether a Join or Leave failed since the last clean.
func (p *localPresence) snapshot() (held, leaving members, dirty bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held.clone(), p.leaving.clone(), p.dirty
}

func (p *localPresence) setDirty() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dirty = true
}

// clean notes that everything was made again. ops is locked: no Join or
// Leave can have failed since the snapshot.
func (p *localPresence) clean() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dirty = false
}

func (ms members) put(channel string, m hub.Member) {
	if ms[channel] == nil {
		ms[channel] = make(map[ownerKey]hub.Member)
	}
	ms[channel][ownerKey{m.ID, m.Owner}] = m
}

// drop removes m.Owner's membership of m.ID, or every one of m.ID if m.Owner is "".
func (ms members) drop(channel string, m hub.Member) {
	for k := range ms[channel] {
		if k.id == m.ID && (m.Owner == "" || k.owner == m.Owner) {
			delete(ms[channel], k)
		}
	}
	if len(ms[channel]) == 0 {
		delete(ms, channel)
	}
}

func (ms members) clone() members {
	c := make(members, len(ms))
	for channel, byOwner := range ms {
		for _, m := range byOwner {
			c.put(channel, m)
		}
	}
	return c
}

// memberDesc is a member as Redis keeps it and PUB/SUB carries it.
type memberDesc struct {
	ID     string          `json:"id"`
	User   string          `json:"user,omitempty"`
	Client string          `json:"client,omitempty"`
	Info   json.RawMessage `json:"info,omitempty"`
}

func encodeMember(m hub.Member) (string, error) {
	b, err := json.Marshal(memberDesc{ID: m.ID, User: m.User, Client: m.Client, Info: m.Info})
	return string(b), err
}

func decodeMember(s string) (hub.Member, error) {
	var d memberDesc
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		return hub.Member{}, fmt.Errorf("bad member %q: %w", s, err)
	}
	return hub.Member{ID: d.ID, User: d.User, Client: d.Client, Info: d.Info}, nil
}

// Join implements hub.PresenceBroker.
func (b *Broker) Join(ctx context.Context, channel string, m hub.Member) error {
	if err := b.check(channel); err != nil {
		return err
	}
	b.presences.ops.RLock()
	defer b.presences.ops.RUnlock()
	b.presences.add(channel, m) // even if Redis fails: the node joins it again once Redis answers
	err := b.join(ctx, channel, m)
	if err != nil {
		b.presences.setDirty()
	}
	return err
}

func (b *Broker) join(ctx context.Context, channel string, m hub.Member) error {
	desc, err := encodeMember(m)
	if err != nil {
		return fmt.Errorf("redisbroker: join: %w", err)
	}
	keys := []string{b.key(channel, "members"), b.key(channel, "owners:"+m.ID), b.nodeKey("channels")}
	err = scriptJoin.Run(ctx, b.rdb, keys, m.ID, m.Owner, b.node, desc, b.key(channel, "events"), channel).Err()
	if err != nil {
		return b.fail("join", err)
	}
	return nil
}

// Leave implements hub.PresenceBroker.
func (b *Broker) Leave(ctx context.Context, channel string, m hub.Member) error {
	if err := b.check(channel); err != nil {
		return err
	}
	b.presences.ops.RLock()
	defer b.presences.ops.RUnlock()
	err := b.leave(ctx, channel, m)
	b.presences.remove(channel, m, err != nil) // a failed leave is made again once Redis answers
	return err
}

func (b *Broker) leave(ctx context.Context, channel string, m hub.Member) error {
	keys := []string{b.key(channel, "members"), b.key(channel, "owners:"+m.ID)}
	if err := scriptLeave.Run(ctx, b.rdb, keys, m.ID, m.Owner, b.key(channel, "events")).Err(); err != nil {
		return b.fail("leave", err)
	}
	return nil
}

// Members implements hub.PresenceBroker.
func (b *Broker) Members(ctx context.Context, channel string) ([]hub.Member, error) {
	if err := b.check(channel); err != nil {
		return nil, err
	}
	descs, err := b.rdb.HVals(ctx, b.key(channel, "members")).Result()
	if err != nil {
		return nil, b.fail("members", err)
	}
	members := make([]hub.Member, 0, len(descs))
	for _, d := range descs {
		m, err := decodeMember(d)
		if err != nil {
			return nil, fmt.Errorf("redisbroker: members: %w", err)
		}
		members = append(members, m)
	}
	return members, nil
}

// nodeKey is the Redis key of one part of this node's state.
func (b *Broker) nodeKey(part string) string {
	k := b.opts.Prefix + ":node:" + b.node
	if part != "" {
		k += ":" + part
	}
	return k
}

func (b *Broker) nodesKey() string { return b.opts.Prefix + ":nodes" }

// register makes this node known and alive.
func (b *Broker) register(ctx context.Context) error {
	if err := b.rdb.SAdd(ctx, b.nodesKey(), b.node).Err(); err != nil {
		return err
	}
	return b.rdb.Set(ctx, b.nodeKey(""), "1", b.opts.NodeTimeout).Err()
}

// keepalive refreshes the node's keepalive key and sweeps dead nodes every
// NodeTimeout/3 until ctx ends. After a failure it sweeps nobody for one
// NodeTimeout: when Redis was paused or cut off, every node's key may have
// expired meanwhile, and the others need one period to refresh theirs.
func (b *Broker) keepalive(ctx context.Context) {
	t := time.NewTicker(b.opts.NodeTimeout / 3)
	defer t.Stop()
	var sweepAfter time.Time // no sweep before: the others may not have refreshed since Redis came back
	failed := false          // the last round failed
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		opCtx, cancel := context.WithTimeout(ctx, min(opTimeout, b.opts.NodeTimeout/3))
		err := b.refresh(opCtx, failed)
		if err == nil && !time.Now().Before(sweepAfter) {
			err = b.sweep(opCtx)
		}
		cancel()
		failed = err != nil
		if err != nil && ctx.Err() == nil {
			sweepAfter = time.Now().Add(b.opts.NodeTimeout)
			b.up.Store(false)
			b.opts.Logger.Warn("redisbroker: keepalive", "err", err)
		}
	}
}

// refresh renews the keepalive key. When Redis had forgotten it, after a
// keepalive failure (rejoin), or after a Join or Leave failed, the node
// registers again if need be, makes again the leaves that failed and joins
// again what it holds.
func (b *Broker) refresh(ctx context.Context, rejoin bool) error {
	err := b.rdb.SetArgs(ctx, b.nodeKey(""), "1", redis.SetArgs{TTL: b.opts.NodeTimeout, Get: true}).Err()
	forgotten := errors.Is(err, redis.Nil)
	if err != nil && !forgotten {
		return err
	}
	if forgotten {
		b.opts.Logger.Warn("redisbroker: this node was forgotten by Redis; joining its members again", "node", b.node)
		if err := b.register(ctx); err != nil {
			return err
		}
	}
	b.presences.ops.Lock()
	defer b.presences.ops.Unlock()
	held, leaving, dirty := b.presences.snapshot()
	if !forgotten && !rejoin && !dirty {
		return nil
	}
	if err := b.replay(ctx, held, leaving); err != nil {
		return err
	}
	b.presences.clean()
	return nil
}

// replay makes again the leaves that failed, then the joins of what the
// node holds. presences.ops is locked.
func (b *Broker) replay(ctx context.Context, held, leaving members) error {
	for channel, byOwner := range leaving {
		for _, m := range byOwner {
			err := b.leave(ctx, channel, m)
			b.presences.retried(channel, m, err)
			if err != nil {
				return err
			}
		}
	}
	for channel, byOwner := range held {
		for _, m := range byOwner {
			if err := b.join(ctx, channel, m); err != nil {
				return err
			}
		}
	}
	return nil
}

// sweep removes the presence of every other node whose keepalive expired.
func (b *Broker) sweep(ctx context.Context) error {
	nodes, err := b.rdb.SMembers(ctx, b.nodesKey()).Result()
	if err != nil {
		return err
	}
	for _, node := range nodes {
		if node != b.node {
			err = errors.Join(err, b.sweepNode(ctx, node))
		}
	}
	return err
}

func (b *Broker) sweepNode(ctx context.Context, node string) error {
	base := b.opts.Prefix + ":node:" + node
	keys := []string{base, base + ":channels", b.nodesKey()}
	return scriptSweep.Run(ctx, b.rdb, keys, node, b.opts.Prefix).Err()
}

// sweepSelf removes this node's presence, as Close does.
func (b *Broker) sweepSelf(ctx context.Context) {
	if err := b.rdb.Del(ctx, b.nodeKey("")).Err(); err != nil {
		return
	}
	b.sweepNode(ctx, b.node)
}
