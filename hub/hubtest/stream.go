package hubtest

import (
	"bytes"
	"fmt"
	"sync"
	"time"

	"github.com/pulse-go/pulse/hub"
)

// testConcurrentOffsets: concurrent publishers to one channel get the
// offsets 1..n of one epoch, each exactly once, and every subscription
// receives them all in offset order with the data published at each.
func testConcurrentOffsets(e *env) {
	const publishers, each = 8, 100
	recs := []*recorder{e.subscribe("c"), e.subscribe("c")}
	results := make([][]hub.Position, publishers)
	var wg sync.WaitGroup
	for g := range publishers {
		wg.Go(func() {
			for i := range each {
				res, err := e.b.Publish(e.ctx, "c", publisherData(g, i), hub.PublishOptions{})
				if err != nil {
					e.t.Errorf("publisher %d: Publish: %v", g, err)
					return
				}
				results[g] = append(results[g], res.Pos)
			}
		})
	}
	wg.Wait()
	if e.t.Failed() {
		return
	}
	want := concurrentWant(e, results)
	for i, r := range recs {
		e.checkPubs(fmt.Sprintf("subscription %d", i), r.waitPubs(e.t, len(want)), want)
	}
}

func publisherData(g, i int) []byte { return fmt.Appendf(nil, `{"g":%d,"i":%d}`, g, i) }

// concurrentWant checks the positions the publishers got and returns the
// publications they made, in offset order.
func concurrentWant(e *env, results [][]hub.Position) []hub.Publication {
	epoch := results[0][0].Epoch
	var want []hub.Publication
	for g, positions := range results {
		for i, pos := range positions {
			if pos.Epoch != epoch || pos.Offset == 0 || i > 0 && pos.Offset <= positions[i-1].Offset {
				e.t.Fatalf("publisher %d got %v after %v, in epoch %q", g, pos, positions[max(i-1, 0)], epoch)
			}
			for uint64(len(want)) < pos.Offset {
				want = append(want, hub.Publication{})
			}
			if !want[pos.Offset-1].Pos.IsZero() {
				e.t.Fatalf("offset %d given twice", pos.Offset)
			}
			want[pos.Offset-1] = hub.Publication{Channel: "c", Pos: pos, Data: publisherData(g, i)}
		}
	}
	for i, p := range want {
		if p.Pos.IsZero() {
			e.t.Fatalf("offset %d of %d given to no publish", i+1, len(want))
		}
	}
	return want
}

// testOrdering: a subscription receives publications in offset order, with
// their channel, data and time as published.
func testOrdering(e *env) {
	r := e.subscribe("o")
	var want []hub.Publication
	for range 20 {
		want = append(want, e.publishN("o", 1)...)
		e.clock.Advance(time.Second)
	}
	checkOffsets(e, want)
	e.checkPubs("received", r.waitPubs(e.t, len(want)), want)
}

// testSubscribeSeesOnlyLater: a subscription receives what is published
// after Subscribe returns, not before.
func testSubscribeSeesOnlyLater(e *env) {
	e.publishN("s", 2)
	r := e.subscribe("s")
	want := e.publishN("s", 1)
	before := e.barrier("s", r)[0]
	e.checkPubs("received", publications(e.t, before), want)
}

// testDataIsCopied: the broker keeps the bytes as given, not the caller's
// slice, which the caller may reuse.
func testDataIsCopied(e *env) {
	r := e.subscribe("d")
	data := []byte(`{"a":1}`)
	if _, err := e.b.Publish(e.ctx, "d", data, hub.PublishOptions{}); err != nil {
		e.t.Fatalf("Publish: %v", err)
	}
	copy(data, `{"b":2}`)
	if got := r.waitPubs(e.t, 1)[0].Data; !bytes.Equal(got, []byte(`{"a":1}`)) {
		e.t.Errorf("delivered %s, want the data as published, {\"a\":1}", got)
	}
	_, top, err := e.history("d", hub.Position{})
	if err != nil {
		e.t.Fatalf("History: %v", err)
	}
	pubs, _, err := e.history("d", hub.Position{Epoch: top.Epoch})
	if err != nil || len(pubs) != 1 || !bytes.Equal(pubs[0].Data, []byte(`{"a":1}`)) {
		e.t.Errorf("History = %s, %v; want the data as published, {\"a\":1}", describePubs(pubs), err)
	}
}

// testPublisherKept: the publisher named in PublishOptions.From reaches
// subscribers and stays in history; a publish without one has none.
func testPublisherKept(e *env) {
	r := e.subscribe("f")
	for _, from := range []string{"member-1", ""} {
		if _, err := e.b.Publish(e.ctx, "f", []byte(`1`), hub.PublishOptions{From: from}); err != nil {
			e.t.Fatalf("Publish: %v", err)
		}
	}
	got := r.waitPubs(e.t, 2)
	_, top, err := e.history("f", hub.Position{})
	if err != nil {
		e.t.Fatalf("History: %v", err)
	}
	pubs, _, err := e.history("f", hub.Position{Epoch: top.Epoch})
	if err != nil || len(pubs) != 2 {
		e.t.Fatalf("History = %s, %v; want both publications", describePubs(pubs), err)
	}
	for i, want := range []string{"member-1", ""} {
		if got[i].From != want || pubs[i].From != want {
			e.t.Errorf("publication %d from %q delivered, %q in history; want %q", i, got[i].From, pubs[i].From, want)
		}
	}
}

// testChannelsIndependent: each channel has its own offsets, and its
// events reach only its subscriptions.
func testChannelsIndependent(e *env) {
	ra, rb := e.subscribe("a"), e.subscribe("b")
	var wantA, wantB []hub.Publication
	for i := range 3 {
		wantA = append(wantA, e.publishN("a", 1)...)
		if i < 2 {
			wantB = append(wantB, e.publishN("b", 1)...)
		}
	}
	checkOffsets(e, wantA)
	checkOffsets(e, wantB)
	e.checkPubs("channel a received", publications(e.t, e.barrier("a", ra)[0]), wantA)
	e.checkPubs("channel b received", publications(e.t, e.barrier("b", rb)[0]), wantB)
	for name, r := range map[string]*recorder{"a": ra, "b": rb} {
		for _, p := range publications(e.t, r.snapshot()) {
			if p.Channel != name {
				e.t.Errorf("the subscription of %s received %s", name, describePub(p))
			}
		}
	}
}

// checkOffsets reports unless pubs are at the offsets 1, 2, ... of one epoch.
func checkOffsets(e *env, pubs []hub.Publication) {
	e.t.Helper()
	for i, p := range pubs {
		if p.Pos.Offset != uint64(i+1) || p.Pos.Epoch != pubs[0].Pos.Epoch || p.Pos.Epoch == "" {
			e.t.Errorf("publish %d landed at %v, want offset %d in epoch %q", i, p.Pos, i+1, pubs[0].Pos.Epoch)
		}
	}
}
