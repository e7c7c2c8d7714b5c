package hubtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulse-go/pulse/hub"
)

// waitTimeout bounds every wait for a delivery. It is generous: only a
// broken broker reaches it.
const waitTimeout = 5 * time.Second

// clockStart is where every subtest's clock starts, on a whole second so
// that a broker storing milliseconds keeps times exact.
var clockStart = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

// suiteConfig has bounds small enough to reach and a dedup window shorter
// than the history TTL.
func suiteConfig(clock *Clock) Config {
	return Config{HistorySize: 8, HistoryTTL: time.Minute, DedupWindow: 20 * time.Second, Now: clock.Now}
}

// env is one subtest: a fresh broker and its clock.
type env struct {
	t     *testing.T
	ctx   context.Context
	b     hub.Broker
	clock *Clock
	cfg   Config
	seq   int // publications made by publishN and barrier, to make their data unique
}

func newEnv(t *testing.T, newBroker func(t *testing.T, cfg Config) hub.Broker) *env {
	clock := NewClock(clockStart)
	cfg := suiteConfig(clock)
	b := newBroker(t, cfg)
	t.Cleanup(func() { b.Close() })
	return &env{t: t, ctx: t.Context(), b: b, clock: clock, cfg: cfg}
}

// publish publishes data to channel and returns its position.
func (e *env) publish(channel, data string) hub.Position {
	e.t.Helper()
	return e.publishKey(channel, data, "").Pos
}

func (e *env) publishKey(channel, data, key string) hub.PublishResult {
	e.t.Helper()
	res, err := e.b.Publish(e.ctx, channel, []byte(data), hub.PublishOptions{IdempotencyKey: key})
	if err != nil {
		e.t.Fatalf("Publish(%q, %s, key %q): %v", channel, data, key, err)
	}
	return res
}

// publishN publishes n numbered publications to channel and returns them as
// the broker should have stored them.
func (e *env) publishN(channel string, n int) []hub.Publication {
	e.t.Helper()
	pubs := make([]hub.Publication, n)
	for i := range pubs {
		e.seq++
		data := fmt.Sprintf(`{"channel":%q,"seq":%d}`, channel, e.seq)
		at := e.clock.Now()
		pubs[i] = hub.Publication{Channel: channel, Pos: e.publish(channel, data), Data: []byte(data), Time: at}
	}
	return pubs
}

func (e *env) history(channel string, since hub.Position) ([]hub.Publication, hub.Position, error) {
	e.t.Helper()
	pubs, top, err := e.b.History(e.ctx, channel, since)
	e.t.Logf("History(%q, %v) = %d publications, top %v, %v", channel, since, len(pubs), top, err)
	return pubs, top, err
}

// subscribe subscribes a recorder to channel until the subtest ends.
func (e *env) subscribe(channel string) *recorder {
	e.t.Helper()
	r := &recorder{signal: make(chan struct{}, 1)}
	unsubscribe, err := e.b.Subscribe(context.Background(), channel, r.deliver)
	if err != nil {
		e.t.Fatalf("Subscribe(%q): %v", channel, err)
	}
	r.unsubscribe = unsubscribe
	e.t.Cleanup(unsubscribe)
	return r
}

// barrier publishes a marker to channel, waits until every recorder has
// received it, and returns what each received before it.
func (e *env) barrier(channel string, recs ...*recorder) [][]hub.Event {
	e.t.Helper()
	e.seq++
	marker := fmt.Sprintf(`{"marker":%d}`, e.seq)
	e.publish(channel, marker)
	before := make([][]hub.Event, len(recs))
	for i, r := range recs {
		events := r.waitFor(e.t, "marker "+marker, func(events []hub.Event) bool { return indexData(events, marker) >= 0 })
		before[i] = events[:indexData(events, marker)]
	}
	return before
}

// checkPubs reports where got differs from want. A zero Time in want is
// not checked.
func (e *env) checkPubs(what string, got, want []hub.Publication) {
	e.t.Helper()
	if len(got) != len(want) {
		e.t.Errorf("%s: got %d publications, want %d:\n got %s\nwant %s", what, len(got), len(want), describePubs(got), describePubs(want))
		return
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Channel != w.Channel || g.Pos != w.Pos || !bytes.Equal(g.Data, w.Data) || !w.Time.IsZero() && !g.Time.Equal(w.Time) {
			e.t.Errorf("%s: publication %d is %s, want %s", what, i, describePub(g), describePub(w))
		}
	}
}

// checkUnrecoverable reports unless err is hub.ErrUnrecoverable, pubs is
// empty and top is want.
func (e *env) checkUnrecoverable(pubs []hub.Publication, top, want hub.Position, err error) {
	e.t.Helper()
	if !errors.Is(err, hub.ErrUnrecoverable) || len(pubs) != 0 || top != want {
		e.t.Errorf("got %d publications, top %v, error %v; want none, top %v, ErrUnrecoverable", len(pubs), top, err, want)
	}
}

// recorder is a subscription that keeps every event it receives.
type recorder struct {
	unsubscribe func() // set at subscribe, never changes

	mu     sync.Mutex // guards events
	events []hub.Event
	signal chan struct{} // holds a token when events grew since the last wait
}

// deliver never blocks: it keeps e and leaves a token for waitFor.
func (r *recorder) deliver(e hub.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	select {
	case r.signal <- struct{}{}:
	default:
	}
}

func (r *recorder) snapshot() []hub.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hub.Event(nil), r.events...)
}

// waitFor waits until ok holds for the events received, and returns them.
func (r *recorder) waitFor(t *testing.T, what string, ok func([]hub.Event) bool) []hub.Event {
	t.Helper()
	timeout := time.NewTimer(waitTimeout)
	defer timeout.Stop()
	for {
		if events := r.snapshot(); ok(events) {
			return events
		}
		select {
		case <-r.signal:
		case <-timeout.C:
			t.Fatalf("waited %v for %s; received %s", waitTimeout, what, describeEvents(r.snapshot()))
		}
	}
}

// waitPubs waits for n events and returns their publications; any other
// event fails the test.
func (r *recorder) waitPubs(t *testing.T, n int) []hub.Publication {
	t.Helper()
	events := r.waitFor(t, fmt.Sprintf("%d events", n), func(events []hub.Event) bool { return len(events) >= n })
	return publications(t, events)
}

// publications returns the publications of events, which must all be
// publications.
func publications(t *testing.T, events []hub.Event) []hub.Publication {
	t.Helper()
	pubs := make([]hub.Publication, 0, len(events))
	for _, e := range events {
		if e.Type != hub.EventPublication {
			t.Fatalf("received event %s, want only publications", describeEvent(e))
		}
		pubs = append(pubs, e.Publication)
	}
	return pubs
}

// indexData returns the index of the publication of data in events, or -1.
func indexData(events []hub.Event, data string) int {
	for i, e := range events {
		if e.Type == hub.EventPublication && string(e.Publication.Data) == data {
			return i
		}
	}
	return -1
}

func describePub(p hub.Publication) string {
	return fmt.Sprintf("{%s %s:%d %s at %s}", p.Channel, p.Pos.Epoch, p.Pos.Offset, p.Data, p.Time.Format(time.TimeOnly))
}

func describePubs(pubs []hub.Publication) string {
	s := make([]string, len(pubs))
	for i, p := range pubs {
		s[i] = describePub(p)
	}
	return "[" + strings.Join(s, " ") + "]"
}

func describeEvent(e hub.Event) string {
	switch e.Type {
	case hub.EventPublication:
		return describePub(e.Publication)
	case hub.EventJoin:
		return fmt.Sprintf("join{%s %s %s}", e.Member.ID, e.Member.Client, e.Member.Info)
	case hub.EventLeave:
		return fmt.Sprintf("leave{%s}", e.Member.ID)
	}
	return fmt.Sprintf("EventType(%d)", int(e.Type))
}

func describeEvents(events []hub.Event) string {
	s := make([]string, len(events))
	for i, e := range events {
		s[i] = describeEvent(e)
	}
	return fmt.Sprintf("%d events [%s]", len(events), strings.Join(s, " "))
}
