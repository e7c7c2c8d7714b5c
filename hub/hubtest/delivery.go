package hubtest

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pulse-go/pulse/hub"
)

// testIdempotencyDuplicate: a second publish with the same key appends and
// delivers nothing, and returns the first one's position.
func testIdempotencyDuplicate(e *env) {
	r := e.subscribe("i")
	first := e.publishKey("i", `{"v":1}`, "k")
	second := e.publishKey("i", `{"v":2}`, "k")
	if first.Duplicate || !second.Duplicate || second.Pos != first.Pos {
		e.t.Errorf("results %+v then %+v; want the second a Duplicate at the first's position", first, second)
	}
	want := []hub.Publication{{Channel: "i", Pos: first.Pos, Data: []byte(`{"v":1}`)}}
	e.checkPubs("received", publications(e.t, e.barrier("i", r)[0]), want)
	pubs, _, err := e.history("i", hub.Position{Epoch: first.Pos.Epoch})
	if err != nil {
		e.t.Fatalf("History: %v", err)
	}
	e.checkPubs("History", pubs[:min(len(pubs), 1)], want)
}

// testIdempotencyWindow: a key is remembered for DedupWindow after its
// first publish, then publishes again.
func testIdempotencyWindow(e *env) {
	first := e.publishKey("i", `{"v":1}`, "k")
	e.clock.Advance(e.cfg.DedupWindow - time.Second)
	if res := e.publishKey("i", `{"v":2}`, "k"); !res.Duplicate || res.Pos != first.Pos {
		e.t.Errorf("within the window: %+v, want a Duplicate at %v", res, first.Pos)
	}
	e.clock.Advance(2 * time.Second)
	again := e.publishKey("i", `{"v":3}`, "k")
	if again.Duplicate || again.Pos != (hub.Position{Epoch: first.Pos.Epoch, Offset: first.Pos.Offset + 1}) {
		e.t.Errorf("after the window: %+v, want a new publication right after %v", again, first.Pos)
	}
	if res := e.publishKey("i", `{"v":4}`, "k"); !res.Duplicate || res.Pos != again.Pos {
		e.t.Errorf("key reused within its new window: %+v, want a Duplicate at %v", res, again.Pos)
	}
}

// testIdempotencyPerChannel: keys of different channels are independent,
// and different keys of one channel too.
func testIdempotencyPerChannel(e *env) {
	a, b := e.publishKey("a", `{"v":1}`, "k"), e.publishKey("b", `{"v":1}`, "k")
	other := e.publishKey("a", `{"v":1}`, "k2")
	if a.Duplicate || b.Duplicate || other.Duplicate || other.Pos.Offset != a.Pos.Offset+1 {
		e.t.Errorf("results %+v, %+v, %+v; want three publications", a, b, other)
	}
}

// testIdempotencyNoKey: publishes without a key are never duplicates, even
// with the same data.
func testIdempotencyNoKey(e *env) {
	first, second := e.publishKey("i", `{"v":1}`, ""), e.publishKey("i", `{"v":1}`, "")
	if first.Duplicate || second.Duplicate || second.Pos.Offset != first.Pos.Offset+1 {
		e.t.Errorf("results %+v, %+v; want two publications", first, second)
	}
}

// testIdempotencyKeyTooLong: a key of hub.MaxKeyLength bytes is taken; a
// longer one is refused with hub.ErrKeyTooLong and nothing is published.
func testIdempotencyKeyTooLong(e *env) {
	longest := strings.Repeat("k", hub.MaxKeyLength)
	first := e.publishKey("i", `{"v":1}`, longest)
	_, err := e.b.Publish(e.ctx, "i", []byte(`{"v":2}`), hub.PublishOptions{IdempotencyKey: longest + "k"})
	if !errors.Is(err, hub.ErrKeyTooLong) {
		e.t.Errorf("Publish with a key of %d bytes: %v, want hub.ErrKeyTooLong", hub.MaxKeyLength+1, err)
	}
	if _, top, _ := e.history("i", hub.Position{}); top != first.Pos {
		e.t.Errorf("top %v after the refused publish, want %v", top, first.Pos)
	}
}

// testUnsubscribe: once unsubscribe returns, nothing more is delivered;
// calling it again does nothing.
func testUnsubscribe(e *env) {
	gone, stays := e.subscribe("u"), e.subscribe("u")
	want := e.publishN("u", 1)
	e.checkPubs("before unsubscribe", gone.waitPubs(e.t, 1), want)
	gone.unsubscribe()
	e.barrier("u", stays)
	e.checkPubs("after unsubscribe", publications(e.t, gone.snapshot()), want)
	gone.unsubscribe()
}

// testUnsubscribeUnderLoad: while publishers run, unsubscribe returns
// only once deliver is not running, and deliver is never called after.
func testUnsubscribeUnderLoad(e *env) {
	const publishers, rounds = 4, 100
	witness := e.subscribe("l")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range publishers {
		wg.Go(func() { publishUntil(e, "l", stop) })
	}
	defer wg.Wait()
	defer close(stop)
	var probes []*unsubscribeProbe
	for range rounds {
		probes = append(probes, probeUnsubscribe(e, "l"))
	}
	e.barrier("l", witness)
	for i, p := range probes {
		if n := p.violations.Load(); n > 0 {
			e.t.Errorf("round %d: deliver was running or called %d times after unsubscribe returned", i, n)
		}
	}
}

// unsubscribeProbe is a subscription that counts the deliveries that run
// after its unsubscribe returned.
type unsubscribeProbe struct {
	running    atomic.Int32
	done       atomic.Bool // unsubscribe returned
	violations atomic.Int64
	received   chan struct{} // holds a token once something was delivered
}

func (p *unsubscribeProbe) deliver(hub.Event) {
	p.running.Add(1)
	defer p.running.Add(-1)
	if p.done.Load() {
		p.violations.Add(1)
	}
	select {
	case p.received <- struct{}{}:
	default:
	}
	runtime.Gosched() // widen the window in which unsubscribe may wrongly return
}

// probeUnsubscribe subscribes a probe to channel, waits for a delivery,
// and unsubscribes it.
func probeUnsubscribe(e *env, channel string) *unsubscribeProbe {
	p := &unsubscribeProbe{received: make(chan struct{}, 1)}
	unsubscribe, err := e.b.Subscribe(context.Background(), channel, p.deliver)
	if err != nil {
		e.t.Fatalf("Subscribe: %v", err)
	}
	e.t.Cleanup(unsubscribe) // if the wait fails; a second call does nothing
	select {
	case <-p.received:
	case <-time.After(waitTimeout):
		e.t.Fatalf("waited %v for a delivery", waitTimeout)
	}
	unsubscribe()
	if p.running.Load() != 0 {
		p.violations.Add(1)
	}
	p.done.Store(true)
	return p
}

func publishUntil(e *env, channel string, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		if _, err := e.b.Publish(e.ctx, channel, []byte(`{"load":true}`), hub.PublishOptions{}); err != nil {
			e.t.Errorf("Publish: %v", err)
			return
		}
	}
}

// testEmptyChannelName: the empty channel name is refused.
func testEmptyChannelName(e *env) {
	if _, err := e.b.Publish(e.ctx, "", []byte(`{}`), hub.PublishOptions{}); err == nil {
		e.t.Error("Publish to the empty channel name succeeded")
	}
	if _, _, err := e.b.History(e.ctx, "", hub.Position{}); err == nil {
		e.t.Error("History of the empty channel name succeeded")
	}
	if unsubscribe, err := e.b.Subscribe(context.Background(), "", func(hub.Event) {}); err == nil {
		unsubscribe()
		e.t.Error("Subscribe to the empty channel name succeeded")
	}
}

// testClose: after Close, every method returns hub.ErrClosed; a second
// Close and an unsubscribe from before are harmless.
func testClose(e *env) {
	r := e.subscribe("x")
	e.publishN("x", 1)
	if err := e.b.Close(); err != nil {
		e.t.Fatalf("Close: %v", err)
	}
	if _, err := e.b.Publish(e.ctx, "x", []byte(`{}`), hub.PublishOptions{}); !errors.Is(err, hub.ErrClosed) {
		e.t.Errorf("Publish after Close: %v, want ErrClosed", err)
	}
	if _, _, err := e.b.History(e.ctx, "x", hub.Position{}); !errors.Is(err, hub.ErrClosed) {
		e.t.Errorf("History after Close: %v, want ErrClosed", err)
	}
	if _, err := e.b.Subscribe(context.Background(), "x", func(hub.Event) {}); !errors.Is(err, hub.ErrClosed) {
		e.t.Errorf("Subscribe after Close: %v, want ErrClosed", err)
	}
	if err := e.b.Close(); err != nil && !errors.Is(err, hub.ErrClosed) {
		e.t.Errorf("second Close: %v, want nil or ErrClosed", err)
	}
	r.unsubscribe()
}
