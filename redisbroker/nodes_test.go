package redisbroker

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pulse-go/pulse/hub"
	"github.com/pulse-go/pulse/redisbroker/redistest"
	"github.com/redis/go-redis/v9"
)

// wait bounds the waits of these tests for what should happen well before.
const wait = 10 * time.Second

// events is a subscription that keeps what it receives.
type events struct {
	mu      sync.Mutex
	got     []hub.Event
	changed chan struct{} // holds a token when got grew since the last wait
}

func subscribeEvents(t *testing.T, b *Broker, channel string) *events {
	t.Helper()
	e := &events{changed: make(chan struct{}, 1)}
	unsubscribe, err := b.Subscribe(t.Context(), channel, func(ev hub.Event) {
		e.mu.Lock()
		e.got = append(e.got, ev)
		e.mu.Unlock()
		select {
		case e.changed <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", channel, err)
	}
	t.Cleanup(unsubscribe)
	return e
}

// waitFor waits until ok holds of the events received, and returns them.
func (e *events) waitFor(t *testing.T, what string, ok func([]hub.Event) bool) []hub.Event {
	t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		e.mu.Lock()
		got := slices.Clone(e.got)
		e.mu.Unlock()
		if ok(got) {
			return got
		}
		select {
		case <-e.changed:
		case <-deadline.C:
			t.Fatalf("waited %v for %s; received %d events", wait, what, len(got))
		}
	}
}

func atLeast(n int) func([]hub.Event) bool {
	return func(got []hub.Event) bool { return len(got) >= n }
}

// checkOffsets reports unless got are publications at the offsets from,
// from+1, ... of one epoch, each once.
func checkOffsets(t *testing.T, got []hub.Event, from uint64) {
	t.Helper()
	for i, ev := range got {
		p := ev.Publication
		if ev.Type != hub.EventPublication || p.Pos.Offset != from+uint64(i) || p.Pos.Epoch != got[0].Publication.Pos.Epoch {
			t.Fatalf("event %d is %+v, want the publication at offset %d of one epoch", i, ev, from+uint64(i))
		}
	}
}

func publishN(t *testing.T, b *Broker, channel string, n int) {
	t.Helper()
	for i := range n {
		if _, err := b.Publish(t.Context(), channel, fmt.Appendf(nil, `{"i":%d}`, i), hub.PublishOptions{}); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
}

// admin is a plain client of server, for commands the test gives Redis.
func admin(t *testing.T, server *redistest.Server) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: server.Addr(), Protocol: 2})
	t.Cleanup(func() { c.Close() })
	return c
}

// twoNodes returns two brokers sharing server under one prefix, as two
// pulse nodes do.
func twoNodes(t *testing.T, server *redistest.Server, opts Options) (*Broker, *Broker) {
	t.Helper()
	opts.Prefix = "test-" + randomHex(4)
	o1, o2 := opts, opts
	return newTestBroker(t, server, &o1), newTestBroker(t, server, &o2)
}

// TestCrossNode: what one node publishes reaches the subscriptions of the
// other, in order, presence events too.
func TestCrossNode(t *testing.T) {
	server := redistest.Start(t)
	b1, b2 := twoNodes(t, server, Options{})
	e := subscribeEvents(t, b1, "c")
	publishN(t, b2, "c", 100)
	checkOffsets(t, e.waitFor(t, "100 publications", atLeast(100)), 1)
	alice := hub.Member{ID: "s1", Client: "alice", Owner: "conn-1"}
	if err := b2.Join(t.Context(), "c", alice); err != nil {
		t.Fatal(err)
	}
	got := e.waitFor(t, "a join", atLeast(101))[100]
	if got.Type != hub.EventJoin || got.Member.ID != "s1" || got.Member.Client != "alice" {
		t.Errorf("received %+v, want alice's join", got)
	}
}

// TestGapFilledFromHistory: publications made while a node's PUB/SUB
// connection is cut (CLIENT KILL) reach its subscription from history, in
// order, none twice.
func TestGapFilledFromHistory(t *testing.T) {
	server := redistest.Start(t)
	lost := make(chan string, 16)
	b1, b2 := twoNodes(t, server, Options{OnLost: func(channel string) { lost <- channel }})
	e := subscribeEvents(t, b1, "g")
	total := 0
	for round := 0; b1.filled.Load() == 0; round++ {
		if round == 5 {
			t.Fatal("5 cuts of the PUB/SUB connection left no gap to fill")
		}
		if err := admin(t, server).ClientKillByFilter(t.Context(), "TYPE", "pubsub").Err(); err != nil {
			t.Fatalf("CLIENT KILL: %v", err)
		}
		publishN(t, b2, "g", 50)
		total += 50
		checkOffsets(t, e.waitFor(t, fmt.Sprintf("%d publications", total), atLeast(total)), 1)
	}
	publishN(t, b2, "g", 1)
	got := e.waitFor(t, "the last publication", atLeast(total+1))
	checkOffsets(t, got, 1)
	if len(got) != total+1 || len(lost) > 0 {
		t.Errorf("received %d publications, %d reported lost; want %d, none lost", len(got), len(lost), total+1)
	}
	t.Logf("%d of %d publications filled from history", b1.filled.Load(), total+1)
}

// TestGapLost: a gap that history no longer holds is reported to OnLost,
// and live publications go on.
func TestGapLost(t *testing.T) {
	server := redistest.Start(t)
	lost := make(chan string, 16)
	b1, b2 := twoNodes(t, server, Options{HistorySize: 4, OnLost: func(channel string) { lost <- channel }})
	e := subscribeEvents(t, b1, "g")
	for round := 0; len(lost) == 0; round++ {
		if round == 5 {
			t.Fatal("5 cuts of the PUB/SUB connection were never reported lost")
		}
		admin(t, server).ClientKillByFilter(t.Context(), "TYPE", "pubsub")
		publishN(t, b2, "g", 20)
		e.waitFor(t, "the last publication", func(got []hub.Event) bool {
			return len(got) > 0 && got[len(got)-1].Publication.Pos.Offset == uint64(20*(round+1))
		})
	}
	if channel := <-lost; channel != "g" {
		t.Errorf("OnLost(%q), want g", channel)
	}
}

// TestNodeDeath: the members of a node that stops without Close (its
// keepalive expires) leave the presence of the others within NodeTimeout
// plus one sweep period, with leave events.
func TestNodeDeath(t *testing.T) {
	server := redistest.Start(t)
	const timeout = 600 * time.Millisecond
	b1, b2 := twoNodes(t, server, Options{NodeTimeout: timeout})
	e := subscribeEvents(t, b2, "p")
	for i, owner := range []string{"conn-1", "conn-2"} {
		if err := b1.Join(t.Context(), "p", hub.Member{ID: fmt.Sprint("s", i), Owner: owner}); err != nil {
			t.Fatal(err)
		}
	}
	e.waitFor(t, "two joins", atLeast(2))
	crash(b1)
	crashed := time.Now()
	got := e.waitFor(t, "two leaves", atLeast(4))
	took := time.Since(crashed)
	for _, ev := range got[2:] {
		if ev.Type != hub.EventLeave {
			t.Errorf("received %+v, want leaves", ev)
		}
	}
	if members, err := b2.Members(t.Context(), "p"); err != nil || len(members) != 0 {
		t.Errorf("Members = %v, %v; want none", members, err)
	}
	t.Logf("members of the dead node left %v after it stopped (NodeTimeout %v)", took.Round(time.Millisecond), timeout)
	// NodeTimeout, one sweep period, and the 1 s of slack the liveness
	// bound gives (this machine is shared: the sweep may start late).
	if bound := timeout + timeout/3 + time.Second; took > bound {
		t.Errorf("members left after %v, want within %v", took, bound)
	}
}

// crash stops b as a killed process would: its goroutines end, nothing is
// cleaned up in Redis.
func crash(b *Broker) {
	b.closed.Store(true)
	b.cancel()
	b.ps.Close()
	b.done.Wait()
	b.rdb.Close()
}

// TestRedisRestarted: after Redis restarts empty, positions of the old
// epoch are unrecoverable, a node's live subscription reports the loss and
// goes on in the new epoch, and the node joins its members again.
func TestRedisRestarted(t *testing.T) {
	server := redistest.Start(t)
	lost := make(chan string, 16)
	b1, b2 := twoNodes(t, server, Options{NodeTimeout: 600 * time.Millisecond, OnLost: func(channel string) { lost <- channel }})
	e := subscribeEvents(t, b1, "r")
	alice := hub.Member{ID: "s1", Client: "alice", Owner: "conn-1"}
	if err := b1.Join(t.Context(), "r", alice); err != nil {
		t.Fatal(err)
	}
	publishN(t, b2, "r", 3)
	old := e.waitFor(t, "a join and 3 publications", atLeast(4))[3].Publication.Pos

	server.Restart()
	var res hub.PublishResult
	retry(t, "a publish after the restart", func() (err error) {
		res, err = b2.Publish(t.Context(), "r", []byte(`{"after":1}`), hub.PublishOptions{})
		return err
	})
	if res.Pos.Epoch == old.Epoch || res.Pos.Offset != 1 {
		t.Errorf("first publication after the restart at %v, want offset 1 of a new epoch (the old was %v)", res.Pos, old)
	}
	if _, _, err := b2.History(t.Context(), "r", old); err == nil {
		t.Errorf("History from %v of the lost epoch succeeded, want ErrUnrecoverable", old)
	}
	select {
	case <-lost:
	case <-time.After(wait):
		t.Error("the subscription's loss was never reported")
	}
	retry(t, "alice present again", func() error {
		members, err := b2.Members(t.Context(), "r")
		if err == nil && len(members) != 1 {
			err = fmt.Errorf("members %v", members)
		}
		return err
	})
}

// retry calls f until it succeeds, within wait, pausing between calls:
// Redis comes back on its own time.
func retry(t *testing.T, what string, f func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	for {
		err := f()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waited %v for %s: %v", wait, what, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestLeaveRetried: a Leave that Redis never received (its call ended
// before it was sent) is made again by the node's next keepalive, so the
// member does not stay present for as long as its node lives.
func TestLeaveRetried(t *testing.T) {
	server := redistest.Start(t)
	b1, b2 := twoNodes(t, server, Options{NodeTimeout: 600 * time.Millisecond})
	alice := hub.Member{ID: "s1", Client: "alice", Owner: "conn-1"}
	if err := b1.Join(t.Context(), "p", alice); err != nil {
		t.Fatal(err)
	}
	ended, cancel := context.WithCancel(t.Context())
	cancel()
	if err := b1.Leave(ended, "p", alice); err == nil {
		t.Fatal("Leave with an ended context succeeded")
	}
	if members, err := b2.Members(t.Context(), "p"); err != nil || len(members) != 1 {
		t.Fatalf("Members right after the failed Leave = %v, %v; want alice still there (the test needs a Leave Redis did not get)", members, err)
	}
	retry(t, "alice gone from the other node's presence", func() error {
		members, err := b2.Members(t.Context(), "p")
		if err == nil && len(members) != 0 {
			err = fmt.Errorf("members %v", members)
		}
		return err
	})
}
