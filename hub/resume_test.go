package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/gorilla/websocket"
	"strings"
	"testing"
	"time"

	"github.com/pulse-go/pulse"
	"github.com/pulse-go/pulse/chaos"
	"github.com/pulse-go/pulse/wire"
)

// Resume over real sockets: a subscriber is silently cut off by the fault
// proxy while messages are published, is found dead by the heartbeat, and
// comes back with its last position.

const (
	resumeInterval = 500 * time.Millisecond
	resumeTimeout  = 500 * time.Millisecond
)

func resumeOptions() *pulse.Options {
	return &pulse.Options{Interval: resumeInterval, Timeout: resumeTimeout}
}

// publishN publishes n messages {"n":from..from+n-1} to channel from the server.
func publishN(t *testing.T, h *Hub, channel string, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if _, err := h.Publish(context.Background(), channel, fmt.Appendf(nil, `{"n":%d}`, i), PublishOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// received collects publications a client gets, checking that they come
// in order, with consecutive offsets and the data published.
type received struct {
	last Position
	n    int // the next {"n":...} expected
}

func (r *received) add(t *testing.T, p wire.Publication) {
	t.Helper()
	var body struct{ N int }
	if err := json.Unmarshal(p.Data, &body); err != nil {
		t.Fatal(err)
	}
	if p.Pos.Epoch != r.last.Epoch || p.Pos.Offset != r.last.Offset+1 || body.N != r.n {
		t.Fatalf("got n=%d at %+v after %+v, want n=%d at the next offset", body.N, p.Pos, r.last, r.n)
	}
	r.last = p.Pos
	r.n++
}

// take reads publications (live messages or replayed batches) until count
// have arrived.
func (r *received) take(t *testing.T, c *testClient, count int) {
	t.Helper()
	for got := 0; got < count; {
		switch m := c.next(t).(type) {
		case wire.Message:
			r.add(t, m.Publication)
			got++
		case wire.Batch:
			for _, p := range m.Publications {
				r.add(t, p)
			}
			got += len(m.Publications)
		default:
			t.Fatalf("unexpected %+v while reading publications", m)
		}
	}
}

// awaitCut waits for the server to close the connection behind a
// blackholed proxy, for silence or slowness.
func awaitCut(t *testing.T, env *testEnv) {
	t.Helper()
	select {
	case err := <-env.closes:
		if !err.Code.Retryable() {
			t.Fatalf("cut connection closed with %v, want a retryable code", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the cut connection was not closed within 10s")
	}
}

func TestResumeAfterSilentCut(t *testing.T) {
	env := startHub(t, resumeOptions(), &MemoryOptions{HistorySize: 2000}, nil)
	proxy := env.proxy(t)
	sub := dial(t, proxy.Addr())
	top := sub.subscribe(t, "room", nil, false).Position
	got := received{last: top}
	publishN(t, env.hub, "room", 0, 10)
	got.take(t, sub, 10)

	cut := time.Now()
	proxy.Blackhole(chaos.DirectionBoth)
	publishN(t, env.hub, "room", 10, 1000) // while the subscriber is cut off
	awaitCut(t, env)
	detect := time.Since(cut)

	start := time.Now()
	back := dial(t, env.addr())
	since := got.last
	answer := back.subscribe(t, "room", &since, false)
	if answer.Recovered == nil || !*answer.Recovered {
		t.Fatalf("subscribe with since %+v: %+v, want recovered", since, answer)
	}
	got.take(t, back, 1000)
	catchUp := time.Since(start)
	publishN(t, env.hub, "room", 1010, 5)
	got.take(t, back, 5)
	t.Logf("cut detected in %v; replayed 1000 messages, caught up %v after reconnecting", detect.Round(time.Millisecond), catchUp.Round(time.Millisecond))
}

func TestResumeBeyondHistory(t *testing.T) {
	env := startHub(t, resumeOptions(), &MemoryOptions{HistorySize: 100}, nil)
	proxy := env.proxy(t)
	sub := dial(t, proxy.Addr())
	top := sub.subscribe(t, "room", nil, false).Position
	got := received{last: top}
	publishN(t, env.hub, "room", 0, 3)
	got.take(t, sub, 3)
	proxy.Blackhole(chaos.DirectionBoth)
	publishN(t, env.hub, "room", 3, 1000)
	awaitCut(t, env)

	back := dial(t, env.addr())
	since := got.last
	answer := back.subscribe(t, "room", &since, false)
	if answer.Recovered == nil || *answer.Recovered {
		t.Fatalf("subscribe with since %+v after the gap left history: %+v, want recovered false", since, answer)
	}
	if answer.Position.Offset != 1003 {
		t.Fatalf("position %+v, want the top, offset 1003", answer.Position)
	}
	live := received{last: answer.Position, n: 1003}
	publishN(t, env.hub, "room", 1003, 2)
	live.take(t, back, 2) // live goes on from the top: no silent gap, no replay
}

func TestResumeWrongEpoch(t *testing.T) {
	env := startHub(t, nil, nil, nil)
	c := dial(t, env.addr())
	publishN(t, env.hub, "room", 0, 3)
	answer := c.subscribe(t, "room", &Position{Epoch: "an-old-epoch", Offset: 2}, false)
	if answer.Recovered == nil || *answer.Recovered || answer.Position.Offset != 3 {
		t.Fatalf("subscribe from another epoch: %+v, want recovered false at offset 3", answer)
	}
}

// A member whose connection is silently cut leaves within the heartbeat
// bound, and the other members see it go.
func TestPresenceDropsBlackholedMember(t *testing.T) {
	env := startHub(t, resumeOptions(), nil, nil)
	proxy := env.proxy(t)
	gone := dial(t, proxy.Addr())
	gone.send(t, wire.Hello{ID: 7, Client: "gone"})
	expect[wire.Ack](t, gone)
	gone.subscribe(t, "lobby", nil, true)
	expect[wire.Join](t, gone)
	stays := dial(t, env.addr())
	stays.subscribe(t, "lobby", nil, true)
	expect[wire.Join](t, stays) // itself

	stays.send(t, wire.PresenceQuery{ID: 2, Channel: "lobby"})
	if m := expect[wire.Presence](t, stays); len(m.Members) != 2 {
		t.Fatalf("members %+v, want 2", m.Members)
	}
	start := time.Now()
	proxy.Blackhole(chaos.DirectionBoth)
	leave := expect[wire.Leave](t, stays)
	took := time.Since(start)
	if leave.Member.ID != gone.welcome.Member || leave.Member.Client != "gone" {
		t.Fatalf("leave of %+v, want member %s", leave.Member, gone.welcome.Member)
	}
	bound := resumeInterval + resumeTimeout + env.srv.Tick()
	if took > bound+300*time.Millisecond {
		t.Fatalf("leave seen %v after the cut, want within %v", took, bound)
	}
	t.Logf("blackholed member left %v after the cut (bound %v)", took.Round(time.Millisecond), bound)
}

func TestIdempotentPublish(t *testing.T) {
	env := startHub(t, nil, nil, nil)
	sub := dial(t, env.addr())
	sub.subscribe(t, "orders", nil, false)
	pub := dial(t, env.addr())
	order := json.RawMessage(`{"item":"tea"}`)
	pub.send(t, wire.Publish{ID: 1, Channel: "orders", Key: "k-1", Data: order})
	first := expect[wire.Ack](t, pub)
	pub.send(t, wire.Publish{ID: 2, Channel: "orders", Key: "k-1", Data: order})
	second := expect[wire.Ack](t, pub)
	if first.Duplicate || !second.Duplicate || *first.Pos != *second.Pos || second.ID != 2 {
		t.Fatalf("acks %+v then %+v, want the same position, the second a duplicate", first, second)
	}
	pub.send(t, wire.Publish{ID: 3, Channel: "orders", Key: "k-2", Data: order})
	third := expect[wire.Ack](t, pub)
	if m := expect[wire.Message](t, sub); m.Pos != *first.Pos || m.From != pub.welcome.Member {
		t.Fatalf("first message at %+v from %q, want %+v from the publisher, %s", m.Pos, m.From, *first.Pos, pub.welcome.Member)
	}
	if m := expect[wire.Message](t, sub); m.Pos != *third.Pos {
		t.Fatalf("second message at %+v, want %+v: the duplicate was delivered", m.Pos, *third.Pos)
	}
}

// A subscriber that stops reading never holds up the publisher: it is cut
// as a slow consumer, and resumes the gap from history when it returns.
func TestSlowSubscriberCutAndResumes(t *testing.T) {
	env := startHub(t, &pulse.Options{QueueSize: 16, WriteTimeout: 2 * time.Second}, &MemoryOptions{HistorySize: 5000}, nil)
	stuck := dialStuck(t, env.addr(), "firehose")
	defer stuck.Close()
	_, pos, err := env.broker.History(context.Background(), "firehose", Position{})
	if err != nil {
		t.Fatal(err)
	}

	pad := strings.Repeat("x", 4000) // 5000 of these overflow any socket buffer
	start := time.Now()
	for i := range 5000 {
		data := fmt.Appendf(nil, `{"n":%d,"pad":%q}`, i, pad)
		if _, err := env.hub.Publish(context.Background(), "firehose", data, PublishOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	publishing := time.Since(start)
	if err := <-env.closes; err.Code != pulse.CloseSlowConsumer {
		t.Fatalf("slow subscriber closed with %v, want %v", err, pulse.CloseSlowConsumer)
	}
	back := dial(t, env.addr())
	answer := back.subscribe(t, "firehose", &pos, false)
	if answer.Recovered == nil || !*answer.Recovered {
		t.Fatalf("resubscribe: %+v, want recovered", answer)
	}
	got := received{last: pos}
	got.take(t, back, 5000) // 20 MB of history through a queue of 16
	t.Logf("published 5000 x 4 KB in %v past a stuck subscriber; it resumed all 5000", publishing.Round(time.Millisecond))
}

// dialStuck subscribes a client to channel and then never reads again.
func dialStuck(t *testing.T, host, channel string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{pulse.Subprotocol}}
	ws, _, err := d.Dial("ws://"+host+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"subscribe","id":1,"channel":"`+channel+`"}`))
	for { // the welcome, then the answer to the subscribe
		_, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), `"subscribed"`) {
			return ws
		}
	}
}

// A client that comes back on a new connection with its session token
// keeps its member id: presence sees the same member, and the old
// connection, found dead later, does not take the new membership with it.
func TestSessionContinues(t *testing.T) {
	env := startHub(t, resumeOptions(), nil, nil)
	proxy := env.proxy(t)
	watcher := dial(t, env.addr())
	watcher.subscribe(t, "lobby", nil, true)
	expect[wire.Join](t, watcher) // itself
	old := dial(t, proxy.Addr())
	old.subscribe(t, "lobby", nil, true)
	if m := expect[wire.Join](t, watcher); m.Member.ID != old.welcome.Member {
		t.Fatalf("join of %+v, want %s", m.Member, old.welcome.Member)
	}
	proxy.Blackhole(chaos.DirectionBoth) // the old connection is silently gone

	back := dial(t, env.addr())
	back.send(t, wire.Hello{ID: 1, Client: "ann", Session: old.welcome.Session})
	if ack := expect[wire.Ack](t, back); ack.Session != old.welcome.Session || ack.Member != old.welcome.Member {
		t.Fatalf("hello answered %+v, want session %s as member %s", ack, old.welcome.Session, old.welcome.Member)
	}
	back.subscribe(t, "lobby", nil, true)
	expect[wire.Join](t, back) // itself
	if m := expect[wire.Join](t, watcher); m.Member.ID != old.welcome.Member || m.Member.Client != "ann" {
		t.Fatalf("join of %+v, want the same member, now named ann", m.Member)
	}
	awaitCut(t, env) // the old connection's end must not remove the member
	watcher.send(t, wire.PresenceQuery{ID: 2, Channel: "lobby"})
	if m := expect[wire.Presence](t, watcher); len(m.Members) != 2 {
		t.Fatalf("members after the old connection ended: %+v, want the watcher and ann", m.Members)
	}

	back.send(t, wire.Hello{ID: 3, Session: strings.Repeat("0", 32)})
	if m := expect[wire.Error](t, back); m.Code != wire.CodeBadRequest {
		t.Fatalf("a session change after subscribing: %+v, want bad_request", m)
	}
	back.send(t, wire.Hello{ID: 4, Session: "not-a-token"})
	if m := expect[wire.Error](t, back); m.Code != wire.CodeBadRequest {
		t.Fatalf("a malformed session: %+v, want bad_request", m)
	}
}

// An unsubscribe that arrives while history is still being replayed stops
// the replay: nothing of the channel follows the unsubscribe's ack.
func TestUnsubscribeStopsReplay(t *testing.T) {
	env := startHub(t, &pulse.Options{QueueSize: 4}, &MemoryOptions{HistorySize: 3000}, nil)
	c := dial(t, env.addr())
	c.subscribe(t, "other", nil, false)
	pad := strings.Repeat("x", 1000)
	for i := range 3000 {
		env.hub.Publish(context.Background(), "room", fmt.Appendf(nil, `{"n":%d,"pad":%q}`, i, pad), PublishOptions{})
	}
	_, top, _ := env.broker.History(context.Background(), "room", Position{})
	since := Position{Epoch: top.Epoch, Offset: 1}
	c.send(t, wire.Subscribe{ID: 1, Channel: "room", Since: &since})
	c.send(t, wire.Unsubscribe{ID: 2, Channel: "room"})
	if m, ok := c.next(t).(wire.Subscribed); !ok || m.ID != 1 {
		t.Fatalf("first answer %+v, want the subscribe's", m)
	}
	for m, ok := c.next(t).(wire.Ack); !ok || m.ID != 2; m, ok = c.next(t).(wire.Ack) {
	} // some of the replay may come before the ack
	env.hub.Publish(context.Background(), "other", []byte(`"marker"`), PublishOptions{})
	if m := c.next(t); channelOfEvent(m) != "other" {
		t.Fatalf("after the unsubscribe's ack: %T %+v", m, m)
	}
}

// channelOfEvent is the channel of a message or batch, or "".
func channelOfEvent(m wire.Msg) string {
	switch m := m.(type) {
	case wire.Message:
		return m.Channel
	case wire.Batch:
		return m.Channel
	}
	return ""
}
