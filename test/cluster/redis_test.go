package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pulse-go/pulse/client"
	"github.com/pulse-go/pulse/redisbroker/redistest"
	"github.com/pulse-go/pulse/wire"
	goredis "github.com/redis/go-redis/v9"
)

// TestRedisRestartedEmpty: while Redis is down, publishes get
// "unavailable" and /healthz says degraded; once it is back empty, the
// connected subscriber and a client resuming from a position of the lost
// history get recovered:false, and live delivery goes on in a new epoch.
func TestRedisRestartedEmpty(t *testing.T) {
	redis, a, b := twoNodes(t)
	rec := newRecorder()
	sub, _ := runClient(t, a.url(), rec.options("sub"))
	subscribe(t, sub, "news", nil)
	pub, _ := runClient(t, b.url(), nil)
	for i := range 3 {
		publish(t, pub, "news", i, "")
	}
	rec.waitFor(t, "3 messages", func(r *recorder) bool { return len(r.msgs) >= 3 })
	old := rec.messages()[2].Pos

	redis.Kill()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	_, err := pub.Publish(ctx, "news", []byte(`{"down":true}`), nil)
	cancel()
	var refused *client.ServerError
	if !errors.As(err, &refused) || refused.Code != wire.CodeUnavailable {
		t.Fatalf("publish while Redis is down: %v, want the server's %q", err, wire.CodeUnavailable)
	}
	awaitHealth(t, a, "degraded")
	fresh, _ := runClient(t, a.url(), nil)
	ctx, cancel = context.WithTimeout(t.Context(), wait)
	start := time.Now()
	_, err = fresh.Subscribe(ctx, "fresh", nil)
	cancel()
	if !errors.As(err, &refused) || refused.Code != wire.CodeUnavailable {
		t.Errorf("subscribe while Redis is down: %v, want the server's %q", err, wire.CodeUnavailable)
	}
	t.Logf("a subscribe while Redis is down was refused in %v", time.Since(start).Round(time.Millisecond))
	metrics := get(b, "/metrics")
	if !strings.Contains(metrics, "\npulse_broker_up 0\n") || strings.Contains(metrics, "\npulse_broker_errors_total 0\n") {
		t.Errorf("node B's metrics while Redis is down do not show it:\n%s", grep(metrics, "pulse_broker"))
	}

	redis.Restart()
	awaitHealth(t, a, "ok")
	awaitHealth(t, b, "ok")
	res := publish(t, pub, "news", 3, "")
	if res.Pos.Epoch == old.Epoch {
		t.Errorf("publication after the restart at %v: want a new epoch, the old one was %v", res.Pos, old)
	}
	// Node A finds its stream's epoch changed: its subscriber is closed
	// and resumes, told recovered:false; then live delivery goes on.
	rec.waitFor(t, "the subscriber told recovered:false", func(r *recorder) bool {
		last := r.subscribed[len(r.subscribed)-1]
		return last.Resumed && !last.Recovered && last.Position.Epoch == res.Pos.Epoch
	})
	next := publish(t, pub, "news", 4, "")
	rec.waitFor(t, "live delivery in the new epoch", func(r *recorder) bool {
		return len(r.msgs) > 3 && r.msgs[len(r.msgs)-1].Pos == next.Pos
	})

	late, _ := runClient(t, b.url(), nil)
	resumed := subscribe(t, late, "news", &client.SubscribeOptions{Since: &old})
	if !resumed.Resumed || resumed.Recovered || resumed.Position != next.Pos {
		t.Errorf("resume from %v of the lost history: %+v; want resumed, not recovered, at %v", old, resumed, next.Pos)
	}
}

// TestRedisPaused: Redis stopped (SIGSTOP) for twice the liveness bound
// loses no WebSocket connection and no member; once it continues,
// publications flow again.
func TestRedisPaused(t *testing.T) {
	redis, a, b := twoNodes(t)
	watch := newRecorder()
	watcher, _ := runClient(t, b.url(), watch.options("watcher"))
	subscribe(t, watcher, "room", &client.SubscribeOptions{Presence: true})
	member, _ := runClient(t, a.url(), &client.Options{Name: "member"})
	subscribe(t, member, "room", &client.SubscribeOptions{Presence: true})
	watch.waitFor(t, "the member's join", func(r *recorder) bool { return countPresence(r, []string{member.Member()}, true) == 1 })

	redis.Pause()
	awaitHealth(t, a, "degraded")
	time.Sleep(2 * bound) // the pause itself is what is tested: nothing to wait for
	redis.Resume()
	awaitHealth(t, a, "ok")
	awaitHealth(t, b, "ok")

	res := publish(t, member, "room", 0, "")
	watch.waitFor(t, "a publication after the pause", func(r *recorder) bool {
		return len(r.msgs) > 0 && r.msgs[len(r.msgs)-1].Pos == res.Pos
	})
	for name, c := range map[string]*client.Client{"watcher": watcher, "member": member} {
		if c.Generation() != 1 {
			t.Errorf("%s is on connection %d, want its first", name, c.Generation())
		}
	}
	watch.mu.Lock()
	defer watch.mu.Unlock()
	if n := countPresence(watch, []string{member.Member()}, false); n != 0 {
		t.Errorf("the member left %d times during the pause, want never: %v", n, watch.presence)
	}
}

// awaitHealth waits until n's /healthz body starts with want. /healthz
// has no way to notify: it is polled.
func awaitHealth(t *testing.T, n *node, want string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	var body string
	for time.Now().Before(deadline) {
		body = health(n)
		if strings.HasPrefix(body, want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("node %s /healthz = %q after %v, want %q", n.name, body, wait, want)
}

func health(n *node) string { return get(n, "/healthz") }

// grep returns the lines of s that contain part.
func grep(s, part string) string {
	var lines []string
	for line := range strings.SplitSeq(s, "\n") {
		if strings.Contains(line, part) {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines, "\n")
}

// get returns the body of n's path, or the error.
func get(n *node, path string) string {
	resp, err := http.Get("http://" + n.addr + path)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// TestPubSubGapFilled: node A's PUB/SUB connection cut (CLIENT KILL) while
// publications go through node B: A fills the gap from history, and its
// subscriber receives all of them, in order, on its first connection.
func TestPubSubGapFilled(t *testing.T) {
	redis, a, b := twoNodes(t)
	rec := newRecorder()
	sub, _ := runClient(t, a.url(), rec.options("sub"))
	subscribe(t, sub, "stream", nil)
	pub, _ := runClient(t, b.url(), nil)
	admin := goredis.NewClient(&goredis.Options{Addr: redis.Addr(), Protocol: 2})
	defer admin.Close()
	const each = 40
	total := 0
	for round := 0; !strings.Contains(a.logs.String(), "gap filled from history"); round++ {
		if round == 10 {
			t.Fatal("10 cuts of node A's PUB/SUB connection left no gap to fill")
		}
		if err := admin.ClientKillByFilter(t.Context(), "TYPE", "pubsub").Err(); err != nil {
			t.Fatalf("CLIENT KILL: %v", err)
		}
		acks := make([]*client.Ack, each)
		for i := range acks {
			var err error
			if acks[i], err = pub.Send("stream", fmt.Appendf(nil, `{"i":%d}`, total+i), nil); err != nil {
				t.Fatal(err)
			}
		}
		for _, ack := range acks {
			if _, err := ack.Wait(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		total += each
		rec.waitFor(t, fmt.Sprintf("%d messages", total), func(r *recorder) bool { return len(r.msgs) >= total })
	}
	checkSequence(t, rec.messages(), total)
	if sub.Generation() != 1 {
		t.Errorf("the subscriber is on connection %d, want its first: the gaps were node A's to fill", sub.Generation())
	}
	t.Logf("%d publications over %d cuts; node A filled %d gaps from history", total, total/each, strings.Count(a.logs.String(), "gap filled from history"))
}

// TestLostGapResumes: a gap in a node's live publications that history no
// longer holds (its PUB/SUB connection cut while more than the history
// size is published) makes its subscribers resume, with recovered:false.
func TestLostGapResumes(t *testing.T) {
	redis := redistest.Start(t)
	a := startNode(t, "a", redis.URL(), "--history-size", "4")
	b := startNode(t, "b", redis.URL(), "--history-size", "4")
	rec := newRecorder()
	sub, _ := runClient(t, a.url(), rec.options("sub"))
	subscribe(t, sub, "ticker", nil)
	pub, _ := runClient(t, b.url(), nil)
	kill := goredis.NewClient(&goredis.Options{Addr: redis.Addr(), Protocol: 2})
	defer kill.Close()
	resumedUnrecovered := func(r *recorder) bool {
		for _, s := range r.subscribed {
			if s.Resumed && !s.Recovered {
				return true
			}
		}
		return false
	}
	for round := 0; !rec.within(time.Second, resumedUnrecovered); round++ {
		if round == 5 {
			t.Fatal("5 cuts of node A's PUB/SUB connection never made the subscriber resume with recovered:false")
		}
		if err := kill.ClientKillByFilter(t.Context(), "TYPE", "pubsub").Err(); err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			publish(t, pub, "ticker", i, "")
		}
	}
}
