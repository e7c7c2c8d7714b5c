package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pulse-go/pulse/client"
	"github.com/pulse-go/pulse/redisbroker/redistest"
)

// twoNodes starts a redis-server and two nodes sharing it.
func twoNodes(t *testing.T) (*redistest.Server, *node, *node) {
	t.Helper()
	redis := redistest.Start(t)
	return redis, startNode(t, "a", redis.URL()), startNode(t, "b", redis.URL())
}

// TestCrossNodeDelivery: what a client publishes through node B reaches a
// subscriber on node A, all of it, in order.
func TestCrossNodeDelivery(t *testing.T) {
	_, a, b := twoNodes(t)
	const n = 200
	rec := newRecorder()
	sub, _ := runClient(t, a.url(), rec.options("sub"))
	subscribe(t, sub, "room", nil)
	pub, _ := runClient(t, b.url(), nil)
	for i := range n {
		publish(t, pub, "room", i, "")
	}
	rec.waitFor(t, fmt.Sprintf("%d messages", n), func(r *recorder) bool { return len(r.msgs) >= n })
	checkSequence(t, rec.messages(), n)
}

// TestIdempotencyAcrossNodes: the same idempotency key published through
// both nodes is applied once.
func TestIdempotencyAcrossNodes(t *testing.T) {
	_, a, b := twoNodes(t)
	rec := newRecorder()
	sub, _ := runClient(t, a.url(), rec.options("sub"))
	subscribe(t, sub, "orders", nil)
	ca, _ := runClient(t, a.url(), nil)
	cb, _ := runClient(t, b.url(), nil)
	first := publish(t, ca, "orders", 0, "order-42")
	second := publish(t, cb, "orders", 0, "order-42")
	if first.Duplicate || !second.Duplicate || second.Pos != first.Pos {
		t.Fatalf("through A %+v, through B %+v; want B's a Duplicate at A's position", first, second)
	}
	publish(t, cb, "orders", 1, "order-43") // a marker: after it, nothing more may come
	rec.waitFor(t, "the marker", func(r *recorder) bool { return len(r.msgs) >= 2 })
	checkSequence(t, rec.messages(), 2)
}

// TestFailover: the node a subscriber is on is killed (SIGKILL) while 1,000
// publications go through the other node; the subscriber reconnects to the
// surviving node and resumes with all of them, in order, none twice, its
// session continued with the same member id.
func TestFailover(t *testing.T) {
	_, a, b := twoNodes(t)
	const n = 1000
	rec := newRecorder()
	opts := rec.options("sub")
	opts.Dial = balancer(a, b) // A while it lives, then B
	sub, _ := runClient(t, "ws://balancer/ws", opts)
	subscribe(t, sub, "feed", nil)
	pub, _ := runClient(t, b.url(), nil)
	var killedAt int
	member := sub.Member()
	for i := range n {
		publish(t, pub, "feed", i, "")
		if i == n/4 {
			rec.waitFor(t, "some live messages", func(r *recorder) bool { return len(r.msgs) > 0 })
			a.kill()
			killedAt = len(rec.messages())
		}
	}
	rec.waitFor(t, fmt.Sprintf("%d messages", n), func(r *recorder) bool { return len(r.msgs) >= n })
	msgs := rec.messages()
	checkSequence(t, msgs, n)
	replayed := 0
	for _, m := range msgs {
		if m.Replayed {
			replayed++
		}
	}
	t.Logf("node A killed after %d messages; %d replayed from history on node B; generation %d", killedAt, replayed, sub.Generation())
	if sub.Generation() < 2 {
		t.Errorf("generation %d: the subscriber never reconnected", sub.Generation())
	}
	if sub.Member() != member || member == "" {
		t.Errorf("member id %q on node B, %q on node A: want the session continued", sub.Member(), member)
	}
}

// TestPresenceNodeDeath: the members of a node killed with SIGKILL leave
// the presence of the other node within Interval + Timeout + 1 s, with a
// leave event.
func TestPresenceNodeDeath(t *testing.T) {
	_, a, b := twoNodes(t)
	watch := newRecorder()
	watcher, _ := runClient(t, b.url(), watch.options("watcher"))
	subscribe(t, watcher, "lobby", &client.SubscribeOptions{Presence: true})

	const members = 3
	var ids []string
	for i := range members {
		c, stop := runClient(t, a.url(), &client.Options{Name: fmt.Sprintf("m%d", i), Dial: balancer(a)})
		subscribe(t, c, "lobby", &client.SubscribeOptions{Presence: true})
		ids = append(ids, c.Member())
		defer stop() // they try node A again and again once it is dead
	}
	watch.waitFor(t, "the members' joins", func(r *recorder) bool { return countPresence(r, ids, true) == members })

	a.kill()
	killed := time.Now()
	watch.waitFor(t, "the members' leaves", func(r *recorder) bool { return countPresence(r, ids, false) == members })
	var last time.Duration
	watch.mu.Lock()
	for _, e := range watch.presence {
		if !e.joined {
			last = max(last, e.at.Sub(killed))
		}
	}
	watch.mu.Unlock()
	t.Logf("the %d members of the killed node left within %v of the kill (bound %v)", members, last.Round(time.Millisecond), bound)
	if last > bound {
		t.Errorf("last leave %v after the kill, want within %v", last, bound)
	}
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	left, err := watcher.Subscribe(ctx, "lobby-check", nil) // the node still answers
	if err != nil {
		t.Fatalf("node B after the kill: %v (%+v)", err, left)
	}
}

// countPresence counts the events of r about ids that are joins (joined)
// or leaves.
func countPresence(r *recorder, ids []string, joined bool) int {
	n := 0
	for _, e := range r.presence {
		for _, id := range ids {
			if e.member == id && e.joined == joined {
				n++
			}
		}
	}
	return n
}

// TestShardedNodes: two nodes spreading channels over two redis-servers
// (--broker URL1,URL2) deliver every channel across nodes, in order.
func TestShardedNodes(t *testing.T) {
	urls := redistest.Start(t).URL() + "," + redistest.Start(t).URL()
	a, b := startNode(t, "a", urls), startNode(t, "b", urls)
	channels := []string{"s1", "s2", "s3", "s4"}
	const n = 20
	recs := make(map[string]*recorder)
	for _, channel := range channels {
		recs[channel] = newRecorder()
		sub, _ := runClient(t, a.url(), recs[channel].options("sub"))
		subscribe(t, sub, channel, nil)
	}
	pub, _ := runClient(t, b.url(), nil)
	for i := range n {
		for _, channel := range channels {
			publish(t, pub, channel, i, "")
		}
	}
	for _, channel := range channels {
		recs[channel].waitFor(t, fmt.Sprintf("%d messages of %s", n, channel), func(r *recorder) bool { return len(r.msgs) >= n })
		checkSequence(t, recs[channel].messages(), n)
	}
}
