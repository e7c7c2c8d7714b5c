package hub

import (
	"encoding/json"
	"sync"
	"testing"

	"github.com/pulse-go/pulse"
	"github.com/pulse-go/pulse/wire"
)

// counter counts Options.Refused calls by reason.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) refused(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[reason]++
}

func (c *counter) get(reason string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[reason]
}

// Past the burst, a publish is answered rate_limited with the time until
// it would pass, and the connection stays usable; past ten bursts of
// refusals, the connection is closed with 1008. Both are counted.
func TestPublishRateLimit(t *testing.T) {
	var count counter
	// A rate low enough that no token comes back while the test runs.
	env := startHub(t, nil, nil, &Options{PublishRate: 0.01, PublishBurst: 3, Refused: count.refused})
	c := dial(t, env.addr())
	for id := uint64(1); id <= 3; id++ {
		c.send(t, wire.Publish{ID: id, Channel: "room", Data: json.RawMessage(`1`)})
		if a := expect[wire.Ack](t, c); a.ID != id {
			t.Fatalf("publish %d within the burst: %+v", id, a)
		}
	}
	for id := uint64(4); id <= 6; id++ {
		c.send(t, wire.Publish{ID: id, Channel: "room", Data: json.RawMessage(`1`)})
		e := expect[wire.Error](t, c)
		if e.Code != wire.CodeRateLimited || e.ID != id || e.RetryAfterMS < 90_000 {
			t.Fatalf("publish %d past the burst: %+v, want rate_limited with retry_after_ms about 100 s", id, e)
		}
	}
	c.send(t, wire.PresenceQuery{ID: 7, Channel: "room"})
	expect[wire.Presence](t, c) // still usable
	if n := count.get(ReasonPublishRate); n != 3 {
		t.Errorf("%d rate-limited publishes counted, want 3", n)
	}
	// The refusals bucket holds abuseBursts bursts: 30, 3 of them taken.
	for id := uint64(8); id < 8+abuseBursts*3-3; id++ {
		c.send(t, wire.Publish{ID: id, Channel: "room", Data: json.RawMessage(`1`)})
		if e := expect[wire.Error](t, c); e.Code != wire.CodeRateLimited {
			t.Fatalf("refused publish %d: %+v, want rate_limited", id, e)
		}
	}
	c.send(t, wire.Publish{ID: 100, Channel: "room", Data: json.RawMessage(`1`)})
	if code := c.closeCode(t); code != int(pulse.ClosePolicyViolation) {
		t.Errorf("publishing on past both buckets: closed with %d, want 1008", code)
	}
	if n := count.get(ReasonPublishAbuse); n != 1 {
		t.Errorf("%d abusers counted, want 1", n)
	}
}

// A connection closed for want of a token is counted.
func TestUnauthorizedCounted(t *testing.T) {
	var count counter
	env := startAuthHub(t, nil, &Options{Refused: count.refused})
	c := dial(t, env.addr())
	c.send(t, wire.Hello{ID: 1, Token: "forged"})
	c.closeCode(t)
	if _, resp := env.upgrade(t, nil, "", nil); resp.StatusCode != 401 {
		t.Fatalf("plain client without a token: %d", resp.StatusCode)
	}
	if n := count.get(ReasonUnauthorized); n != 2 {
		t.Errorf("%d unauthorized counted, want 2", n)
	}
}

// A subscribe further behind than MaxReplay is told it cannot recover,
// and goes on live from the top: nothing is replayed.
func TestMaxReplay(t *testing.T) {
	env := startHub(t, nil, nil, &Options{MaxReplay: 5})
	c := dial(t, env.addr())
	start := c.subscribe(t, "room", nil, false).Position
	publishN(t, env.hub, "room", 0, 5)
	back := dial(t, env.addr())
	if a := back.subscribe(t, "room", &start, false); a.Recovered == nil || !*a.Recovered {
		t.Fatalf("5 behind with MaxReplay 5: %+v, want recovered", a)
	}
	expect[wire.Batch](t, back)
	publishN(t, env.hub, "room", 5, 1)
	far := dial(t, env.addr())
	a := far.subscribe(t, "room", &start, false)
	if a.Recovered == nil || *a.Recovered || a.Position.Offset != 6 {
		t.Fatalf("6 behind with MaxReplay 5: %+v, want recovered false at the top", a)
	}
	publishN(t, env.hub, "room", 6, 1)
	if m := expect[wire.Message](t, far); m.Pos.Offset != 7 {
		t.Fatalf("after an unrecovered subscribe: %+v, want the live offset 7", m)
	}
}
