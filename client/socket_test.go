package client

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulse-go/pulse"
	"github.com/pulse-go/pulse/chaos"
	"github.com/pulse-go/pulse/hub"
)

// Over real sockets: a pulse node killed and restarted, a silent
// partition through the fault proxy, a terminal close code, a full
// offline queue. Every wait is on an event, bounded by patience.

const patience = 10 * time.Second

// watcher follows a real client: its state changes, subscriptions and
// messages, checking that messages come in order with no gap or
// duplicate.
type watcher struct {
	states *states
	subs   chan Subscribed
	msgs   chan Message
}

func watch(opts *Options) *watcher {
	w := &watcher{states: newStates(), subs: make(chan Subscribed, 100), msgs: make(chan Message, 10000)}
	opts.OnState = w.states.record
	opts.OnSubscribed = func(s Subscribed) { w.subs <- s }
	opts.OnMessage = func(m Message) { w.msgs <- m }
	return w
}

// await waits, in real time, for a change to state want.
func (w *watcher) await(t *testing.T, want State) StateChange {
	t.Helper()
	deadline := time.After(patience)
	for {
		select {
		case c := <-w.states.ch:
			if c.State == want {
				return c
			}
		case <-deadline:
			t.Fatalf("no change to %v within %v", want, patience)
		}
	}
}

// take reads count messages whose data are {"n":from}, {"n":from+1}, ...
// at consecutive offsets, and returns how many of them were replayed.
func (w *watcher) take(t *testing.T, from, count int) (replayed int) {
	t.Helper()
	for i := from; i < from+count; i++ {
		select {
		case m := <-w.msgs:
			var body struct{ N int }
			json.Unmarshal(m.Data, &body)
			if body.N != i {
				t.Fatalf("got n=%d at %+v, want n=%d: a gap or a duplicate", body.N, m.Pos, i)
			}
			if m.Replayed {
				replayed++
			}
		case <-time.After(patience):
			t.Fatalf("message n=%d did not arrive", i)
		}
	}
	return replayed
}

func (w *watcher) subscribed(t *testing.T) Subscribed {
	t.Helper()
	select {
	case s := <-w.subs:
		return s
	case <-time.After(patience):
		t.Fatal("no subscribed")
	}
	return Subscribed{}
}

// runClient runs c until the test ends.
func runClient(t *testing.T, c *Client) *run { return running(t, c) }

func fastNode() pulse.Options {
	return pulse.Options{Interval: 300 * time.Millisecond, Timeout: 300 * time.Millisecond}
}

// The node dies abruptly and comes back on the same address with the same
// broker: the client reconnects and gets everything published meanwhile,
// replayed, then live, nothing lost and nothing twice.
func TestServerRestartLosesNothing(t *testing.T) {
	broker := hub.NewMemory(nil)
	n := startNode(t, "127.0.0.1:0", fastNode(), broker)
	opts := &Options{}
	w := watch(opts)
	c := New(n.url(), opts)
	runClient(t, c)
	if _, err := c.Subscribe(t.Context(), "room", nil); err != nil {
		t.Fatal(err)
	}
	w.subscribed(t)
	n.publish("room", 0, 10)
	w.take(t, 0, 10)

	killed := time.Now()
	n.kill()
	lost := w.await(t, StateReconnecting)
	detect := time.Since(killed)
	n.publish("room", 10, 100)
	n.start()
	w.await(t, StateOpen)
	back := time.Since(killed)
	if ev := w.subscribed(t); !ev.Resumed || !ev.Recovered {
		t.Fatalf("after the restart: %+v, want resumed and recovered", ev)
	}
	if r := w.take(t, 10, 100); r != 100 {
		t.Fatalf("%d of the 100 missed messages came replayed", r)
	}
	n.publish("room", 110, 5)
	w.take(t, 110, 5)
	if g := c.Generation(); g != 2 {
		t.Fatalf("Generation %d, want 2", g)
	}
	t.Logf("kill noticed in %v (%v); back open %v after the kill (backoff %v); 100 missed messages replayed",
		detect.Round(time.Millisecond), lost.Err, back.Round(time.Millisecond), lost.Delay.Round(time.Millisecond))
}

// A real restart of the memory broker loses history: the client says so.
func TestServerRestartNewBrokerUnrecovered(t *testing.T) {
	n := startNode(t, "127.0.0.1:0", fastNode(), hub.NewMemory(nil))
	opts := &Options{}
	w := watch(opts)
	c := New(n.url(), opts)
	runClient(t, c)
	c.Subscribe(t.Context(), "room", nil)
	w.subscribed(t)
	n.publish("room", 0, 3)
	w.take(t, 0, 3)
	n.kill()
	n.broker = hub.NewMemory(nil)
	n.start()
	if ev := w.subscribed(t); !ev.Resumed || ev.Recovered {
		t.Fatalf("after losing the broker: %+v, want resumed, not recovered", ev)
	}
	n.publish("room", 3, 2)
	w.take(t, 3, 2)
}

// A silent partition is noticed within Interval+Timeout+tick, and the
// client comes back once it heals, resuming what it missed.
func TestBlackholeDetectedAndHealed(t *testing.T) {
	po := fastNode()
	n := startNode(t, "127.0.0.1:0", po, hub.NewMemory(nil))
	proxy, err := chaos.Listen("127.0.0.1:0", n.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	opts := &Options{HandshakeTimeout: time.Second}
	w := watch(opts)
	c := New("ws://"+proxy.Addr()+"/ws", opts)
	runClient(t, c)
	c.Subscribe(t.Context(), "room", nil)
	w.subscribed(t)
	n.publish("room", 0, 3)
	w.take(t, 0, 3)

	start := time.Now()
	proxy.Blackhole(chaos.DirectionBoth)
	w.await(t, StateDegraded)
	degraded := time.Since(start)
	lost := w.await(t, StateReconnecting)
	detect := time.Since(start)
	bound := po.Interval + po.Timeout + po.Timeout/10
	if detect > bound+200*time.Millisecond {
		t.Fatalf("blackhole noticed after %v, want within %v (+200ms of scheduling under -race)", detect, bound)
	}
	var ce *pulse.CloseError
	if !errors.As(lost.Err, &ce) || ce.Code != pulse.CloseHeartbeatTimeout {
		t.Fatalf("lost with %v, want a heartbeat timeout", lost.Err)
	}
	n.publish("room", 3, 50)
	healed := time.Now()
	proxy.Heal()
	w.await(t, StateOpen)
	back := time.Since(healed)
	if ev := w.subscribed(t); !ev.Recovered {
		t.Fatalf("after the heal: %+v", ev)
	}
	w.take(t, 3, 50)
	t.Logf("blackhole: degraded after %v, lost after %v (bound %v); open again %v after the heal",
		degraded.Round(time.Millisecond), detect.Round(time.Millisecond), bound, back.Round(time.Millisecond))
}

// A terminal close code ends Run: one connection, no reconnect.
func TestTerminalCodeNoReconnect(t *testing.T) {
	var opens atomic.Int32
	url := startOpenServer(t, func(c *pulse.Conn) {
		opens.Add(1)
		c.Close(4100, "banned")
	})
	c := New(url, &Options{Backoff: func(int) time.Duration { return 0 }})
	err := c.Run(t.Context())
	var ce *pulse.CloseError
	if !errors.As(err, &ce) || ce.Code != 4100 {
		t.Fatalf("Run: %v, want the close 4100", err)
	}
	if n := opens.Load(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
	t.Logf("Run returned: %v", err)
}

// Options.LocalIP is where the default dial's connections come from.
func TestLocalIP(t *testing.T) {
	remote := make(chan string, 1)
	url := startOpenServer(t, func(c *pulse.Conn) {
		remote <- c.RemoteAddr()
		c.Close(4100, "seen")
	})
	c := New(url, &Options{LocalIP: net.IPv4(127, 0, 0, 4)})
	if err := c.Run(t.Context()); err == nil {
		t.Fatal("Run returned nil, want the close 4100")
	}
	if addr := <-remote; !strings.HasPrefix(addr, "127.0.0.4:") {
		t.Fatalf("the server saw the client at %s, want 127.0.0.4", addr)
	}
}

// startOpenServer runs a pulse.v1 server whose sessions' Open is open,
// until the test ends, and returns its ws:// URL.
func startOpenServer(t *testing.T, open func(*pulse.Conn)) string {
	t.Helper()
	srv, err := pulse.NewServer(&pulse.Options{DrainWindow: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler(speaksPulse{pulse.Funcs{Open: open}}))
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() {
		defer close(runDone)
		srv.Run(ctx)
	}()
	t.Cleanup(func() {
		ts.Close()
		cancel()
		<-runDone
	})
	return "ws" + strings.TrimPrefix(ts.URL, "http")
}

// A handshake refused with 404 is terminal too.
func TestNotFoundIsTerminal(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	defer ts.Close()
	err := New("ws"+strings.TrimPrefix(ts.URL, "http"), nil).Run(t.Context())
	var he *HandshakeError
	if !errors.As(err, &he) || he.Status != 404 {
		t.Fatalf("Run: %v, want a 404 handshake error", err)
	}
}

// With the server gone, publishes wait in the bounded queue; one more is
// an error the caller sees.
func TestOfflineQueueFull(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens: every dial is refused
	opts := &Options{QueueSize: 2}
	w := watch(opts)
	c := New("ws://"+addr+"/ws", opts)
	runClient(t, c)
	w.await(t, StateReconnecting)
	var acks []*Ack
	for range 2 {
		ack, err := c.Send("room", json.RawMessage(`{}`), nil)
		if err != nil {
			t.Fatalf("queueing while offline: %v", err)
		}
		acks = append(acks, ack)
	}
	_, err = c.Publish(t.Context(), "room", json.RawMessage(`{}`), nil)
	if !errors.Is(err, ErrQueueFull) {
		t.Fatalf("third publish: %v, want ErrQueueFull", err)
	}
	t.Logf("third publish: %v", err)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := acks[0].Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait while offline: %v", err)
	}
}

// A reconnect continues the session: presence lists the same member.
func TestReconnectKeepsMember(t *testing.T) {
	broker := hub.NewMemory(nil)
	n := startNode(t, "127.0.0.1:0", fastNode(), broker)
	proxy, err := chaos.Listen("127.0.0.1:0", n.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	opts := &Options{Name: "ann", HandshakeTimeout: time.Second}
	w := watch(opts)
	c := New("ws://"+proxy.Addr()+"/ws", opts)
	runClient(t, c)
	c.Subscribe(t.Context(), "lobby", &SubscribeOptions{Presence: true})
	w.subscribed(t)
	member := c.Member()
	if member == "" {
		t.Fatal("no member id after the welcome")
	}
	proxy.Blackhole(chaos.DirectionBoth)
	w.await(t, StateReconnecting)
	proxy.Heal()
	w.await(t, StateOpen)
	w.subscribed(t)
	members, err := broker.Members(t.Context(), "lobby")
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 1 || members[0].ID != member || members[0].Client != "ann" || c.Member() != member {
		t.Fatalf("members after the reconnect %+v, client member %s; want just %s", members, c.Member(), member)
	}
}

// A message says which client published it, as the server saw it.
func TestMessageNamesPublisher(t *testing.T) {
	n := startNode(t, "127.0.0.1:0", fastNode(), hub.NewMemory(nil))
	opts := &Options{}
	w := watch(opts)
	reader := New(n.url(), opts)
	runClient(t, reader)
	reader.Subscribe(t.Context(), "room", nil)
	w.subscribed(t)
	writer := New(n.url(), &Options{})
	runClient(t, writer)
	if _, err := writer.Publish(t.Context(), "room", json.RawMessage(`{"n":0}`), nil); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-w.msgs:
		if m.From == "" || m.From != writer.Member() {
			t.Fatalf("message from %q, want the writer, %q", m.From, writer.Member())
		}
	case <-time.After(patience):
		t.Fatal("no message")
	}
}

// speaksPulse is a Funcs handler that negotiates pulse.v1.
type speaksPulse struct{ pulse.Funcs }

func (speaksPulse) Subprotocol() string { return pulse.Subprotocol }
